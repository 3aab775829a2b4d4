"""Model files are data, from anywhere: hostile Keras files are refused with a clear
ValueError before anything large is allocated, and nothing outside the named file is read.

The files are made here (tests/keras/hostile.py): zip bombs and lying archives are
written byte by byte, HDF5 files that contradict their config with h5py.  Peak
memory is measured in a fresh interpreter, where ru_maxrss means something.
"""

import importlib.util
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np
import pytest

import deconv3d
from deconv3d import cli
from deconv3d.keras_io import load_keras, read_keras_file

from hostile import (data, deflated, deflated_repeats, fixture_members, keras_archive, stored,
                     write_zip)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("h5py") is None,
                                reason="h5py is not installed")

GiB = 1 << 30
MiB = 1 << 20
BOMB_BLOCK = b" " * MiB            # JSON whitespace: the bomb is even "valid" as text
BOMB_SIZE = 5 * GiB                # config.json of the bomb archive once expanded


def check_against_expected(layers, expected_file):
    """Outputs of loaded layers against the outputs Keras gave (stored beside the fixtures)."""
    expected = np.load(data(expected_file))
    assert layers
    for path, layer in layers.items():
        key = path.replace("/", "__")
        out = layer(expected[f"input__{key}"])
        reference = expected[f"output__{key}"]
        scale = max(float(np.abs(reference).max()), 1e-30)
        assert float(np.abs(out - reference).max()) / scale < 1e-5, path


def config_of(name="functional.keras"):
    return json.loads(fixture_members(name)["config.json"])


