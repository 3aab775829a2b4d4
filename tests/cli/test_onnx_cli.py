"""``deconv3d inspect`` and ``deconv3d apply`` on .onnx models (expected values: onnxruntime)."""

import json

import numpy as np
import pytest

from deconv3d.cli import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


@pytest.fixture
def model_path(tmp_path):
    rng = np.random.default_rng(21)
    initializers = [
        numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.standard_normal((3, 2, 2, 2, 2)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.standard_normal((2, 2, 2, 2)).astype(np.float32), "w3")]
    nodes = [helper.make_node("ConvTranspose", ["X", "w1", "b1"], ["h"], name="/up/first",
                              strides=[2, 2, 2], pads=[1] * 6, output_padding=[1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("ConvTranspose", ["r", "w2"], ["Y"], name="second",
                              strides=[2, 2, 2]),
             helper.make_node("ConvTranspose", ["F", "w3"], ["G"], name="flat")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2, 3, 4, 5]),
                     helper.make_tensor_value_info("F", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("G", TensorProto.FLOAT, None)], initializers)
    path = tmp_path / "net.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_inspect_lists_the_3d_nodes(model_path, capsys):
    assert main(["inspect", str(model_path)]) == 0
    text = capsys.readouterr().out
    assert "ONNX model; 2 3-D ConvTranspose nodes" in text
    assert "/up/first" in text and "crops=([1, 0], [1, 0], [1, 0])" in text
    assert "second" in text and "padding='valid'" in text and "kernel (2, 2, 2, 2, 3), no bias" \
        in text
    assert "other ConvTranspose nodes (not 3-D): flat" in text
    assert main(["inspect", str(model_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in summary["layers"]] == ["/up/first", "second"]
    assert summary["layers"][0]["config"]["crops"] == [[1, 0]] * 3
    assert summary["layers"][0]["bias_shape"] == [3]


def test_apply_runs_one_node(model_path, tmp_path):
    x = np.random.default_rng(22).standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["apply", str(model_path), "--layer", "/up/first", "-i", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "y.npy"), "-q"]) == 0
    # onnxruntime's value of the node: the model cut after it
    model = onnx.load(str(model_path))
    del model.graph.node[1:]
    del model.graph.output[:]
    del model.graph.input[1:]
    model.graph.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, None))
    expected = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    out = np.load(tmp_path / "y.npy")
    assert out.shape == expected.shape == (1, 3, 6, 8, 10)
    assert np.abs(out - expected).max() <= 1e-5 * np.abs(expected).max()


def test_apply_errors(model_path, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 2, 3, 4, 5), np.float32))
    args = ["apply", str(model_path), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]
    assert main(args) == 1
    assert "3 ConvTranspose nodes" in capsys.readouterr().err
    assert main(args + ["--layer", "nope"]) == 1
    assert "no ConvTranspose node named 'nope'" in capsys.readouterr().err
    assert main(args + ["--layer", "flat"]) == 1
    assert "node 'flat' is a 2-D ConvTranspose" in capsys.readouterr().err
