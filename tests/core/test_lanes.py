"""Layers with 1-4 filters whose taps overlap: input-grid points across the vector lanes.

The plan takes this path (`lanes`, _lanes.pxd), when _core.LANES allows it, where the
panels it replaces would waste a fifth or more of their multiply-adds.  Each case is checked against the naive reference:
every filter count, strides with several w phases whose grid points start apart, crops
and output_padding, dilation, rows and widths that leave partial blocks of lanes, both
dtypes and data formats, with and without bias, with relu (the vectorized output step)
and other activations (one value at a time); then windows of the output, non-finite
inputs, one thread against two, and two Python threads sharing a plan (and its
scratch) at once.  Under DECONV3D_KERNEL=avx2 or =generic the same cases test those
kernels.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import deconv3d
from deconv3d import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import (assert_python_threads_agree, assert_same_non_finite,  # noqa: E402
                       assert_windows_match, layer_reference, relative_error)

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
DEFAULT_MIN_POINTS = _core.LANES_MIN_POINTS     # before the fixture lowers it

# filters, kernel, strides, padding, output_padding, dilation, spatial, channels, batch
CASES = [
    (4, 3, 2, "same", None, 1, (5, 6, 7), 16, 1),               # few filters, k3 s2
    (1, 3, 2, "same", None, 1, (4, 5, 37), 8, 2),               # w beyond one block
    (2, 3, 1, "same", None, 1, (3, 7, 9), 13, 1),               # stride 1
    (3, 5, 1, "valid", None, 1, (2, 3, 4), 9, 3),               # kernel 5, many images
    (4, (2, 3, 4), (1, 2, 3), "valid", None, 1, (3, 2, 5), 11, 1),  # per-axis
    (2, 4, 3, "same", None, 1, (3, 4, 6), 8, 1),                # phases start apart
    (1, 3, 2, "valid", (1, 0, 1), 1, (3, 3, 4), 10, 1),         # output_padding
    (3, 3, 1, "same", None, (2, 1, 3), (4, 3, 8), 9, 2),        # dilation
    (4, 4, 3, "same", None, 1, (1, 1, 1), 12, 1),               # one input point
    (2, (1, 1, 3), (1, 1, 2), "same", None, 1, (2, 2, 50), 8, 1),  # only w overlaps
]
IDS = ["k3s2", "long_w", "stride1", "k5", "per_axis", "apart", "output_padding",
       "dilation", "one_point", "w_only"]
# float64 panels are half as wide: these waste too little there for the lanes to pay
PANELS_IN_FLOAT64 = {"k3s2", "per_axis", "one_point"}


@pytest.fixture(autouse=True)
def with_lanes(monkeypatch):
    """The planner's switch, on whatever the default (other tests turn it off), for every
    lanes kernel (by default only AVX-512's are fast enough to be taken)."""
    monkeypatch.setattr(_core, "LANES", True)
    monkeypatch.setattr(_core, "LANES_MIN_POINTS", 1)


def make_layer(case, dtype, activation=None, use_bias=True, data_format="channels_last",
               num_threads=2):
    filters, kernel, strides, padding, output_padding, dilation, spatial, channels, batch = case
    rng = np.random.default_rng(filters * 100 + channels + sum(spatial))
    layer = deconv3d.Conv3DTranspose(filters, kernel, strides, padding,
                                     output_padding=output_padding, dilation_rate=dilation,
                                     dtype=dtype, activation=activation, use_bias=use_bias,
                                     data_format=data_format, num_threads=num_threads)
    shape = ((batch, channels, *spatial) if data_format == "channels_first"
             else (batch, *spatial, channels))
    x = rng.standard_normal(shape).astype(dtype)
    layer.build(x.shape)
    weights = [rng.standard_normal(layer.kernel.shape) / np.sqrt(channels)]
    if use_bias:
        weights.append(rng.standard_normal(filters))
    layer.set_weights(weights)
    return layer, x


def plan_of(layer, x):
    return layer._core_plan(x.shape)


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_layer_takes_lanes_and_matches_reference(case, dtype, use_bias, request):
    layer, x = make_layer(case, dtype, use_bias=use_bias)
    info = plan_of(layer, x).explain()
    case_id = request.node.callspec.id.split("-")[0]
    if dtype == "float32" or case_id not in PANELS_IN_FLOAT64:
        assert info["paths"] == {"lanes"}, info["paths"]
        assert info["kernel"].startswith(f"f{8 * np.dtype(dtype).itemsize}_lanes_")
    else:
        assert "lanes" not in info["paths"]
    assert relative_error(layer(x), layer_reference(layer, x)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[5]], ids=["k3s2", "stride1",
                                                                      "apart"])
