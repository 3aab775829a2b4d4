"""Layers applied from zarr/.npy to zarr/.npy block by block (deconv3d.storage, `apply`)."""

import importlib.util
import os

import numpy as np
import pytest

import deconv3d
from deconv3d import cli, storage

zarr = pytest.importorskip("zarr")
pytest.importorskip("dask.array")

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def make_zarr(path, array, chunks):
    z = zarr.create_array(store=str(path), shape=array.shape, chunks=chunks, dtype=array.dtype)
    z[...] = array
    return str(path)


def read(path):
    path = str(path)
    if path.endswith(".npy"):
        return np.load(path)
    return zarr.open_array(path, mode="r")[...]


@pytest.fixture
def folder(tmp_path):
    """An empty folder of its own (the test setup keeps other things in tmp_path)."""
    path = tmp_path / "files"
    path.mkdir()
    return path


@pytest.fixture
def layer():
    return deconv3d.Conv3DTranspose(4, 3, 2, padding="same", activation="softmax")


@pytest.fixture
def volume():
    return np.random.default_rng(0).standard_normal((2, 9, 7, 6, 3)).astype(np.float32)


@pytest.mark.parametrize("source_kind", [".zarr", ".npy"])
@pytest.mark.parametrize("destination_kind", [".zarr", ".npy"])
def test_round_trips(folder, layer, volume, source_kind, destination_kind):
    if source_kind == ".zarr":
        source = make_zarr(folder / "in.zarr", volume, (1, 4, 3, 6, 2))
    else:
        source = str(folder / "in.npy")
        np.save(source, volume)
    destination = folder / f"out{destination_kind}"
    calls = []
    shape = storage.apply_to_storage(layer, source, destination, block=3,
                                     progress=lambda done, total: calls.append((done, total)))
    reference = layer(volume)
    assert shape == reference.shape
    np.testing.assert_array_equal(read(destination), reference)
    total = calls[-1][1]
    assert calls[0] == (0, total) and calls[-1] == (total, total) and len(calls) == total + 1
    assert sorted(os.listdir(folder)) == sorted(["in" + source_kind, "out" + destination_kind])


def test_zarr_chunks_of_the_output_are_stride_times_the_input_blocks(folder, layer, volume):
    source = make_zarr(folder / "in.zarr", volume, (1, 4, 3, 6, 3))
    storage.apply_to_storage(layer, source, folder / "out.zarr")
    assert zarr.open_array(str(folder / "out.zarr"), mode="r").chunks == (1, 8, 6, 12, 4)


def test_channels_first_files_for_a_channels_last_layer(folder, layer, volume):
    source = str(folder / "in.npy")
    np.save(source, volume.transpose(0, 4, 1, 2, 3))
    storage.apply_to_storage(layer, source, folder / "out.zarr", data_format="channels_first",
                             block=4)
    np.testing.assert_array_equal(read(folder / "out.zarr"),
                                  layer(volume).transpose(0, 4, 1, 2, 3))


def test_a_zarr_group_needs_a_key_when_it_holds_several_arrays(folder, layer, volume):
    group = zarr.open_group(str(folder / "in.zarr"), mode="w")
    group.create_array("a", shape=volume.shape, dtype=volume.dtype)[...] = volume
    group.create_array("b", shape=(1,), dtype="f4")
    with pytest.raises(ValueError, match="choose one with a key"):
        storage.apply_to_storage(layer, folder / "in.zarr", folder / "out.zarr")
    with pytest.raises(ValueError, match="no array 'c'"):
        storage.apply_to_storage(layer, folder / "in.zarr", folder / "out.zarr", key="c")
    storage.apply_to_storage(layer, folder / "in.zarr", folder / "out.zarr", key="a")
    np.testing.assert_array_equal(read(folder / "out.zarr"), layer(volume))


def test_in_memory_sources(folder, layer, volume):
    storage.apply_to_storage(layer, volume, folder / "out.npy", block=5)
    np.testing.assert_array_equal(read(folder / "out.npy"), layer(volume))


def test_an_existing_destination_is_replaced(folder, layer, volume):
    destination = folder / "out.zarr"
    make_zarr(destination, np.zeros((3,), np.float32), (3,))
    storage.apply_to_storage(layer, volume, destination)
    np.testing.assert_array_equal(read(destination), layer(volume))
    assert os.listdir(folder) == ["out.zarr"]


