"""Few filters or thin inputs with strides: every phase's filters as columns of one panel.

The plan takes this path (`phase_columns`) where PackedKernel._phase_columns finds it
worth it: each input-grid point's outputs of every phase come from one product over the
union of the phases' taps.  Each case is checked against the naive reference, with and
without bias, with fused (relu) and unfused activations, in both dtypes and data
formats, with crops and output_padding, on windows of the output, with non-finite
inputs, and on one thread against two (the same sums, bit for bit).

Layers with 1-4 filters and overlapping taps take the lanes path instead where their
input's scratch copy fits (test_lanes.py); here the planner is kept off it, so that these
layers still test the phase columns they fall back to.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import deconv3d
from deconv3d import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import (assert_same_non_finite, assert_windows_match, conv3d_transpose,  # noqa: E402
                       layer_reference, relative_error)

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


@pytest.fixture(autouse=True)
def without_lanes(monkeypatch):
    monkeypatch.setattr(_core, "LANES", False)


def make_layer(filters, kernel, dtype, activation=None, use_bias=True, channels=5,
               spatial=(3, 4, 5), batch=2, data_format="channels_last", num_threads=None,
               strides=None, padding="valid", output_padding=None):
    """A layer with random weights and an input for it; strides default to the kernel."""
    rng = np.random.default_rng(filters * 100 + channels + sum(np.atleast_1d(kernel)))
    layer = deconv3d.Conv3DTranspose(filters, kernel, kernel if strides is None else strides,
                                     padding=padding, output_padding=output_padding,
                                     activation=activation, use_bias=use_bias, dtype=dtype,
                                     data_format=data_format, num_threads=num_threads)
    shape = ((batch, channels, *spatial) if data_format == "channels_first"
             else (batch, *spatial, channels))
    x = rng.standard_normal(shape).astype(dtype)
    layer.build(x.shape)
    weights = [rng.standard_normal(layer.kernel.shape)]
    if use_bias:
        weights.append(rng.standard_normal(filters))
    layer.set_weights(weights)
    return layer, x


def paths(layer, x):
    return layer._core_plan(x.shape).explain()["paths"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kernel", [(2, 2, 2), (1, 2, 3), (3, 3, 3), (2, 1, 1), (4, 4, 4)])
@pytest.mark.parametrize("filters", [1, 2, 3, 4])
def test_few_filters_take_phase_columns_and_match_reference(filters, kernel, dtype):
    layer, x = make_layer(filters, kernel, dtype)
    phases = int(np.prod(kernel))
    nr_small = deconv3d._core.PANEL_WIDTHS[np.dtype(dtype).itemsize][0]
    # side by side saves at least half of the padded columns whenever one phase's
    # filters fill at most a quarter of the narrowest panel
    if phases > 1 and 4 * filters <= nr_small:
        assert "phase_columns" in paths(layer, x)
    assert relative_error(layer(x), layer_reference(layer, x)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softmax", "gelu"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_activations_and_bias(activation, use_bias):
    layer, x = make_layer(2, 2, "float32", activation=activation, use_bias=use_bias)
    assert "phase_columns" in paths(layer, x)
    assert relative_error(layer(x), layer_reference(layer, x, activation)) <= 1e-5


def test_channels_first_and_many_tiles_on_two_threads():
    layer, x = make_layer(1, 2, "float32", channels=16, spatial=(9, 10, 11), batch=3,
                          data_format="channels_first")
    assert "phase_columns" in paths(layer, x)
    one, two = layer(x, num_threads=1), layer(x, num_threads=2)
    np.testing.assert_array_equal(one, two)
    assert relative_error(two, layer_reference(layer, x)) <= 1e-5


def test_a_last_partial_tile_is_complete():
    # 3 * 5 * 7 = 105 voxels: the last tile of 12 holds 9
    layer, x = make_layer(1, (2, 2, 2), "float64", spatial=(3, 5, 7), batch=1)
    np.testing.assert_allclose(layer(x), layer_reference(layer, x), rtol=0,
                               atol=1e-12 * np.abs(layer_reference(layer, x)).max())


def test_not_taken_where_panels_are_full_or_the_filters_many():
    for filters, kernel, strides, channels in [(16, 2, 2, 5), (16, 3, 2, 32), (16, 3, 2, 4),
                                               (8, 3, 1, 2)]:
        layer = deconv3d.Conv3DTranspose(filters, kernel, strides, padding="same")
        x = np.zeros((1, 4, 5, 6, channels), "float32")
        layer.build(x.shape)
        assert "phase_columns" not in paths(layer, x), (filters, kernel, strides, channels)


# kernel != stride: the union of the phases' taps, crops and output_padding
# (filters, kernel, strides, padding, output_padding, spatial, channels, batch)
GENERAL = [
    (1, 3, 2, "same", None, (5, 6, 7), 32, 2),
    (4, 3, 2, "same", None, (5, 6, 13), 32, 1),        # the 32-wide panel, two per rd
    (2, 3, 2, "valid", None, (4, 5, 6), 8, 2),          # points past the input's end
    (3, 4, 2, "same", None, (4, 5, 6), 16, 1),          # every phase has every offset
    (2, 5, 2, "same", 1, (3, 4, 9), 8, 1),
    (1, 3, 3, "valid", 1, (3, 4, 5), 8, 2),
    (4, (3, 2, 5), (2, 1, 3), "same", None, (4, 5, 6), 8, 2),
    (2, 4, 3, "valid", (1, 2, 0), (3, 4, 5), 8, 1),
    # thin inputs
    (8, 3, 2, "same", None, (5, 6, 13), 1, 1),          # panels straight into the output
    (1, (17, 17, 1), (2, 2, 1), "same", None, (3, 4, 5), 2, 1),  # more (d, h) tap pairs
                                                        # than a panel's mask has bits
    (8, 3, 2, "valid", None, (4, 5, 6), 3, 2),
    (6, 2, 2, "valid", 1, (3, 4, 5), 2, 1),
    (8, (3, 4, 3), (2, 3, 2), "same", None, (3, 5, 4), 4, 1),
]


def general_layer(case, dtype, activation=None, use_bias=True):
    filters, kernel, strides, padding, output_padding, spatial, channels, batch = case
    return make_layer(filters, kernel, dtype, activation, use_bias, channels, spatial, batch,
                      strides=strides, padding=padding, output_padding=output_padding)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", GENERAL, ids=[f"general{i}" for i in range(len(GENERAL))])
def test_union_of_taps_matches_reference(case, dtype):
    layer, x = general_layer(case, dtype, use_bias=case[0] % 2 == 0)
    if dtype == "float32":      # float64 panels are half as wide: fewer layers qualify
        assert "phase_columns" in paths(layer, x)
    assert relative_error(layer(x), layer_reference(layer, x)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "gelu"])
@pytest.mark.parametrize("case", [GENERAL[1], GENERAL[8]], ids=["few", "thin"])
def test_union_of_taps_with_activations(case, activation):
    layer, x = general_layer(case, "float32", activation=activation)
    assert "phase_columns" in paths(layer, x)
    expected = layer_reference(layer, x, activation)
    assert relative_error(layer(x), expected) <= 1e-5


@pytest.mark.parametrize("case", [GENERAL[0], GENERAL[7], GENERAL[8]],
                         ids=["few", "crops", "thin"])
def test_one_thread_and_two_give_the_same_sums(case):
    layer, x = general_layer(case, "float32")
    np.testing.assert_array_equal(layer(x, num_threads=1), layer(x, num_threads=2))


@pytest.mark.parametrize("case", [GENERAL[2], GENERAL[8]], ids=["few", "thin"])
def test_any_output_window_matches_the_full_output(case):
    """The core computes any window of the output (the dask path asks for them): every
    point's block is cut at the window's edges."""
    layer, x = general_layer(case, "float32")
    assert_windows_match(layer, x, "phase_columns", seed=5)


@pytest.mark.parametrize("case", [GENERAL[0], GENERAL[8]], ids=["few", "thin"])
def test_non_finite_inputs_reach_only_the_outputs_their_taps_reach(case):
    """A phase's zero weight at another phase's offset times an infinite input would be
    NaN: such inputs take one panel per phase, and NaN and infinities land where the
    reference puts them."""
    layer, x = general_layer(case, "float32")
    assert "phase_columns" in paths(layer, x)
    # the per-phase plan those inputs take keeps to the planner's switches
    assert "lanes" not in layer._core_plan(x.shape)._without_columns().explain()["paths"]
    x[0, 1, 2, 3, 0] = np.nan
    x[-1, -1, 1, 2, -1] = np.inf
    x[0, 2, 3, 1, 0] = -np.inf
    actual = layer(x)
    with np.errstate(invalid="ignore"):
        expected = layer_reference(layer, x)
    assert_same_non_finite(actual, expected)


def test_strides_with_dilation_from_other_frameworks():
    """PyTorch and ONNX layers may have both; the union's offsets then have gaps."""
    rng = np.random.default_rng(8)
    kernel = rng.standard_normal((3, 2, 3, 1, 5))
    bias = rng.standard_normal(1)
    x = rng.standard_normal((1, 4, 5, 6, 5))
    for dtype in ("float32", "float64"):
        # d: offsets 0 and -3 for one phase, -1 for the other
        packed = _core.PackedKernel(kernel, bias, (2, 2, 2), (3, 1, 1), dtype)
        expected = conv3d_transpose(x, kernel, bias, (2, 2, 2), "valid", None, (3, 1, 1))
        out = np.empty(expected.shape, dtype)
        plan = packed.plan(x.shape, out.shape, (0, 0, 0))
        if dtype == "float32":
            assert "phase_columns" in plan.explain()["paths"]
        plan.run(np.ascontiguousarray(x, dtype), out)
        assert relative_error(out, expected) <= TOLERANCE[dtype]


def test_empty_batch_and_zero_channels():
    layer, x = make_layer(1, 2, "float32", batch=0)
    assert layer(x).shape == (0, 6, 8, 10, 1)
    layer = deconv3d.Conv3DTranspose(1, 2, 2)
    x = np.zeros((1, 2, 2, 2, 0), np.float32)
    layer.build(x.shape)
    np.testing.assert_array_equal(layer(x), np.zeros((1, 4, 4, 4, 1), np.float32))