# ---------------------------------------------------------------------- the files
def bomb(tmp_path):
    """functional.keras with a config.json that expands to 5 GiB of spaces (a few MB on disk)."""
    member = deflated_repeats("config.json", BOMB_BLOCK, BOMB_SIZE // MiB)
    return keras_archive(tmp_path / "bomb.keras", replace=[member])


def weights_file(tmp_path, edit, name="weights.h5"):
    """functional.keras's model.weights.h5 changed by ``edit(h5py.File)``, as bytes."""
    import h5py
    path = tmp_path / name
    path.write_bytes(fixture_members()["model.weights.h5"])
    with h5py.File(path, "r+") as handle:
        edit(handle)
    return path.read_bytes()


def replace_dataset(location, **create):
    """An edit that replaces the dataset at ``location`` (default: never written, so the
    file stays small whatever the declared shape)."""
    def edit(handle):
        del handle[location]
        create.setdefault("dtype", "float32")
        handle.create_dataset(location, **create)
    return edit


UP = "layers/conv3d_transpose/vars"        # 'up': kernel_size 2, filters 3, in_channels 2
HOSTILE_DATASETS = {
    # kernel_size 2 in the config, (3, 3, 3) stored
    "kernel-size": replace_dataset(f"{UP}/0", shape=(3, 3, 3, 3, 2)),
    # filters 3 in the config; 2**28 declared (8 GiB), nothing stored
    "filters": replace_dataset(f"{UP}/0", shape=(2, 2, 2, 1 << 28, 2), chunks=(1, 1, 1, 64, 2)),
    "bias": replace_dataset(f"{UP}/1", shape=(1 << 31,), chunks=(1 << 16,)),
    "rank": replace_dataset(f"{UP}/0", shape=(2, 2, 2, 3)),
    # the shape fits the config except for the free in_channels axis: 96 GiB declared
    "in-channels": replace_dataset(f"{UP}/0", shape=(2, 2, 2, 3, 1 << 30),
                                   chunks=(1, 1, 1, 3, 1024)),
    "strings": replace_dataset(f"{UP}/1", data=np.array([b"a", b"b", b"c"]), dtype=None),
}
HOSTILE_DATASET_MESSAGES = {
    "kernel-size": r"kernel-size.keras, layer 'up': the stored kernel has shape \(3, 3, 3, 3, 2\) "
                   r"\(/layers/conv3d_transpose/vars/0\), which does not match the layer "
                   r"config \(expected \(2, 2, 2, 3, \*\)\); the file contradicts itself",
    "filters": r"layer 'up': the stored kernel has shape \(2, 2, 2, 268435456, 2\) .* does "
               r"not match the layer config",
    "bias": r"layer 'up': the stored bias has shape \(2147483648,\) .*which does not match the "
            r"layer config \(expected \(3\)\)",
    "rank": r"layer 'up': the stored kernel has shape \(2, 2, 2, 3\) .*which does not match",
    "in-channels": r"layer 'up': the stored kernel \(/layers/conv3d_transpose/vars/0\) declares "
                   r"103079215104 bytes of data from 0 stored bytes, more than compression can "
                   r"expand to",
    "strings": r"layer 'up': the stored bias \(/layers/conv3d_transpose/vars/1\) holds \|S1 "
               r"values, not numbers",
}


def hostile_dataset_archive(tmp_path, case):
    payload = weights_file(tmp_path, HOSTILE_DATASETS[case])
    return keras_archive(tmp_path / f"{case}.keras",
                         replace=[stored("model.weights.h5", payload)])


# ---------------------------------------------------------------------- zip bombs
def test_the_bomb_is_small_on_disk_and_real(tmp_path):
    # the same construction, small enough to expand here, gives exactly what it declares
    member = deflated_repeats("config.json", BOMB_BLOCK, 3)
    path = write_zip(tmp_path / "small.zip", [member])
    with zipfile.ZipFile(path) as archive:
        assert archive.read("config.json") == BOMB_BLOCK * 3       # CRC checked by zipfile
    big = bomb(tmp_path)
    assert os.path.getsize(big) < 8 * MiB
    with zipfile.ZipFile(big) as archive:
        assert archive.getinfo("config.json").file_size == BOMB_SIZE


def test_config_json_bomb_is_refused_unread(tmp_path):
    with pytest.raises(ValueError, match=r"bomb.keras: config.json in the .keras archive "
                                         r"declares 5368709120 bytes, more than the 33554432 "
                                         r"any Keras model needs there \(zip bomb\?\)"):
        load_keras(bomb(tmp_path))


def test_member_that_expands_past_any_compression_ratio(tmp_path):
    # 10 GiB declared from a few hundred compressed bytes: deflate cannot expand that far
    weights = fixture_members()["model.weights.h5"]
    member = deflated("model.weights.h5", weights, size=10 * GiB)
    path = keras_archive(tmp_path / "ratio.keras", replace=[member])
    with pytest.raises(ValueError, match=r"model.weights.h5 in the .keras archive declares "
                                         r"10737418240 bytes from \d+ compressed bytes, more "
                                         r"than compression can expand to"):
        load_keras(path)


def test_member_that_declares_less_than_it_holds(tmp_path):
    # zipfile stops at the declared size; the CRC of the whole member then disagrees
    config = fixture_members()["config.json"]
    member = deflated("config.json", config + b" " * (4 * MiB), size=len(config),
                      crc=zlib.crc32(config + b" " * (4 * MiB)))
    path = keras_archive(tmp_path / "short.keras", replace=[member])
    with pytest.raises(ValueError, match="short.keras is a corrupt or truncated .keras archive"):
        load_keras(path)


def test_member_that_declares_more_than_it_holds(tmp_path):
    config = fixture_members()["config.json"]
    member = deflated("config.json", config, size=len(config) + 1000)
    path = keras_archive(tmp_path / "long.keras", replace=[member])
    with pytest.raises(ValueError, match=rf"long.keras: config.json in the .keras archive "
                                         rf"declares {len(config) + 1000} bytes but holds "
                                         rf"{len(config)}"):
        load_keras(path)


def test_stored_member_whose_sizes_disagree(tmp_path):
    weights = fixture_members()["model.weights.h5"]
    path = keras_archive(tmp_path / "lie.keras", replace=[
        stored("model.weights.h5", weights, size=len(weights) * 1000)])
    with pytest.raises(ValueError, match=r"lie.keras: model.weights.h5 in the .keras archive is "
                                         r"stored uncompressed but declares \d+ bytes in \d+"):
        load_keras(path)


def test_compressed_archives_still_load(tmp_path):
    # Keras stores its members uncompressed; a re-zipped archive is deflated, and its
    # weights are then read through zipfile rather than in place
    path = tmp_path / "deflated.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in fixture_members("nested.keras").items():
            archive.writestr(name, payload)
    check_against_expected(load_keras(path), "nested_expected.npz")


def test_stored_weights_after_a_local_extra_field(tmp_path):
    # the bytes of a stored member start after its *local* header, whose extra field may
    # differ from the central directory's
    members = fixture_members()
    weights = stored("model.weights.h5", members["model.weights.h5"])
    weights["local_extra"] = struct.pack("<HH", 0xCAFE, 20) + bytes(20)
    path = keras_archive(tmp_path / "extra.keras", replace=[weights])
    check_against_expected(load_keras(path), "functional_expected.npz")


# ---------------------------------------------------------------------- archive structure
@pytest.mark.parametrize("name", ["../config.json", "assets/../../etc/passwd", "/etc/passwd",
                                  "C:/model.weights.h5", "..\\evil"])
def test_member_names_that_leave_the_archive(tmp_path, name):
    # never extracted, so never followed; but no Keras archive has them: refuse
    path = keras_archive(tmp_path / "escape.keras", extra=[stored(name, b"{}")])
    with pytest.raises(ValueError, match=re.escape(f"escape.keras: the archive member {name!r} "
                                                   f"points outside the archive")):
        load_keras(path)


def test_unknown_compression_method(tmp_path):
    member = stored("config.json", fixture_members()["config.json"])
    member["method"] = 99                   # AES in WinZip's scheme: zipfile cannot read it
    path = keras_archive(tmp_path / "method.keras", replace=[member])
    with pytest.raises(ValueError, match="method.keras is a corrupt or truncated .keras "
                                         "archive: .*compression method"):
        load_keras(path)


@pytest.mark.parametrize("name", ["config.json", "model.weights.h5"])
def test_duplicate_members(tmp_path, name):
    # which copy would be read depends on the reader: refuse the archive
    members = fixture_members()
    path = keras_archive(tmp_path / "twice.keras", extra=[stored(name, members[name])])
    with pytest.raises(ValueError, match=rf"twice.keras: the archive holds 4 members but names "
                                         rf"'{name}' more than once"):
        load_keras(path)


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_truncated_archives(tmp_path, fraction):
    raw = pathlib.Path(data("nested.keras")).read_bytes()
    path = tmp_path / "cut.keras"
    path.write_bytes(raw[:int(len(raw) * fraction)])
    with pytest.raises(ValueError, match="cut.keras is a corrupt or truncated .keras archive"):
        load_keras(path)


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_truncated_hdf5_files(tmp_path, fraction):
    raw = pathlib.Path(data("nested_legacy.h5")).read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(raw[:int(len(raw) * fraction)])
    with pytest.raises(ValueError, match="cut.h5 is a corrupt or truncated HDF5 file"):
        load_keras(path)


# ---------------------------------------------------------------------- config.json
@pytest.mark.parametrize("text, message", [
    (b"\xff\xfe not text", r"config.json in the .keras archive is not valid JSON"),
    (b'{"class_name": "Functional", "config": ', r"is not valid JSON"),
    (b"[1, 2, 3]", r"config.json in the .keras archive holds a JSON list, not an object"),
    (b'"Functional"', r"holds a JSON str, not an object"),
    (b"[" * 100000 + b"]" * 100000, r"config.json in the .keras archive nests too deeply"),
    (b'{"a": ' * 1000 + b"1" + b"}" * 1000, r"nests too deeply to be a Keras config"),
])
def test_config_json_that_is_not_a_model_config(tmp_path, text, message):
    path = keras_archive(tmp_path / "config.keras", replace=[deflated("config.json", text)])
    with pytest.raises(ValueError, match=message):
        load_keras(path)


def test_deeply_nested_models_are_refused_before_they_are_walked(tmp_path):
    config = config_of()
    for _ in range(200):          # 200 models, each inside the next
        config = {"class_name": "Functional", "config": {"name": "m", "layers": [
            {"class_name": "Functional", "name": "m", "config": config["config"]}]}}
    path = keras_archive(tmp_path / "deep.keras",
                         replace=[stored("config.json", json.dumps(config).encode())])
    with pytest.raises(ValueError, match="nests too deeply"):
        load_keras(path)


def test_deep_config_argument_is_refused(tmp_path):
    deep = "[" * 100000 + "]" * 100000
    with pytest.raises(ValueError, match="`config` nests too deeply"):
        load_keras(data("functional.weights.h5"), config=deep)


IMPORT_SCRIPT = """
import sys
from deconv3d.keras_io import load_keras
try:
    load_keras(sys.argv[1])
except (ValueError, TypeError) as error:
    print("refused:", error)
print("imported" if "this" in sys.modules else "not imported")
"""


def test_modules_named_by_a_config_are_never_imported(tmp_path):
    # Keras would import `module` to find a custom object; importing `this` prints a poem
    config = config_of()
    named = {"module": "this", "class_name": "function", "config": "s", "registered_name": "s"}
    for entry in config["config"]["layers"]:
        if entry["class_name"] == "Conv3DTranspose":
            entry["config"].update(activation=named, kernel_initializer=dict(named),
                                   kernel_constraint=dict(named))
    path = keras_archive(tmp_path / "custom.keras",
                         replace=[stored("config.json", json.dumps(config).encode())])
    root = os.path.dirname(os.path.dirname(os.path.abspath(deconv3d.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", IMPORT_SCRIPT, str(path)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "refused: " in result.stdout and "activation" in result.stdout, result.stdout
    assert result.stdout.endswith("not imported\n"), result.stdout
    assert "Zen of Python" not in result.stdout


# ---------------------------------------------------------------------- HDF5 contents
@pytest.mark.parametrize("case", sorted(HOSTILE_DATASETS))
def test_datasets_that_contradict_the_config(tmp_path, case):
    path = hostile_dataset_archive(tmp_path, case)
    assert os.path.getsize(path) < MiB
    with pytest.raises(ValueError, match=HOSTILE_DATASET_MESSAGES[case]):
        load_keras(path)


def test_legacy_dataset_that_contradicts_the_config(tmp_path):
    import h5py
    path = tmp_path / "legacy.h5"
    shutil.copy(data("nested_legacy.h5"), path)
    with h5py.File(path, "r+") as handle:
        group = handle["model_weights/up"]
        kernel = [n.decode() if isinstance(n, bytes) else n
                  for n in group.attrs["weight_names"]][0]
        shape = group[kernel].shape
        del group[kernel]
        group.create_dataset(kernel, shape=shape[:4] + (1 << 30,), dtype="float32",
                             chunks=shape[:4] + (16,))
    with pytest.raises(ValueError, match=rf"legacy.h5, layer 'up': the stored kernel "
                                         rf"\(/model_weights/up/{kernel}\) declares \d+ bytes "
                                         rf"of data from 0 stored bytes"):
        load_keras(path)
    with pytest.raises(ValueError, match="declares"):
        read_keras_file(path)


def test_links_out_of_the_file_are_refused(tmp_path):
    import h5py
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as handle:
        handle["kernel"] = np.ones((2, 2, 2, 3, 2), "float32")
    path = tmp_path / "linked.weights.h5"
    shutil.copy(data("functional.weights.h5"), path)
    with h5py.File(path, "r+") as handle:
        del handle[f"{UP}/0"]
        handle[f"{UP}/0"] = h5py.ExternalLink(str(secret), "/kernel")
    with pytest.raises(ValueError, match=rf"linked.weights.h5: /{UP}/0 is a link to another "
                                         rf"file"):
        read_keras_file(path)


def test_soft_links_are_refused(tmp_path):
    import h5py
    path = tmp_path / "soft.weights.h5"
    shutil.copy(data("functional.weights.h5"), path)
    with h5py.File(path, "r+") as handle:
        handle["elsewhere"] = h5py.SoftLink("/nowhere")
    with pytest.raises(ValueError, match="soft.weights.h5: /elsewhere is a soft link"):
        read_keras_file(path)


def test_data_stored_in_another_file_is_refused(tmp_path):
    import h5py
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.ones(2 * 2 * 2 * 3 * 2, "float32").tobytes())
    path = tmp_path / "external.weights.h5"
    shutil.copy(data("functional.weights.h5"), path)
    with h5py.File(path, "r+") as handle:
        del handle[f"{UP}/0"]
        handle.create_dataset(f"{UP}/0", shape=(2, 2, 2, 3, 2), dtype="float32",
                              external=[(str(raw), 0, raw.stat().st_size)])
    with pytest.raises(ValueError, match=rf"layer 'up': the stored kernel \(/{UP}/0\) keeps "
                                         rf"its data in other files"):
        load_keras(path, config=config_of())


def test_filters_that_would_load_a_plugin_are_refused(tmp_path):
    # filter 307 (bzip2) is not part of HDF5 or h5py: reading would search for a plugin
    import h5py
    path = tmp_path / "plugin.weights.h5"
    shutil.copy(data("functional.weights.h5"), path)
    with h5py.File(path, "r+") as handle:
        del handle[f"{UP}/0"]
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_chunk((2, 2, 2, 3, 2))
        plist.set_filter(307, h5py.h5z.FLAG_OPTIONAL, ())
        h5py.h5d.create(handle.id, f"{UP}/0".encode(), h5py.h5t.NATIVE_FLOAT,
                        h5py.h5s.create_simple((2, 2, 2, 3, 2)), dcpl=plist)
        handle[f"{UP}/0"][...] = np.ones((2, 2, 2, 3, 2), "float32")
    with pytest.raises(ValueError, match=r"layer 'up': the stored kernel .* needs HDF5 filter "
                                         r"307, which is not built into HDF5 or h5py"):
        load_keras(path, config=config_of())


# ---------------------------------------------------------------------- peak memory
MEMORY_SCRIPT = """
import resource, sys
import h5py, numpy
from deconv3d.keras_io import load_keras
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # KiB on Linux
before = peak()
for path in sys.argv[1:]:
    try:
        load_keras(path)
    except ValueError as error:
        print("refused", round((peak() - before) / 2**20, 1), "MiB", str(error)[:200])
    else:
        print("LOADED", path)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_refusing_hostile_files_stays_under_100_mib(tmp_path):
    paths = [bomb(tmp_path)]
    paths += [hostile_dataset_archive(tmp_path, case) for case in ("filters", "bias",
                                                                    "in-channels")]
    paths.append(keras_archive(tmp_path / "ratio.keras", replace=[deflated(
        "model.weights.h5", fixture_members()["model.weights.h5"], size=10 * GiB)]))
    paths.append(keras_archive(tmp_path / "weights-bomb.keras", replace=[
        deflated_repeats("model.weights.h5", bytes(MiB), 512)]))
    # just under the size limit, so it is expanded: then refused as not JSON
    paths.append(keras_archive(tmp_path / "spaces.keras", replace=[
        deflated_repeats("config.json", BOMB_BLOCK, 31)]))
    for name in ("nested.keras", "nested_legacy.h5"):
        raw = pathlib.Path(data(name)).read_bytes()
        paths.append(tmp_path / f"cut-{name}")
        paths[-1].write_bytes(raw[:len(raw) * 2 // 3])
    root = os.path.dirname(os.path.dirname(os.path.abspath(deconv3d.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, *map(str, paths)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(paths) and all(line.startswith("refused") for line in lines), (
        result.stdout)
    worst = max(float(line.split()[1]) for line in lines)
    assert worst < 100, result.stdout


PADDED_SCRIPT = """
import resource, sys
import h5py, numpy
from deconv3d.keras_io import load_keras
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
layers = load_keras(sys.argv[1])
print(sorted(layers), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_compressed_weights_padded_with_zeros_load_in_little_memory(tmp_path, monkeypatch):
    # a real model.weights.h5 followed by 256 MiB of zeros, deflated: HDF5 ignores what
    # lies past the end its superblock declares, and so does the reader
    weights = fixture_members()["model.weights.h5"]
    member = deflated_repeats("model.weights.h5", bytes(MiB), 256, prefix=weights)
    path = keras_archive(tmp_path / "padded.keras", replace=[member])
    kept = []

    class Recording(tempfile.SpooledTemporaryFile):
        def write(self, payload):
            kept.append(len(payload))
            return super().write(payload)

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", Recording)
    check_against_expected(load_keras(path), "functional_expected.npz")
    assert sum(kept) == len(weights)         # the zeros were never kept, in memory or on disk
    monkeypatch.undo()
    root = os.path.dirname(os.path.dirname(os.path.abspath(deconv3d.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", PADDED_SCRIPT, str(path)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    names, peak = result.stdout.rsplit("]", 1)
    assert names == "['up', 'up_cf'" and float(peak) < 100, result.stdout


# ---------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("command", ["inspect", "apply"])
def test_cli_refuses_hostile_files_cleanly(tmp_path, capsys, command):
    np.save(tmp_path / "in.npy", np.zeros((1, 3, 3, 3, 2), np.float32))
    files = [bomb(tmp_path), hostile_dataset_archive(tmp_path, "filters"),
             keras_archive(tmp_path / "deep.keras",
                           replace=[stored("config.json", b"[" * 100000)])]
    for path in files:
        argv = [command, str(path)]
        if command == "apply":
            argv += ["--layer", "up", "-i", str(tmp_path / "in.npy"),
                     "-o", str(tmp_path / "out.npy")]
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"deconv3d {command}: error: {path}") and "Traceback" not in err
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("depth", [500, 100000])
def test_cli_refuses_a_deep_config_argument(tmp_path, capsys, depth):
    # deep enough for our limit, then deep enough for Python's own recursion limit
    np.save(tmp_path / "in.npy", np.zeros((1, 3, 3, 3, 2), np.float32))
    (tmp_path / "deep.json").write_text("[" * depth + "]" * depth)
    assert cli.main(["apply", data("functional.weights.h5"), "--config",
                     str(tmp_path / "deep.json"), "--layer", "up",
                     "-i", str(tmp_path / "in.npy"), "-o", str(tmp_path / "out.npy")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deconv3d apply: error: ") and "nests too deeply" in err
    assert not (tmp_path / "out.npy").exists()


def test_python_m_deconv3d_on_a_bomb(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(deconv3d.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "deconv3d", "inspect", str(bomb(tmp_path))],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.startswith("deconv3d inspect: error: ") and "zip bomb" in result.stderr
    assert "Traceback" not in result.stderr