def test_a_directory_that_is_not_zarr_is_never_replaced(folder, layer, volume):
    (folder / "out.zarr").mkdir()
    (folder / "out.zarr" / "precious.txt").write_text("keep")
    with pytest.raises(ValueError, match="not a zarr store"):
        storage.apply_to_storage(layer, volume, folder / "out.zarr")
    assert (folder / "out.zarr" / "precious.txt").read_text() == "keep"


class Interrupt(BaseException):
    """Stands for Ctrl-C in the middle of a run."""


@pytest.mark.parametrize("destination_kind", [".zarr", ".npy"])
@pytest.mark.parametrize("existing", [False, True])
def test_an_interrupted_run_leaves_no_output_and_no_debris(folder, layer, volume,
                                                           destination_kind, existing):
    destination = folder / f"out{destination_kind}"
    if existing:
        storage.apply_to_storage(layer, volume[:1], destination)
        before = read(destination)

    def progress(done, total):
        if done == total // 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        storage.apply_to_storage(layer, volume, destination, block=2, progress=progress)
    assert os.listdir(folder) == ([destination.name] if existing else [])
    if existing:
        np.testing.assert_array_equal(read(destination), before)


def test_a_failing_block_leaves_no_output(folder, volume):
    def boom(y):
        if y.shape[1] > 4:
            raise RuntimeError("boom")
        return y

    layer = deconv3d.Conv3DTranspose(2, 3, 2, activation=boom)
    with pytest.raises(RuntimeError, match="boom"):
        storage.apply_to_storage(layer, volume, folder / "out.zarr", block=3)
    assert os.listdir(folder) == []


@pytest.mark.parametrize("source, destination, message", [
    ("in.npz", "out.zarr", "expected a .zarr store or a .npy file"),
    ("in.npy", "out.h5", "expected a .zarr store or a .npy file"),
    ("missing.npy", "out.zarr", "no such file"),
])
def test_bad_paths(folder, layer, volume, source, destination, message):
    np.save(folder / "in.npy", volume)
    np.savez(folder / "in.npz", volume)
    with pytest.raises((ValueError, OSError), match=message):
        storage.apply_to_storage(layer, folder / source, folder / destination)


def test_bad_rank_and_block(folder, layer):
    with pytest.raises(ValueError, match="5-D"):
        storage.apply_to_storage(layer, np.ones((4, 4, 4, 3), np.float32), folder / "o.zarr")
    with pytest.raises(ValueError, match="block"):
        storage.apply_to_storage(layer, np.ones((1, 4, 4, 4, 3), np.float32),
                                 folder / "o.zarr", block=0)


def test_progress_bar_lines(capsys):
    bar = storage.ProgressBar(every=3600)
    for done in range(11):
        bar(done, 10)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert "0/10 blocks (0%)" in lines[0] and "10/10 blocks (100%)" in lines[1]
    assert "[" + "#" * 30 + "]" in lines[1]


# ---------------------------------------------------------------------- the CLI
needs_h5py = pytest.mark.skipif(importlib.util.find_spec("h5py") is None,
                                reason="h5py is not installed")


def run_cli(*argv):
    return cli.main([str(a) for a in argv])


def expected(layer_path):
    arrays = np.load(os.path.join(DATA, "functional_expected.npz"))
    return arrays[f"input__{layer_path}"], arrays[f"output__{layer_path}"]


@needs_h5py
@pytest.mark.parametrize("layer_path", ["up", "up_cf"])
def test_cli_apply_zarr_to_zarr(folder, capsys, layer_path):
    x, reference = expected(layer_path)
    source = make_zarr(folder / "in.zarr", x, (1, 2, 2, 2, 2))
    assert run_cli("apply", os.path.join(DATA, "functional.keras"), "--layer", layer_path,
                   "--input", source, "--output", folder / "out.zarr") == 0
    actual = read(folder / "out.zarr")
    assert actual.shape == reference.shape
    scale = np.abs(reference).max()
    assert np.abs(actual - reference).max() / scale < 1e-5
    assert "blocks (100%)" in capsys.readouterr().err


@needs_h5py
def test_cli_apply_reports_errors(folder, capsys):
    assert run_cli("apply", os.path.join(DATA, "functional.keras"), "--layer", "up",
                   "--input", folder / "missing.zarr", "--output", folder / "o.zarr") == 1
    assert "no such file" in capsys.readouterr().err
