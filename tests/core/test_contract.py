"""The seam between the layer and the core: what the core asserts in O(1) before it
touches memory, and what the packed kernel owns."""

import numpy as np
import pytest

from deconv3d import _core


def packed(filters=5, channels=3, dtype="float32", bias=True):
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 3, filters, channels))
    return _core.PackedKernel(kernel, rng.standard_normal(filters) if bias else None,
                              (2, 2, 2), (1, 1, 1), dtype)


def arrays(dtype="float32"):
    return np.zeros((1, 4, 4, 4, 3), dtype), np.zeros((1, 9, 9, 9, 5), dtype)


def test_bias_is_padded_to_whole_panels_by_the_packed_kernel():
    kernel = packed()
    assert kernel.bias.shape == (kernel.filter_blocks * kernel.nr,)
    assert np.all(kernel.bias[5:] == 0)
    assert packed(bias=False).bias is None
    assert _core.PackedKernel.nbytes_for((3, 3, 3), 5, 3, "float32") == kernel.weights.nbytes


@pytest.mark.parametrize("bad_out", [
    np.zeros((1, 9, 9, 8, 5), "float32"),              # wrong shape
    np.zeros((1, 9, 9, 9, 5), "float64"),              # wrong dtype
    np.zeros((1, 9, 9, 9, 10), "float32")[..., ::2],   # not contiguous
    np.zeros((9, 9, 9, 5), "float32"),                 # wrong rank
], ids=["shape", "dtype", "strided", "rank"])
def test_run_refuses_an_output_that_does_not_match_its_plan(bad_out):
    x, out = arrays()
    plan = packed().plan(x.shape, out.shape, (0, 0, 0))
    with pytest.raises(ValueError, match="out must be"):
        plan.run(x, bad_out)


def test_run_refuses_a_mismatched_input_and_a_read_only_output():
    x, out = arrays()
    plan = packed().plan(x.shape, out.shape, (0, 0, 0))
    with pytest.raises(ValueError, match="x must be"):
        plan.run(np.zeros((1, 4, 4, 4, 4), "float32"), out)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        plan.run(x.tolist(), out)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        plan.run(x, out)


@pytest.mark.parametrize("x_shape, out_shape", [
    ((1, 4, 4, 4, 3), (1, 9, 9, 9, 6)),     # more filters than the kernel has
    ((1, 4, 4, 4, 2), (1, 9, 9, 9, 5)),     # fewer channels
    ((1, 4, 4, 4, 3), (2, 9, 9, 9, 5)),     # another batch
], ids=["filters", "channels", "batch"])
def test_no_plan_for_shapes_the_kernel_cannot_serve(x_shape, out_shape):
    guard = np.full(int(np.prod(out_shape)), 7.0, "float32")
    with pytest.raises(ValueError, match="no plan"):
        _core.conv3d_transpose(np.zeros(x_shape, "float32"), packed(),
                               guard.reshape(out_shape), (0, 0, 0))
    assert np.all(guard == 7.0)


def test_any_output_window_stays_inside_the_output():
    """The plan derives every write from the output's own shape, so a window of any
    size and crop computes that window of the full result and nothing outside it."""
    x = np.random.default_rng(1).standard_normal((1, 4, 4, 4, 3)).astype("float32")
    kernel = packed()
    full = np.empty((1, 9, 9, 9, 5), "float32")
    _core.conv3d_transpose(x, kernel, full, (0, 0, 0), num_threads=1)
    guard = np.full(4 * 3 * 5 * 5 + 16, 7.0, "float32")
    window = guard[:-16].reshape(1, 4, 3, 5, 5)
    _core.conv3d_transpose(x, kernel, window, (2, 3, 1), num_threads=1)
    np.testing.assert_array_equal(window, full[:, 2:6, 3:6, 1:6])
    assert np.all(guard[-16:] == 7.0)
