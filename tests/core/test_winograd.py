"""Stride-1 layers with 3x3x3 and 5x5x5 kernels: the Winograd path.

The plan takes this path (`winograd`, _winograd.pxd) for stride 1, no dilation, a 3^3
or 5^3 kernel and enough channels and filters, when _core.WINOGRAD allows it.  Each case
is checked against the naive reference: both kernels, "same" and "valid", output sizes
that leave partial tiles on every axis, channels and filters that are not whole vectors
or panels, several images, both dtypes and data formats, with and without bias, relu
(inside the output transform) and other activations; then windows of the output (equal
bit for bit to the full output: tiles sit on even positions of the uncropped output),
non-finite inputs (the direct path then), one thread against two, and where the path
must not be taken.  Under DECONV3D_KERNEL=avx2 or =generic the same cases test those
transforms.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import deconv3d
from deconv3d import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import (assert_python_threads_agree, assert_same_non_finite,  # noqa: E402
                       layer_reference, relative_error)

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
CHANNELS = _core.TUNING["WINOGRAD_MIN_CHANNELS"]
FILTERS = max(_core.TUNING["WINOGRAD_MIN_FILTERS"],
              -(-_core.TUNING["WINOGRAD_MIN_PRODUCT"] // CHANNELS))

# kernel, padding, spatial, channels, filters, batch
CASES = [
    (3, "same", (5, 6, 7), CHANNELS, FILTERS, 1),           # partial tiles on every axis
    (3, "valid", (4, 1, 6), CHANNELS + 5, FILTERS + 3, 2),  # channel and filter tails
    (5, "same", (3, 7, 4), CHANNELS + 1, FILTERS, 1),
    (5, "valid", (2, 3, 1), CHANNELS, FILTERS + 17, 3),     # one input point along w
    (3, "same", (1, 1, 1), CHANNELS, FILTERS, 2),           # one input point
    (3, "same", (9, 8, 10), 2 * CHANNELS, 2 * FILTERS, 1),  # several batches of tiles
]
IDS = ["k3_same", "k3_valid_tails", "k5_same", "k5_valid", "one_point", "batches"]


def make_layer(case, dtype, activation=None, use_bias=True, data_format="channels_last",
               num_threads=2):
    kernel, padding, spatial, channels, filters, batch = case
    rng = np.random.default_rng(kernel * 100 + channels + filters + sum(spatial))
    layer = deconv3d.Conv3DTranspose(filters, kernel, 1, padding, dtype=dtype,
                                     activation=activation, use_bias=use_bias,
                                     data_format=data_format, num_threads=num_threads)
    shape = ((batch, channels, *spatial) if data_format == "channels_first"
             else (batch, *spatial, channels))
    x = rng.standard_normal(shape).astype(dtype)
    layer.build(x.shape)
    # weights scaled as a trained layer's are, so outputs stay of order one
    weights = [rng.standard_normal(layer.kernel.shape) / np.sqrt(channels * kernel ** 3)]
    if use_bias:
        weights.append(rng.standard_normal(filters))
    layer.set_weights(weights)
    return layer, x


def paths_of(layer, x):
    return layer._core_plan(x.shape).explain()["paths"]


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_layer_takes_winograd_and_matches_reference(case, dtype, use_bias):
    layer, x = make_layer(case, dtype, use_bias=use_bias)
    info = layer._core_plan(x.shape).explain()
    assert info["paths"] == {"winograd"}, info["paths"]
    assert info["winograd"][0].startswith(f"f{8 * np.dtype(dtype).itemsize}_wg{case[0]}_")
    assert relative_error(layer(x), layer_reference(layer, x)) <= TOLERANCE[dtype]


def test_error_stays_that_of_direct_sums_on_a_larger_layer():
    """Many tiles, long reductions: the float32 error against the float64 reference
    stays well inside the bound (the transforms add and halve only)."""
    layer, x = make_layer((5, "same", (12, 12, 12), 96, 64, 1), "float32")
    assert paths_of(layer, x) == {"winograd"}
    assert relative_error(layer(x), layer_reference(layer, x)) <= 2e-6


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
@pytest.mark.parametrize("case", [CASES[0], CASES[2]], ids=["k3", "k5"])
def test_activations(case, activation):
    layer, x = make_layer(case, "float32", activation=activation)
    assert paths_of(layer, x) == {"winograd"}
    assert relative_error(layer(x), layer_reference(layer, x, activation)) <= 1e-5


@pytest.mark.parametrize("case", [CASES[1], CASES[2]], ids=["k3", "k5"])
def test_channels_first(case):
    layer, x = make_layer(case, "float64", data_format="channels_first")
    assert paths_of(layer, x) == {"winograd"}
    assert relative_error(layer(x), layer_reference(layer, x)) <= TOLERANCE["float64"]


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[5]], ids=["k3", "k5", "batches"])
def test_one_thread_and_two_give_the_same_sums(case):
    layer, x = make_layer(case, "float32")
    np.testing.assert_array_equal(layer(x, num_threads=1), layer(x, num_threads=2))


@pytest.mark.parametrize("case", [CASES[0], CASES[3]], ids=["k3", "k5"])
def test_any_output_window_matches_the_full_output(case):
    """The dask path asks for windows (the window's start added to the crops): tiles
    keep their places on the uncropped output, so every voxel is computed the same way."""
    layer, x = make_layer(case, "float32")
    full = layer(x)
    plan = layer._core_plan(x.shape)
    rng = np.random.default_rng(11)
    for _ in range(12):
        start = [int(rng.integers(0, n)) for n in full.shape[1:4]]
        stop = [int(rng.integers(a + 1, n + 1)) for a, n in zip(start, full.shape[1:4])]
        window = np.empty((x.shape[0], *(b - a for a, b in zip(start, stop)),
                           full.shape[4]), full.dtype)
        crops = tuple(c + a for c, a in zip(plan.crops, start))
        part = plan.kernel.plan(x.shape, window.shape, crops)
        assert part.explain()["paths"] == {"winograd"}
        part.run(x, window)
        np.testing.assert_array_equal(
            window, full[:, start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]])


def test_non_finite_inputs_take_the_direct_path():
    """The transforms subtract inputs from each other: an infinite input would spread NaN
    over its tiles.  Such inputs go to the direct path, which places them as Keras does."""
    layer, x = make_layer(CASES[0], "float32")
    x[0, 1, 2, 3, 0] = np.nan
    x[0, -1, 1, 2, -1] = np.inf
    x[0, 2, 3, 1, 0] = -np.inf
    actual = layer(x)
    with np.errstate(invalid="ignore"):
        expected = layer_reference(layer, x)
    assert_same_non_finite(actual, expected)
    finite = np.where(np.isfinite(x), x, 0).astype(x.dtype)
    assert relative_error(layer(finite), layer_reference(layer, finite)) <= 1e-5


def test_two_python_threads_share_a_plan():
    layer, x = make_layer(CASES[5], "float32", num_threads=1)
    assert_python_threads_agree(layer, x, calls=20)


@pytest.mark.parametrize("kernel, strides, dilation, channels, filters", [
    (3, 2, 1, CHANNELS, FILTERS),           # stride 2
    (3, (1, 1, 2), 1, CHANNELS, FILTERS),   # stride 2 on one axis
    (3, 1, 2, CHANNELS, FILTERS),           # dilation
    (4, 1, 1, CHANNELS, FILTERS),           # no transforms for 4 taps
    ((3, 3, 5), 1, 1, CHANNELS, FILTERS),   # mixed lengths
    # too few channels, too few filters, too small a product of the two for the
    # transforms to pay (each alone)
    (3, 1, 1, CHANNELS - 1, 4 * FILTERS),
    (3, 1, 1, 4 * CHANNELS, _core.TUNING["WINOGRAD_MIN_FILTERS"] - 1),
    (3, 1, 1, CHANNELS, FILTERS - 1),
])
def test_not_taken_where_it_does_not_apply(kernel, strides, dilation, channels, filters):
    layer = deconv3d.Conv3DTranspose(filters, kernel, strides, "same", dilation_rate=dilation)
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 5, channels)).astype("float32")
    layer.build(x.shape)
    assert "winograd" not in paths_of(layer, x)
    assert relative_error(layer(x), layer_reference(layer, x)) <= 1e-5


def test_turned_off_the_same_layer_takes_the_direct_path(monkeypatch):
    layer, x = make_layer(CASES[0], "float32")
    winograd = layer(x)
    monkeypatch.setattr(_core, "WINOGRAD", False)
    assert "winograd" not in paths_of(layer, x)
    assert relative_error(layer(x), winograd) <= 1e-5


def test_weights_are_the_transformed_kernel():
    """The packed weights hold G (x) G (x) G applied to the flipped kernel, panel by panel:
    transforming a one-hot kernel back checks the layout against an independent sum."""
    layer, x = make_layer(CASES[0], "float64", use_bias=False)
    packed = layer._core_plan(x.shape).kernel
    G = _core.WINOGRAD_G[3]
    n = G.shape[0]
    weights = packed.winograd_weights.reshape(n ** 3, packed.filter_blocks, packed.channels,
                                              packed.nr)
    kernel = layer.kernel[::-1, ::-1, ::-1]         # (3, 3, 3, F, C)
    for xi, (a, b, e) in enumerate(np.ndindex(n, n, n)):
        expected = sum(G[a, i] * G[b, j] * G[e, k] * kernel[i, j, k]
                       for i in range(3) for j in range(3) for k in range(3))
        block = weights[xi].transpose(0, 2, 1).reshape(-1, packed.channels)
        np.testing.assert_allclose(block[:packed.filters], expected, rtol=0, atol=1e-14)
        assert not block[packed.filters:].any()


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_the_whole_output_starts_a_tile(kernel, padding):
    """Tiles are aligned where the layer's output starts (its windows keep that grid), so
    no tile row of a whole output is spent on voxels that are cropped away."""
    layer, x = make_layer((kernel, padding, (6, 7, 8), CHANNELS, FILTERS, 1), "float32")
    out = layer.compute_output_shape(x.shape)[1:4]
    info = layer._core_plan(x.shape).explain()
    assert info["winograd"][1] == tuple((n + 1) // 2 for n in out), (out, info["winograd"])
