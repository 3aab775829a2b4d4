"""deconv3d against the naive NumPy reference (tests/reference.py), no Keras needed."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import deconv3d
import reference
from reference import ACTIVATIONS, conv3d_transpose, relative_error


def run_layer(rng, filters, kernel_size, strides, padding, output_padding, dilation_rate,
              data_format, spatial, channels, batch, dtype, activation=None, use_bias=True):
    """Run deconv3d and the reference on the same random input and weights."""
    layer = deconv3d.Conv3DTranspose(filters, kernel_size, strides, padding, data_format,
                                     output_padding, dilation_rate, activation=activation,
                                     use_bias=use_bias, dtype=dtype)
    shape = (batch, *spatial, channels) if data_format == "channels_last" else (
        batch, channels, *spatial)
    x = rng.standard_normal(shape).astype(dtype)
    layer.build(x.shape)
    kernel = rng.standard_normal(layer.kernel.shape)
    weights = [kernel] + ([rng.standard_normal(filters)] if use_bias else [])
    layer.set_weights(weights)
    actual = layer(x)
    expected = conv3d_transpose(x, layer.kernel, layer.bias, layer.strides, layer.padding,
                                layer.output_padding, layer.dilation_rate, data_format)
    if activation is not None:
        expected = ACTIVATIONS[activation](expected)
    return actual, expected


TOLERANCE = {"float32": 1e-5, "float64": 1e-12}

CASES = [
    # filters, kernel, strides, padding, output_padding, dilation, spatial, channels, batch
    (32, 2, 2, "valid", None, 1, (5, 4, 6), 16, 2),          # U-Net up-sampling, stride == kernel
    (4, 3, 2, "same", None, 1, (4, 5, 3), 3, 1),             # overlapping taps, asymmetric crop
    (4, 4, 2, "same", None, 1, (3, 3, 3), 5, 2),             # GAN-style k4 s2
    (3, 3, 1, "same", None, 1, (5, 5, 5), 2, 1),             # stride 1
    (3, 3, 1, "same", None, 2, (6, 5, 4), 2, 1),             # dilated
    (2, (1, 2, 3), (3, 2, 1), "valid", None, 1, (3, 4, 5), 2, 1),  # per-axis everything
    (2, 1, 3, "valid", None, 1, (3, 3, 3), 2, 1),            # kernel < stride: gaps get bias only
    (2, 1, 3, "same", (2, 1, 0), 1, (3, 3, 3), 2, 1),        # output_padding
    (2, 5, 2, "valid", (1, 0, 1), 1, (2, 1, 2), 3, 1),       # kernel larger than input
    (2, 4, 2, "same", (0, 1, 0), 1, (1, 1, 1), 1, 3),        # size-1 axes, even kernel, op 0
    (3, 2, 2, "valid", None, 1, (3, 3, 3), 4, 0),            # empty batch
    (3, 2, 2, "valid", None, 1, (0, 3, 3), 4, 2),            # empty spatial axis
    (3, 3, 1, "valid", None, 1, (2, 2, 2), 0, 1),            # no input channels: bias only
    (40, 3, 2, "same", None, 1, (3, 5, 4), 21, 3),           # several filter blocks, partial last
    (17, (2, 3, 1), (2, 1, 1), "same", None, 1, (9, 2, 3), 33, 1),  # long rows, one partial block
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_matches_reference(case, data_format, dtype):
    filters, k, s, padding, op, d, spatial, channels, batch = case
    actual, expected = run_layer(np.random.default_rng(len(spatial) + channels), filters, k, s,
                                 padding, op, d, data_format, spatial, channels, batch, dtype)
    assert actual.dtype == np.dtype(dtype)
    assert actual.shape == expected.shape
    assert relative_error(actual, expected) <= TOLERANCE[dtype]


@pytest.mark.parametrize("kernel_size", [3, 2], ids=["overlapping", "kernel-is-stride"])
@pytest.mark.parametrize("activation", sorted(set(ACTIVATIONS) - {"softmax", "log_softmax"}))
def test_fused_activations_match_reference(activation, kernel_size):
    padding = "same" if kernel_size == 3 else "valid"
    actual, expected = run_layer(np.random.default_rng(7), 5, kernel_size, 2, padding, None, 1,
                                 "channels_last", (3, 4, 3), 4, 2, "float64",
                                 activation=activation)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", ["softmax", "log_softmax"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_whole_axis_activations_use_the_last_axis(activation, data_format):
    actual, expected = run_layer(np.random.default_rng(8), 4, 2, 2, "valid", None, 1,
                                 data_format, (2, 3, 4), 3, 1, "float64", activation=activation)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


def test_without_bias_matches_reference():
    actual, expected = run_layer(np.random.default_rng(9), 3, 3, 2, "same", None, 1,
                                 "channels_last", (3, 3, 3), 2, 1, "float64", use_bias=False)
    assert relative_error(actual, expected) <= 1e-12


# Shapes chosen to reach each way the core forms its tiles of 12 voxels: along the
# batch or along a row, read in place or gathered (rows shorter than a tile, rows
# that do not divide by 12, taps reaching only the middle of a tile), and the
# one-vector-wide panels for layers with few filters.
TILE_CASES = [
    # filters, kernel, strides, padding, dilation, spatial, channels, batch
    (3, (1, 1, 4), 1, "valid", (1, 1, 3), (4, 3, 1), 2, 1),   # taps reach a tile's middle only
    (5, (1, 1, 5), 1, "same", (1, 1, 2), (2, 2, 3), 3, 1),    # dilated taps over a short row
    (8, 3, 2, "same", 1, (5, 4, 13), 1, 1),                   # one channel, 8 filters, odd rows
    (4, 3, 1, "valid", 1, (3, 3, 7), 16, 10),                 # batch-major tiles, straddling
    (16, 3, 1, "same", 1, (3, 4, 8), 5, 2),                   # row-major, one full wide block
    (9, 2, 2, "valid", 1, (2, 3, 14), 4, 1),                  # in-place rows, partial block
    (2, (1, 1, 7), 1, "valid", (1, 1, 2), (1, 1, 2), 1, 3),   # kernel far wider than the input
    (7, 3, 1, "same", 1, (4, 4, 4), 3, 12),                   # batch of 12: whole batch tiles
    (7, 3, 1, "same", 1, (2, 2, 3), 3, 30),                   # batch of 30: a partial tile
    (4, (2, 3, 3), (1, 2, 2), "same", 1, (3, 6, 6), 18, 2),   # mixed strides
    (32, 3, 2, "same", 1, (3, 4, 7), 5, 1),                   # wide panels where the CPU has them
    (70, 2, 2, "valid", 1, (2, 3, 4), 6, 2),                  # several wide blocks, partial last
    (5, 3, 1, "same", 1, (2, 3, 20), 4, 1),                   # long rows: w taps merged
    (3, 4, 2, "same", 1, (2, 2, 16), 3, 1),                   # merged, two taps per phase
    (6, (2, 2, 3), 1, "valid", 1, (2, 2, 2), 9, 13),          # merged along the batch
    (4, 3, 1, "same", (1, 1, 2), (2, 5, 9), 6, 1),            # row interiors, borders by column
    (8, 3, 1, "valid", 1, (1, 3, 40), 4, 1),                  # long interiors, a thin last band
    # kernel == stride, nothing cropped: one matrix product into strided outputs
    (19, (1, 2, 3), (1, 2, 3), "valid", 1, (3, 5, 2), 7, 3),  # per-axis, partial block
    (64, 2, 2, "valid", 1, (2, 2, 2), 33, 1),                 # 8 voxels: one full tile, one not
    (4, 1, 1, "valid", (2, 1, 3), (2, 3, 4), 5, 2),           # 1x1x1 kernel, dilation moot
    (6, 2, 2, "valid", 1, (1, 1, 1), 0, 2),                   # no input channels: bias only
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("case", TILE_CASES, ids=[f"tiles{i}" for i in range(len(TILE_CASES))])
def test_every_tile_path_matches_reference(case, threads, dtype):
    filters, k, s, padding, d, spatial, channels, batch = case
    rng = np.random.default_rng(sum(spatial) + channels)
    layer = deconv3d.Conv3DTranspose(filters, k, s, padding, dilation_rate=d, dtype=dtype,
                                     num_threads=threads)
    x = rng.standard_normal((batch, *spatial, channels)).astype(dtype)
    layer.build(x.shape)
    layer.set_weights([rng.standard_normal(layer.kernel.shape), rng.standard_normal(filters)])
    expected = conv3d_transpose(x, layer.kernel, layer.bias, layer.strides, layer.padding,
                                None, layer.dilation_rate)
    # an explicit thread count is kept even for calls this small
    assert relative_error(layer(x), expected) <= TOLERANCE[dtype]


# The row kernels (AVX-512): tiles of two runs of 6 voxels along w whose 2 or 3 w taps,
# 1 or 2 input voxels apart, all reach them, with panels of one or two vectors (16 or
# 32 float32 filters, 8 or 16 float64).  Rows whose interior is not a multiple of 6,
# bands of rows cut short, d and h borders inside a tile, reductions long enough to be
# split in groups, and a fused relu.  Elsewhere the same shapes take the plain kernels.
ROW_CASES = [
    # filters (float32), kernel, strides, padding, dilation, spatial, channels, batch
    (32, 3, 1, "same", 1, (3, 5, 20), 8, 1),        # 3 taps 1 apart, 2x6 runs + columns
    (16, 3, 1, "valid", 1, (2, 3, 17), 5, 2),       # one-vector panels, odd interior
    (32, 3, 2, "same", 1, (3, 3, 14), 6, 1),        # stride 2: phases of 2 taps and of 1
    (32, 4, 2, "same", 1, (2, 3, 13), 4, 1),        # every phase 2 taps
    (32, 2, 1, "valid", 1, (2, 4, 15), 7, 1),       # 2 taps, 1 apart
    (16, 3, 1, "same", 2, (2, 4, 19), 3, 1),        # dilation 2: taps 2 apart
    (32, 2, 1, "same", 2, (3, 2, 16), 5, 1),        # 2 taps 2 apart
    (32, 3, 1, "same", 1, (2, 2, 14), 200, 1),      # 600 channels a tap pair: split groups
    (48, 3, 1, "same", 1, (2, 3, 13), 4, 1),        # two panels (32 + 16 filters)
    (24, (1, 1, 3), 1, "same", 1, (1, 1, 40), 3, 1),  # partial panel, one row per band
    (16, 3, 1, "valid", 1, (2, 3, 8), 16, 20),     # many images: rows, not the batch
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("case", ROW_CASES, ids=[f"rows{i}" for i in range(len(ROW_CASES))])
def test_row_kernel_tiles_match_reference(case, activation, dtype):
    filters, k, s, padding, d, spatial, channels, batch = case
    if dtype == "float64":      # the same vector widths hold half as many filters
        filters = max(1, filters // 2)
    actual, expected = run_layer(np.random.default_rng(sum(spatial) + channels), filters, k, s,
                                 padding, None, d, "channels_last", spatial, channels, batch,
                                 dtype, activation=activation)
    assert relative_error(actual, expected) <= TOLERANCE[dtype]


# Outputs of 16 MiB and more are written with non-temporal stores (where a voxel's
# filters cover whole cache lines); the same results must come out, on both paths of
# the core, with a partial last panel, a fused relu, and an activation applied after
# the core (which turns streaming off).
STREAM_CASES = [
    # filters, kernel, strides, padding, spatial, channels, activation
    (32, 2, 2, "valid", (16, 32, 32), 4, None),      # kernel == stride: 16.8 MB out
    (40, 2, 2, "valid", (16, 32, 26), 3, "relu"),    # partial panel, fused relu
    (32, 3, 2, "same", (16, 32, 32), 3, None),       # overlapping taps
    (16, 3, 1, "same", (48, 64, 96), 2, "tanh"),     # stride 1, activation after the core
]


@pytest.mark.parametrize("case", STREAM_CASES, ids=[f"stream{i}" for i in range(len(STREAM_CASES))])
def test_streamed_outputs_match_reference(case):
    filters, k, s, padding, spatial, channels, activation = case
    actual, expected = run_layer(np.random.default_rng(11), filters, k, s, padding, None, 1,
                                 "channels_last", spatial, channels, 1, "float32",
                                 activation=activation)
    assert actual.nbytes >= 16 << 20
    assert relative_error(actual, expected) <= TOLERANCE["float32"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("big", [False, True], ids=["small", "streamed"])
def test_channels_first_transposes_match_reference(big, dtype):
    """channels_first input is transposed for the core and its output back, in blocks
    (streamed when the output is large); any input strides are read as they are."""
    rng = np.random.default_rng(12)
    spatial, channels, filters = ((16, 32, 34), 5, 17) if big else ((3, 5, 7), 19, 21)
    layer = deconv3d.Conv3DTranspose(filters, 2, 2, data_format="channels_first", dtype=dtype)
    base = rng.standard_normal((2, 2 * channels, *spatial)).astype(dtype)
    x = base[:, ::-2]                              # negative, non-unit channel strides
    layer.build(x.shape)
    layer.set_weights([rng.standard_normal(layer.kernel.shape), rng.standard_normal(filters)])
    actual = layer(x)
    assert actual.flags.c_contiguous and (actual.nbytes >= 16 << 20) == big
    expected = conv3d_transpose(x, layer.kernel, layer.bias, layer.strides, layer.padding,
                                data_format="channels_first")
    assert relative_error(actual, expected) <= TOLERANCE[dtype]


def axis_arguments():
    return st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
                     st.integers(0, 5), st.booleans())


@settings(max_examples=150, deadline=None)
@given(axes=st.tuples(axis_arguments(), axis_arguments(), axis_arguments()),
       padding=st.sampled_from(["valid", "same"]),
       data_format=st.sampled_from(["channels_last", "channels_first"]),
       filters=st.integers(1, 5), channels=st.integers(1, 5), batch=st.integers(0, 2),
       use_dilation=st.booleans(), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**32 - 1))
def test_random_configurations_match_reference(axes, padding, data_format, filters, channels,
                                               batch, use_dilation, dtype, seed):
    kernel = tuple(a[0] for a in axes)
    if use_dilation:        # Keras forbids strides > 1 together with dilation > 1
        strides, dilation = (1, 1, 1), tuple(a[1] for a in axes)
    else:
        strides, dilation = tuple(a[1] for a in axes), (1, 1, 1)
    spatial = tuple(a[3] for a in axes)
    with_op = all(a[4] for a in axes)
    output_padding = tuple(a[2] % s for a, s in zip(axes, strides)) if with_op else None
    actual, expected = run_layer(np.random.default_rng(seed), filters, kernel, strides, padding,
                                 output_padding, dilation, data_format, spatial, channels, batch,
                                 dtype)
    assert actual.shape == expected.shape
    assert relative_error(actual, expected) <= TOLERANCE[dtype]


@pytest.mark.parametrize("choice", ["generic", "avx2"])
def test_other_micro_kernels_match_reference(tmp_path, choice):
    """The kernels this CPU would not pick on its own give the same results.

    DECONV3D_KERNEL=generic forces the plain-C kernels (used where AVX2/FMA is
    missing), =avx2 the AVX2 ones without the wide AVX-512 panels.  Filter counts
    cover the narrow, normal and wide panel widths of both dtypes.
    """
    import os
    import subprocess
    import sys
    script = (
        "import numpy as np, deconv3d, sys\n"
        "from deconv3d import _core\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from reference import conv3d_transpose, relative_error\n"
        "assert 'avx512' not in _core.micro_kernel, _core.micro_kernel\n"
        "assert sys.argv[2] != 'generic' or _core.micro_kernel == 'generic'\n"
        "rng = np.random.default_rng(5)\n"
        "for dtype in ('float32', 'float64'):\n"
        "    for filters in (3, 19, 32, 64):\n"
        "        for k, s, pad in ((3, 2, 'same'), (2, 2, 'valid'), (3, 1, 'valid')):\n"
        "            layer = deconv3d.Conv3DTranspose(filters, k, s, pad, dtype=dtype,\n"
        "                                             activation='relu')\n"
        "            x = rng.standard_normal((2, 3, 4, 5, 7)).astype(dtype)\n"
        "            y = layer(x)\n"
        "            ref = np.maximum(conv3d_transpose(x, layer.kernel, layer.bias, (s,) * 3,\n"
        "                                              pad), 0)\n"
        "            assert relative_error(y, ref) < 1e-5, (dtype, filters, k, s, pad)\n"
        "print('ok')\n")
    env = dict(os.environ, DECONV3D_KERNEL=choice)
    tests_dir = os.path.dirname(reference.__file__)
    result = subprocess.run([sys.executable, "-c", script, tests_dir, choice], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
