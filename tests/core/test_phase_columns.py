"""Kernel == stride with few filters: every phase's filters as columns of one panel.

The plan takes this path (`phase_columns`) where packing the phases side by side saves
at least half of the padded panel columns; each case is checked against the naive
reference, with and without bias, with fused (relu) and unfused activations, in both
dtypes and data formats, and on one thread against two (the same sums, bit for bit).
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import deconv3d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import ACTIVATIONS, conv3d_transpose, relative_error  # noqa: E402

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def make_layer(filters, kernel, dtype, activation=None, use_bias=True, channels=5,
               spatial=(3, 4, 5), batch=2, data_format="channels_last", num_threads=None):
    rng = np.random.default_rng(filters * 100 + channels + sum(np.atleast_1d(kernel)))
    layer = deconv3d.Conv3DTranspose(filters, kernel, kernel, activation=activation,
                                     use_bias=use_bias, dtype=dtype, data_format=data_format,
                                     num_threads=num_threads)
    shape = ((batch, channels, *spatial) if data_format == "channels_first"
             else (batch, *spatial, channels))
    x = rng.standard_normal(shape).astype(dtype)
    layer.build(x.shape)
    weights = [rng.standard_normal(layer.kernel.shape)]
    if use_bias:
        weights.append(rng.standard_normal(filters))
    layer.set_weights(weights)
    return layer, x


def reference(layer, x, activation="linear"):
    channels_first = layer.data_format == "channels_first"
    if channels_first:
        x = x.transpose(0, 2, 3, 4, 1)
    expected = conv3d_transpose(x, layer.kernel, layer.bias if layer.use_bias else None,
                                layer.strides, "valid")
    expected = ACTIVATIONS[activation](expected)
    return expected.transpose(0, 4, 1, 2, 3) if channels_first else expected


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
    assert relative_error(layer(x), reference(layer, x)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softmax", "gelu"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_activations_and_bias(activation, use_bias):
    layer, x = make_layer(2, 2, "float32", activation=activation, use_bias=use_bias)
    assert "phase_columns" in paths(layer, x)
    assert relative_error(layer(x), reference(layer, x, activation)) <= 1e-5


def test_channels_first_and_many_tiles_on_two_threads():
    layer, x = make_layer(1, 2, "float32", channels=16, spatial=(9, 10, 11), batch=3,
                          data_format="channels_first")
    assert "phase_columns" in paths(layer, x)
    one, two = layer(x, num_threads=1), layer(x, num_threads=2)
    np.testing.assert_array_equal(one, two)
    assert relative_error(two, reference(layer, x)) <= 1e-5


def test_a_last_partial_tile_is_complete():
    # 3 * 5 * 7 = 105 voxels: the last tile of 12 holds 9
    layer, x = make_layer(1, (2, 2, 2), "float64", spatial=(3, 5, 7), batch=1)
    np.testing.assert_allclose(layer(x), reference(layer, x), rtol=0,
                               atol=1e-12 * np.abs(reference(layer, x)).max())


def test_not_taken_where_it_saves_little_or_the_layer_is_not_disjoint():
    layer, x = make_layer(16, 2, "float32")
    assert "phase_columns" not in paths(layer, x)
    # output_padding breaks kernel == stride's one-to-one blocks: the general path
    rng = np.random.default_rng(3)
    cropped = deconv3d.Conv3DTranspose(1, 2, 2, output_padding=1)
    x = rng.standard_normal((1, 3, 3, 3, 4)).astype("float32")
    cropped.build(x.shape)
    assert "phase_columns" not in paths(cropped, x) and "disjoint" not in paths(cropped, x)
    expected = conv3d_transpose(x, cropped.kernel, cropped.bias, (2, 2, 2), "valid", (1, 1, 1))
    assert relative_error(cropped(x), expected) <= 1e-5


def test_empty_batch_and_zero_channels():
    layer, x = make_layer(1, 2, "float32", batch=0)
    assert layer(x).shape == (0, 6, 8, 10, 1)
    layer = deconv3d.Conv3DTranspose(1, 2, 2)
    x = np.zeros((1, 2, 2, 2, 0), np.float32)
    layer.build(x.shape)
    np.testing.assert_array_equal(layer(x), np.zeros((1, 4, 4, 4, 1), np.float32))