def test_activations(case, activation):
    layer, x = make_layer(case, "float32", activation=activation)
    assert relative_error(layer(x), layer_reference(layer, x, activation)) <= 1e-5


def test_relu_keeps_nan_like_keras():
    layer, x = make_layer(CASES[0], "float32", activation="relu")
    x[0, 2, 3, 4, 5] = np.nan
    with np.errstate(invalid="ignore"):
        expected = layer_reference(layer, x, "relu")
    actual = layer(x)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    assert np.isnan(actual).any()


@pytest.mark.parametrize("case", [CASES[2], CASES[7]], ids=["stride1", "dilation"])
def test_channels_first(case):
    layer, x = make_layer(case, "float64", data_format="channels_first")
    assert plan_of(layer, x).explain()["paths"] == {"lanes"}
    assert relative_error(layer(x), layer_reference(layer, x)) <= TOLERANCE["float64"]


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[7]], ids=["k3s2", "k5",
                                                                      "dilation"])
def test_one_thread_and_two_give_the_same_sums(case):
    layer, x = make_layer(case, "float32")
    np.testing.assert_array_equal(layer(x, num_threads=1), layer(x, num_threads=2))


@pytest.mark.parametrize("case", [CASES[0], CASES[5]], ids=["k3s2", "apart"])
def test_any_output_window_matches_the_full_output(case):
    """The dask path asks for windows: the phases then start elsewhere in the block of
    lanes, and rows and lanes are cut at the window's edges."""
    layer, x = make_layer(case, "float32")
    assert_windows_match(layer, x, "lanes", seed=7)


def test_non_finite_inputs_reach_only_the_outputs_their_taps_reach():
    layer, x = make_layer(CASES[0], "float32")
    x[0, 1, 2, 3, 0] = np.nan
    x[0, -1, 1, 2, -1] = np.inf
    x[0, 2, 3, 1, 0] = -np.inf
    actual = layer(x)
    with np.errstate(invalid="ignore"):
        expected = layer_reference(layer, x)
    assert_same_non_finite(actual, expected)


def test_calls_reuse_the_scratch_and_see_new_inputs():
    """The plan keeps its scratch (the zeros between rows stay): a second input must not
    see the first one's values."""
    layer, x = make_layer(CASES[1], "float32")
    first = layer(x)
    y = np.random.default_rng(3).standard_normal(x.shape).astype("float32")
    assert relative_error(layer(y), layer_reference(layer, y)) <= 1e-5
    np.testing.assert_array_equal(layer(x), first)


def test_two_python_threads_share_a_plan():
    """A call finding the plan's scratch taken by another thread's makes its own."""
    layer, x = make_layer(CASES[0], "float32", num_threads=1)
    assert_python_threads_agree(layer, x, calls=40)


def test_not_taken_where_the_panels_waste_little_or_filters_are_many():
    # k4 s2, 2 filters: 8 phases x 2 filters fill one 16-wide panel with no zeros
    for filters, kernel, strides, channels, expected in [
            (2, 4, 2, 16, "phase_columns"), (5, 3, 2, 16, None),
            (4, 3, 2, 4, None), (4, 2, 2, 16, None)]:
        layer = deconv3d.Conv3DTranspose(filters, kernel, strides, "same")
        x = np.zeros((1, 4, 5, 6, channels), "float32")
        layer.build(x.shape)
        paths = layer._core_plan(x.shape).explain()["paths"]
        assert "lanes" not in paths, (filters, kernel, strides, channels, paths)
        if expected is not None:
            assert expected in paths


def test_turned_off_the_same_layer_takes_panels(monkeypatch):
    layer, x = make_layer(CASES[0], "float32")
    lanes = layer(x)
    monkeypatch.setattr(_core, "LANES", False)
    assert "lanes" not in layer._core_plan(x.shape).explain()["paths"]
    assert relative_error(layer(x), lanes) <= 1e-6


def test_by_default_taken_only_with_kernels_of_enough_points(monkeypatch):
    """AVX2's and the portable lanes kernels lose to the panels: by default the planner
    takes the path only where the CPU's lanes kernel has DEFAULT_MIN_POINTS points."""
    layer, x = make_layer(CASES[0], "float32")
    points = plan_of(layer, x).explain()["lanes"][0]
    monkeypatch.setattr(_core, "LANES_MIN_POINTS", DEFAULT_MIN_POINTS)
    paths = plan_of(layer, x).explain()["paths"]
    assert ("lanes" in paths) == (points >= DEFAULT_MIN_POINTS), (points, paths)
    assert relative_error(layer(x), layer_reference(layer, x)) <= 1e-5
