"""Random layers and chunkings for the dask tests, and the comparison with the NumPy call."""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
pytest.importorskip("dask.array")
st = hypothesis.strategies

ACTIVATIONS = [None, "relu", "tanh", "gelu", "softmax", "log_softmax", "sparsemax", "glu"]


@st.composite
def layer_configs(draw):
    """Keyword arguments of a random Conv3DTranspose (small, every option in play)."""
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(3))
    if draw(st.booleans()):
        strides, dilation = tuple(draw(st.integers(1, 3)) for _ in range(3)), (1, 1, 1)
    else:
        strides, dilation = (1, 1, 1), tuple(draw(st.integers(1, 3)) for _ in range(3))
    padding = draw(st.sampled_from(["valid", "same"]))
    output_padding = None
    if draw(st.booleans()):
        output_padding = tuple(draw(st.integers(0, s - 1)) for s in strides)
    return dict(filters=draw(st.integers(1, 5)), kernel_size=kernel, strides=strides,
                padding=padding, output_padding=output_padding, dilation_rate=dilation,
                data_format=draw(st.sampled_from(["channels_last", "channels_first"])),
                activation=draw(st.sampled_from(ACTIVATIONS)))


@st.composite
def partitions(draw, n):
    """Chunk lengths summing to n: single voxels, uneven pieces, or one chunk."""
    if n == 0:
        return (0,)
    style = draw(st.sampled_from(["ones", "random", "whole", "regular"]))
    if style == "ones":
        return (1,) * n
    if style == "whole":
        return (n,)
    if style == "regular":
        size = draw(st.integers(1, n))
        return (size,) * (n // size) + ((n % size,) if n % size else ())
    chunks, left = [], n
    while left:
        chunks.append(draw(st.integers(1, left)))
        left -= chunks[-1]
    return tuple(chunks)


@st.composite
def cases(draw):
    """(layer kwargs, input shape, chunks) with the input in the layer's data format."""
    config = draw(layer_configs())
    batch, channels = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    spatial = tuple(draw(st.integers(1, 7)) for _ in range(3))
    if config["data_format"] == "channels_last":
        shape = (batch, *spatial, channels)
    else:
        shape = (batch, channels, *spatial)
    chunks = tuple(draw(partitions(n)) for n in shape)
    return config, shape, chunks


def relative_error(actual, reference):
    scale = max(float(np.abs(reference.astype(np.float64)).max(initial=0)), 1e-30)
    return float(np.abs(actual.astype(np.float64) - reference).max(initial=0)) / scale


def check_case(config, shape, chunks, compute, seed=0):
    """The dask call equals the NumPy call bit for bit (or both raise ValueError)."""
    import dask.array as da

    import deconv3d

    layer = deconv3d.Conv3DTranspose(**config)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    try:
        reference = layer(x)
    except ValueError:
        # e.g. glu on an odd last axis: the lazy call must refuse too
        with pytest.raises(ValueError):
            compute(layer(da.from_array(x, chunks=chunks)))
        return
    lazy = layer(da.from_array(x, chunks=chunks))
    assert lazy.shape == reference.shape and lazy.dtype == reference.dtype
    actual = compute(lazy)
    assert actual.shape == reference.shape and actual.dtype == reference.dtype
    assert relative_error(actual, reference) <= 1e-6, (config, shape, chunks)
    # Stronger than the 1e-6 promised wherever the summation order allows: the gemm
    # kernels sum every voxel's taps and channels in an order that does not depend on
    # where its block starts, so blocks are bit-identical to the whole call (checked with
    # every micro-kernel set, DECONV3D_KERNEL=avx2/generic too).  A row kernel sums a
    # voxel's w taps channel by channel instead, and whether a voxel lands in a row run
    # or a border column depends on its block's edges: there only the 1e-6 holds.
    if not may_use_row_kernels(layer):
        assert np.array_equal(actual, reference, equal_nan=True), (config, shape, chunks)


def may_use_row_kernels(layer):
    """Whether the core may give some of this built layer's tiles to the row kernels:
    its reduction is long enough for them and this CPU has row kernels for its panel
    width."""
    from deconv3d import _core

    packed = layer._state[2]
    heavy = packed.max_taps * packed.channels >= _core.TUNING["W_LINES_MIN_REDUCTION"]
    itemsize = packed.weights.dtype.itemsize
    return heavy and any(_core.find_kernel(itemsize, "row", packed.nr, taps, spacing)
                         for taps in (2, 3) for spacing in (1, 2))
