"""ONNX models are data: external tensors are read only from inside the model's folder,
and only after their byte counts agree with their dims (deconv3d.onnx_io)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import deconv3d

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

WEIGHT_SHAPE = (2, 3, 2, 2, 2)


def external_model(folder, location, dims=WEIGHT_SHAPE, offset=0, length=None):
    """An .onnx file in `folder` whose weight W lives in the external file `location`."""
    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=dims)
    weight.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for key, value in entries.items():
        weight.external_data.add(key=key, value=value)
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], name="up", strides=[2, 2, 2])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2, 3, 3, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], [weight])
    path = os.path.join(folder, "model.onnx")
    with open(path, "wb") as handle:
        handle.write(helper.make_model(graph).SerializeToString())
    return path


@pytest.fixture
def folders(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(1 << 12, dtype=np.float32).tobytes())
    return models, secret


def test_external_data_inside_the_folder_is_read(tmp_path):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal(WEIGHT_SHAPE).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], name="up", strides=[2, 2, 2])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2, 3, 3, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "W")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path), save_as_external_data=True,
              all_tensors_to_one_file=True, location="m.bin", size_threshold=0)
    assert (tmp_path / "m.bin").exists()
    layer = deconv3d.Conv3DTranspose.from_onnx(path)
    np.testing.assert_array_equal(layer.kernel, weight.transpose(2, 3, 4, 1, 0))
    with pytest.raises(ValueError, match=r"keeps its data in the external file "
                                         r"'m.bin'; pass the model's path"):
        deconv3d.Conv3DTranspose.from_onnx(onnx.load(str(path), load_external_data=False))


@pytest.mark.parametrize("location", ["../secret.bin", "sub/../../secret.bin",
                                      "..\\secret.bin", "ABSOLUTE"])
def test_paths_leaving_the_folder_are_refused(folders, location):
    models, secret = folders
    if location == "ABSOLUTE":
        location = str(secret)
    path = external_model(str(models), location)
    with pytest.raises(ValueError, match=r"tensor 'W' points to external data at .*outside the "
                                         r"model's folder"):
        deconv3d.load_onnx(path)


def test_a_link_leading_out_is_refused(folders):
    models, secret = folders
    os.symlink(secret, models / "inside.bin")
    path = external_model(str(models), "inside.bin")
    with pytest.raises(ValueError, match=r"'inside.bin', which is not a file inside the model's "
                                         r"folder"):
        deconv3d.load_onnx(path)


def test_byte_counts_are_checked_before_reading(folders):
    models, _ = folders
    (models / "w.bin").write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match=r"needs 1073741824 bytes at offset 0 of 'w.bin', "
                                         r"which has only 64 bytes"):
        deconv3d.load_onnx(external_model(str(models), "w.bin", dims=(1024, 1024, 16, 4, 4)))
    with pytest.raises(ValueError, match=r"declares 8 bytes at offset 0 .* its dims need 192"):
        deconv3d.load_onnx(external_model(str(models), "w.bin", length=8))
    with pytest.raises(ValueError, match=r"tensor 'W' .* exceeds|tensor 'W'.*memory"):
        deconv3d.load_onnx(external_model(str(models), "w.bin", dims=(1 << 20,) * 5))


def test_refusing_stays_under_100_mib(folders):
    """Peak memory of the refusals above, measured in a fresh process (ru_maxrss)."""
    models, secret = folders
    (models / "w.bin").write_bytes(b"\0" * 64)
    paths = {}
    for label, location, dims in [("up", "../secret.bin", (1024, 1024, 64, 4, 4)),
                                  ("abs", str(secret), (1024, 1024, 64, 4, 4)),
                                  ("short", "w.bin", (1024, 1024, 64, 4, 4))]:
        folder = models / label
        folder.mkdir()
        if label == "short":
            (folder / "w.bin").write_bytes(b"\0" * 64)
        paths[label] = external_model(str(folder), location, dims=dims)
    script = textwrap.dedent("""
        import resource, sys
        import deconv3d, onnx
        from deconv3d import onnx_io
        onnx_io.read_model(sys.argv[1])          # warm up: imports and protobuf
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for path in sys.argv[1:]:
            try:
                deconv3d.load_onnx(path)
            except ValueError as error:
                print("refused:", str(error)[:60])
            else:
                raise SystemExit("not refused: " + path)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print("delta_kib", after - before)
    """)
    result = subprocess.run([sys.executable, "-c", script, *paths.values()],
                            capture_output=True, text=True, timeout=120, cwd=str(models))
    print(result.stdout)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("refused:") == 3, result.stdout
    delta_kib = int(result.stdout.split("delta_kib")[1])
    assert delta_kib < 100 * 1024, result.stdout      # each tensor declares 1 GiB
