"""Layers on dask arrays (deconv3d.dask): the lazy result equals the NumPy call."""

import os
import subprocess
import sys

import numpy as np
import pytest

from chunk_cases import cases, check_case, relative_error

import deconv3d
from deconv3d import shapes

da = pytest.importorskip("dask.array")
import dask  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def threaded(lazy):
    return lazy.compute(scheduler="threads")


def synchronous(lazy):
    return lazy.compute(scheduler="sync")


@settings(max_examples=150, **SETTINGS)
@given(cases())
def test_random_layers_and_chunkings_threaded(case):
    check_case(*case, threaded)


@settings(max_examples=40, **SETTINGS)
@given(cases())
def test_random_layers_and_chunkings_synchronous(case):
    check_case(*case, synchronous)


# (layer kwargs, input shape, chunks): the named cases of the issue, each on its own
NAMED = {
    "unet k2s2": (dict(filters=4, kernel_size=2, strides=2), (2, 8, 6, 10, 3), (1, 4, 3, 5, 3)),
    "k3s2 same, halo 1 before": (dict(filters=3, kernel_size=3, strides=2, padding="same"),
                                 (1, 9, 8, 7, 4), (1, 4, 3, 2, 4)),
    "k4s2 same, halo both sides": (dict(filters=3, kernel_size=4, strides=2, padding="same"),
                                   (1, 9, 8, 7, 2), (1, 2, 5, 3, 2)),
    "k3s1 same": (dict(filters=2, kernel_size=3, padding="same"), (1, 7, 7, 7, 2),
                  (1, 3, 3, 3, 1)),
    "1-voxel chunks smaller than a dilated halo": (
        dict(filters=2, kernel_size=3, dilation_rate=3, padding="same"), (1, 8, 5, 6, 3),
        (1, 1, 1, 1, 1)),
    "valid with output padding": (
        dict(filters=2, kernel_size=(2, 3, 4), strides=(3, 2, 3), output_padding=(2, 1, 0)),
        (2, 5, 6, 4, 3), (1, (2, 1, 2), 4, 1, (1, 2))),
    "same, output padding 0": (
        dict(filters=2, kernel_size=2, strides=3, padding="same", output_padding=0),
        (1, 5, 6, 4, 3), (1, 2, 1, 3, 3)),
    "stride above kernel": (dict(filters=2, kernel_size=1, strides=3), (1, 4, 5, 3, 2),
                            (1, 1, 2, 3, 1)),
    "row kernels in the whole call and in blocks": (
        dict(filters=4, kernel_size=3, padding="same"), (1, 3, 4, 20, 8), (1, 3, 2, 7, 8)),
    "few filters, every phase side by side": (
        dict(filters=1, kernel_size=2, strides=2), (1, 5, 6, 7, 16), (1, 2, 4, 3, 16)),
    "channels_first, channels split": (
        dict(filters=3, kernel_size=3, strides=2, padding="same",
             data_format="channels_first"), (2, 5, 6, 5, 4), (1, (2, 3), 2, (1, 4), 3)),
    "channels_first softmax over W": (
        dict(filters=3, kernel_size=3, strides=2, padding="same", activation="softmax",
             data_format="channels_first"), (1, 2, 5, 4, 6), (1, 1, 2, 2, 2)),
    "channels_first glu halves W": (
        dict(filters=3, kernel_size=2, strides=2, activation="glu",
             data_format="channels_first"), (1, 2, 3, 4, 5), (1, 1, 2, 2, 2)),
    "glu halves the filters": (dict(filters=6, kernel_size=3, strides=2, activation="glu"),
                               (1, 4, 5, 3, 2), (1, 1, 2, 2, 1)),
    "log_softmax, channels split": (
        dict(filters=5, kernel_size=3, strides=2, padding="same", activation="log_softmax"),
        (1, 4, 5, 3, 6), (1, 2, 2, 2, (1, 2, 3))),
    "sparsemax": (dict(filters=5, kernel_size=2, strides=1, activation="sparsemax"),
                  (1, 4, 5, 3, 2), (1, 3, 2, 2, 2)),
    "fused element-wise activation": (
        dict(filters=4, kernel_size=3, strides=2, activation="gelu"), (1, 4, 5, 3, 2),
        (1, 1, 3, 2, 1)),
    "empty batch": (dict(filters=2, kernel_size=3, strides=2), (0, 3, 3, 3, 2),
                    (1, 2, 2, 2, 2)),
    "empty spatial axis": (dict(filters=2, kernel_size=3, strides=2), (1, 0, 3, 3, 2),
                           (1, 1, 2, 2, 2)),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_cases(name):
    config, shape, chunks = NAMED[name]
    check_case(config, shape, chunks, threaded)


@pytest.mark.parametrize("kernel", ["avx2", "generic"])
def test_bit_identical_with_the_other_micro_kernels(kernel, tmp_path):
    # every block sums in the order of the whole call with each micro-kernel set too
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from chunk_cases import *; "
              "from test_arrays import NAMED; "
              "[check_case(*NAMED[n], lambda y: y.compute(scheduler='threads')) for n in NAMED]")
    env = dict(os.environ, DECONV3D_KERNEL=kernel)
    # from an empty folder: a source checkout's unbuilt deconv3d/ must not shadow the package
    done = subprocess.run([sys.executable, "-c", script, os.path.dirname(__file__)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("dtype", ["float64", "float16", "mixed_float16"])
def test_other_dtypes(dtype):
    layer = deconv3d.Conv3DTranspose(3, 3, 2, padding="same", dtype=dtype)
    x = np.random.default_rng(1).standard_normal((1, 5, 4, 6, 2))
    reference = layer(x)
    lazy = layer(da.from_array(x, chunks=(1, 2, 3, 2, 1)))
    assert lazy.dtype == reference.dtype
    actual = lazy.compute()
    assert actual.dtype == reference.dtype
    np.testing.assert_array_equal(actual, reference)


def test_integer_input_is_cast_like_the_numpy_call():
    layer = deconv3d.Conv3DTranspose(2, 3, 2)
    x = np.arange(2 * 3 * 4 * 5 * 2).reshape(2, 3, 4, 5, 2) % 7
    np.testing.assert_array_equal(layer(da.from_array(x, chunks=2)).compute(), layer(x))


def test_callable_activation_runs_per_block():
    layer = deconv3d.Conv3DTranspose(3, 3, 2, activation=lambda y: np.abs(y) + 1)
    x = np.random.default_rng(2).standard_normal((1, 5, 4, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(layer(da.from_array(x, chunks=2)).compute(), layer(x))


def test_callable_that_changes_the_shape_is_refused_when_computed():
    layer = deconv3d.Conv3DTranspose(4, 2, 2, activation=lambda y: y[..., :2])
    lazy = layer(da.from_array(np.ones((1, 2, 2, 2, 1), np.float32), chunks=1))
    with pytest.raises(ValueError, match="keep the shape"):
        lazy.compute()


def input_blocks(graph, key, input_name):
    """The input blocks an output block reads: its own dependencies, or through a slicing task."""
    found = set()
    for dependency in dask.core.get_dependencies(graph, key):
        if dependency[0] == input_name:
            found.add(dependency)
        else:
            found |= {k for k in dask.core.get_dependencies(graph, dependency)
                      if k[0] == input_name}
    return found


def test_blocks_read_only_the_input_blocks_they_need():
    layer = deconv3d.Conv3DTranspose(2, 2, 2)          # halo 0: one input block each
    x = da.ones((1, 8, 8, 8, 3), chunks=(1, 4, 4, 4, 3), dtype=np.float32)
    lazy = layer(x)
    graph = dict(lazy.__dask_graph__())
    for key in dask.core.flatten(lazy.__dask_keys__()):
        assert dask.core.get_dependencies(graph, key) - {key[0] + "-layer"} == {
            (x.name, *key[1:])}
    layer = deconv3d.Conv3DTranspose(2, 3, 2, padding="same")   # halo (1, 0)
    lazy = layer(x)
    graph = dict(lazy.__dask_graph__())
    counts = sorted(len(input_blocks(graph, key, x.name))
                    for key in dask.core.flatten(lazy.__dask_keys__()))
    assert counts == [1] + [2] * 3 + [4] * 3 + [8]


def test_neighbour_blocks_give_only_their_halo_rows():
    # halo (1, 0): a block reads one row of each neighbour before it, so what a cluster
    # ships between blocks is one row thick, not a whole 4^3 block
    layer = deconv3d.Conv3DTranspose(2, 3, 2, padding="same")
    x = da.ones((1, 8, 8, 8, 3), chunks=(1, 4, 4, 4, 3), dtype=np.float32)
    lazy = layer(x)
    graph = dict(lazy.__dask_graph__())
    outputs = set(dask.core.flatten(lazy.__dask_keys__()))
    pieces = [key for key in graph if key not in outputs and key[0] != x.name
              and isinstance(key, tuple)]
    assert len(pieces) == 19           # 7 neighbours' faces, edges and corners, shared
    for key in pieces:
        shape = dask.get(graph, key).shape
        assert min(shape[1:4]) == 1 and max(shape[1:4]) <= 4, (key, shape)


def test_output_chunks_are_stride_times_the_input_chunks():
    layer = deconv3d.Conv3DTranspose(2, 3, (2, 1, 3), padding="valid")
    x = da.ones((2, 5, 6, 7, 3), chunks=(1, (2, 3), 3, (4, 3), 2), dtype=np.float32)
    lazy = layer(x)
    assert lazy.chunks == ((1, 1), (4, 7), (3, 5), (12, 9), (2,))
    assert lazy.chunks[1:4] == tuple(
        shapes.output_chunks(c, n, s) for c, n, s in zip(x.chunks[1:4], lazy.shape[1:4],
                                                         (2, 1, 3)))


def test_output_chunks_on_request():
    layer = deconv3d.Conv3DTranspose(2, 3, 2, padding="same")
    x = np.random.default_rng(3).standard_normal((1, 6, 5, 4, 2)).astype(np.float32)
    lazy = deconv3d.dask.conv3d_transpose(da.from_array(x, chunks=2), layer, chunks=(5, 3, 8))
    assert lazy.chunks[1:4] == ((5, 5, 2), (3, 3, 3, 1), (8,))
    assert relative_error(lazy.compute(), layer(x)) <= 1e-6


def test_halo_formula_bounds_what_blocks_read():
    layer = deconv3d.Conv3DTranspose(2, 4, 2, padding="same")   # halo (1, 1)
    crop = shapes.front_crop(4, 2, "same", None, 1)
    assert shapes.halo(4, 2, 1, crop) == (1, 1)
    assert shapes.halo(2, 2, 1, 0) == (0, 0)
    assert shapes.halo(3, 2, 1, shapes.front_crop(3, 2, "same", None, 1)) == (1, 0)
    x = da.ones((1, 12, 4, 4, 1), chunks=(1, 4, 4, 4, 1), dtype=np.float32)
    lazy = layer(x)
    graph = dict(lazy.__dask_graph__())
    middle = (lazy.name, 0, 1, 0, 0, 0)
    assert sorted(k[2] for k in input_blocks(graph, middle, x.name)) == [0, 1, 2]


def test_the_graph_keeps_the_weights_of_its_call():
    layer = deconv3d.Conv3DTranspose(2, 3, 2)
    x = np.random.default_rng(4).standard_normal((1, 4, 4, 4, 2)).astype(np.float32)
    before = layer(x)
    lazy = layer(da.from_array(x, chunks=2))
    layer.set_weights([w + 1 for w in layer.get_weights()])
    np.testing.assert_array_equal(lazy.compute(), before)
    assert layer(da.from_array(x, chunks=2)).name != lazy.name


def test_an_unbuilt_layer_is_built_by_the_lazy_call():
    layer = deconv3d.Conv3DTranspose(2, 3, 2)
    x = np.random.default_rng(5).standard_normal((1, 4, 4, 4, 3)).astype(np.float32)
    lazy = layer(da.from_array(x, chunks=2))
    assert layer.built and layer.kernel.shape == (3, 3, 3, 2, 3)
    np.testing.assert_array_equal(lazy.compute(), layer(x))


def test_nothing_is_computed_until_asked():
    def fail(block):
        raise AssertionError("computed too early")

    x = da.ones((1, 4, 4, 4, 2), chunks=2, dtype=np.float32).map_blocks(fail, dtype=np.float32)
    lazy = deconv3d.Conv3DTranspose(2, 3, 2)(x)
    assert lazy.shape == (1, 9, 9, 9, 2)


def test_same_call_same_name():
    layer = deconv3d.Conv3DTranspose(2, 3, 2)
    x = da.ones((1, 4, 4, 4, 2), chunks=2, dtype=np.float32)
    assert layer(x).name == layer(x).name
    assert layer(x).name != layer(x, num_threads=2).name


def test_each_block_runs_on_one_thread_unless_told(monkeypatch):
    seen = []
    original = deconv3d.Conv3DTranspose._compute_window

    def spy(self, x, crops, lengths, num_threads=1):
        seen.append(num_threads)
        return original(self, x, crops, lengths, num_threads)

    monkeypatch.setattr(deconv3d.Conv3DTranspose, "_compute_window", spy)
    layer = deconv3d.Conv3DTranspose(2, 3, 2, num_threads=4)     # the layer's count is for NumPy
    x = da.ones((1, 4, 4, 4, 2), chunks=2, dtype=np.float32)
    for requested, used in ((None, 1), (2, 2)):
        lazy = layer(x, num_threads=requested)
        seen.clear()
        lazy.compute()
        assert seen and set(seen) == {used}


@pytest.mark.parametrize("bad, error", [(0, ValueError), (2.0, TypeError), (True, TypeError)])
def test_bad_thread_counts(bad, error):
    x = da.ones((1, 4, 4, 4, 2), chunks=2, dtype=np.float32)
    with pytest.raises(error, match="num_threads"):
        deconv3d.Conv3DTranspose(2, 3, 2)(x, num_threads=bad)


def test_bad_inputs_fail_like_the_numpy_call():
    layer = deconv3d.Conv3DTranspose(2, 3, 2)
    with pytest.raises(ValueError, match="expected ndim=5"):
        layer(da.ones((4, 4, 4, 2), chunks=2))
    with pytest.raises(TypeError, match="real numeric"):
        layer(da.ones((1, 4, 4, 4, 2), chunks=2, dtype=complex))
    layer(da.ones((1, 4, 4, 4, 2), chunks=2))
    with pytest.raises(ValueError, match="incompatible"):
        layer(da.ones((1, 4, 4, 4, 3), chunks=2))
    strict = deconv3d.Conv3DTranspose(2, 3, 2, autocast=False)
    with pytest.raises(TypeError, match="autocast"):
        strict(da.ones((1, 4, 4, 4, 2), chunks=2, dtype=np.float64))
    unknown = da.from_delayed(dask.delayed(np.ones)((1, 4, 4, 4, 2)), (1, np.nan, 4, 4, 2),
                              dtype=np.float32)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        layer(unknown)
    odd = deconv3d.Conv3DTranspose(3, 3, 2, activation="glu")
    with pytest.raises(ValueError, match="glu"):
        odd(da.ones((1, 4, 4, 4, 2), chunks=2))
