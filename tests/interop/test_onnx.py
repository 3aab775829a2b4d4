"""3-D ONNX ConvTranspose nodes as layers (deconv3d.onnx_io), against onnxruntime and ONNX.

Random nodes built with onnx.helper cover every auto_pad mode, pads, output_padding and
output_shape; the expected values are onnxruntime's outputs.  ONNX's own backend node
cases for ConvTranspose (shipped in the onnx package) give the reference outputs of the
3-D case, and of the 2-D cases with a unit depth axis added (kernel, stride 1), which
check every attribute's meaning against ONNX's expectations, not onnxruntime's.
"""

import numpy as np
import pytest

import deconv3d

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

CASES = 320


def make_model(x_shape, weight, bias=None, name="up", dtype=TensorProto.FLOAT, **attributes):
    inputs = ["X", "W"] + (["B"] if bias is not None else [])
    initializers = [numpy_helper.from_array(weight, "W")]
    if bias is not None:
        initializers.append(numpy_helper.from_array(bias, "B"))
    node = helper.make_node("ConvTranspose", inputs, ["Y"], name=name, **attributes)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", dtype, x_shape)],
                              [helper.make_tensor_value_info("Y", dtype, None)], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run_ort(model, x):
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x})[0]


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def random_node(rng):
    """(x, weight, bias, attributes) of a random 3-D ConvTranspose."""
    k = [int(v) for v in rng.integers(1, 5, 3)]
    s = [int(v) for v in rng.integers(1, 4, 3)]
    d = [int(v) for v in rng.integers(1, 4, 3)]
    n = [int(v) for v in rng.choice([1, 3, 5], 3)]
    op = [int(rng.integers(0, v)) for v in s]
    c_in, c_out = (int(v) for v in rng.integers(1, 9, 2))
    attributes = {"strides": s, "dilations": d}
    if any(op):
        attributes["output_padding"] = op
    mode = rng.choice(["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "output_shape"])
    if mode == "output_shape":
        full = [(a - 1) * b + (c - 1) * e + 1 + f for a, b, c, e, f in zip(n, s, k, d, op)]
        attributes["output_shape"] = [max(1, f - int(rng.integers(-v + 1, 3))) for f, v in
                                      zip(full, s)]
        if rng.random() < 0.5:
            attributes["auto_pad"] = str(rng.choice(["SAME_UPPER", "SAME_LOWER"]))
    elif mode == "NOTSET":
        spans = [(a - 1) * b + 1 for a, b in zip(k, d)]
        attributes["pads"] = [int(rng.integers(0, (v + 1) // 2 + 1)) for v in spans * 2]
    else:
        attributes["auto_pad"] = str(mode)
    x = rng.standard_normal((int(rng.integers(1, 3)), c_in, *n)).astype(np.float32)
    weight = rng.standard_normal((c_in, c_out, *k)).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32) if rng.random() < 0.7 else None
    return x, weight, bias, attributes


def test_random_nodes_match_onnxruntime():
    rng = np.random.default_rng(1313)
    checked, modes = 0, set()
    while checked < CASES:
        x, weight, bias, attributes = random_node(rng)
        model = make_model(list(x.shape), weight, bias, **attributes)
        try:
            expected = run_ort(model, x)
        except Exception:       # onnxruntime refuses this node (e.g. an empty output)
            continue
        layer = deconv3d.Conv3DTranspose.from_onnx(model)
        assert layer.data_format == "channels_first"
        assert relative_error(layer(x), expected) < 1e-5, attributes
        checked += 1
        modes.add(attributes.get("auto_pad", "NOTSET") + ("+shape" if "output_shape" in
                                                          attributes else ""))
    assert modes == {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "NOTSET+shape",
                     "SAME_UPPER+shape", "SAME_LOWER+shape"}


def test_float64_nodes_match_onnx_reference():
    # onnxruntime has no double ConvTranspose: ONNX's reference evaluator is the oracle
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 3, 4, 5, 3))
    weight = rng.standard_normal((3, 2, 3, 3, 2))
    model = make_model(list(x.shape), weight, rng.standard_normal(2), dtype=TensorProto.DOUBLE,
                       strides=[2, 2, 1], pads=[1, 1, 0, 0, 1, 1], output_padding=[1, 0, 0])
    layer = deconv3d.Conv3DTranspose.from_onnx(model)
    assert layer.dtype == "float64"
    from onnx.reference import ReferenceEvaluator
    expected = ReferenceEvaluator(model).run(None, {"X": x})[0]
    assert relative_error(layer(x), expected) < 1e-12


# ---------------------------------------------------------------------- ONNX's node tests
def onnx_backend_cases():
    """{name: (node, inputs, outputs)} of ONNX's ConvTranspose backend node cases."""
    from onnx.backend.test.case.node import convtranspose
    found = {}

    def expect(node, inputs, outputs, name, **kwargs):
        found[name] = (node, inputs, outputs)

    original = convtranspose.expect
    convtranspose.expect = expect
    try:
        for attribute in dir(convtranspose.ConvTranspose):
            if attribute.startswith("export"):
                getattr(convtranspose.ConvTranspose, attribute)()
    finally:
        convtranspose.expect = original
    return found


def as_3d(node, inputs):
    """A 3-D model and input for a 2-D or 3-D case: a unit depth axis in front if 2-D."""
    x, weight = inputs[0], inputs[1]
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if x.ndim == 4:
        x, weight = x[:, :, None], weight[:, :, None]
        for key, unit in (("strides", 1), ("dilations", 1), ("kernel_shape", 1),
                          ("output_padding", 0), ("output_shape", 1)):
            if key in attributes:
                attributes[key] = [unit] + list(attributes[key])
        if "pads" in attributes:
            pads = list(attributes["pads"])
            attributes["pads"] = [0] + pads[:2] + [0] + pads[2:]
    attributes = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attributes.items()}
    bias = inputs[2] if len(inputs) > 2 else None
    return make_model(list(x.shape), weight, bias, **attributes), x


def test_onnx_backend_cases():
    cases = onnx_backend_cases()
    assert "test_convtranspose_3d" in cases
    checked = []
    for name, (node, inputs, outputs) in sorted(cases.items()):
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if inputs[0].ndim not in (4, 5) or attributes.get("group", 1) != 1:
            continue        # 1-D and grouped cases: deconv3d refuses them (tested below)
        model, x = as_3d(node, inputs)
        out = deconv3d.Conv3DTranspose.from_onnx(model)(x)
        expected = outputs[0] if outputs[0].ndim == 5 else outputs[0][:, :, None]
        assert relative_error(out, expected) < 1e-6, name
        checked.append(name)
    assert len(checked) >= 8 and "test_convtranspose_3d" in checked, checked


# ---------------------------------------------------------------------- loading and refusals
def test_load_onnx_reads_every_3d_node_by_name(tmp_path):
    rng = np.random.default_rng(3)
    w3 = numpy_helper.from_array(rng.standard_normal((2, 3, 2, 2, 2)).astype(np.float32), "w3")
    w2 = numpy_helper.from_array(rng.standard_normal((3, 3, 2, 2)).astype(np.float32), "w2")
    w3b = numpy_helper.from_array(rng.standard_normal((3, 1, 3, 3, 3)).astype(np.float32), "wb")
    nodes = [helper.make_node("ConvTranspose", ["X", "w3"], ["h"], name="/decoder/up1",
                              strides=[2, 2, 2]),
             helper.make_node("ConvTranspose", ["h", "wb"], ["Y"], pads=[1] * 6),
             helper.make_node("ConvTranspose", ["Z", "w2"], ["V"], name="flat")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2, 3, 3, 3]),
                     helper.make_tensor_value_info("Z", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("V", TensorProto.FLOAT, None)], [w3, w2, w3b])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    layers = deconv3d.load_onnx(path)
    assert list(layers) == ["/decoder/up1", "Y"]           # unnamed: its output's name
    assert layers["/decoder/up1"].name == "decoder_up1"
    x = rng.standard_normal((1, 2, 3, 3, 3)).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"X": x, "Z": np.zeros((1, 3, 4, 4), np.float32)})[0]
    assert relative_error(layers["Y"](layers["/decoder/up1"](x)), expected) < 1e-5
    with pytest.raises(ValueError, match=r"node 'flat' is a 2-D ConvTranspose"):
        deconv3d.Conv3DTranspose.from_onnx(path, name="flat")
    with pytest.raises(ValueError, match=r"has 3 ConvTranspose nodes .* pass `name`"):
        deconv3d.Conv3DTranspose.from_onnx(path)
    with pytest.raises(KeyError, match=r"no ConvTranspose node named 'nope'"):
        deconv3d.Conv3DTranspose.from_onnx(path, name="nope")


def test_refusals_name_the_node():
    rng = np.random.default_rng(4)
    weight = rng.standard_normal((4, 2, 2, 2, 2)).astype(np.float32)
    grouped = make_model([1, 4, 3, 3, 3], weight, name="g2", group=2)
    with pytest.raises(ValueError, match=r"node 'g2' has group=2"):
        deconv3d.Conv3DTranspose.from_onnx(grouped)
    computed = make_model([1, 4, 3, 3, 3], weight, name="dyn")
    computed.graph.initializer.pop()
    computed.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT,
                                                              [4, 2, 2, 2, 2]))
    with pytest.raises(ValueError, match=r"node 'dyn': its weight 'W' is not a graph "
                                         r"initializer"):
        deconv3d.Conv3DTranspose.from_onnx(computed)
    unknown = make_model([1, 4, "d", 3, 3], weight, name="shape", output_shape=[4, 4, 4])
    with pytest.raises(ValueError, match=r"node 'shape' has output_shape=\[4, 4, 4\], whose "
                                         r"crops depend on the input's spatial shape"):
        deconv3d.Conv3DTranspose.from_onnx(unknown)


def test_a_corrupt_file_is_refused(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\xff\xff\xff not a protobuf")
    with pytest.raises(ValueError, match=r"bad.onnx' is not a readable ONNX model"):
        deconv3d.load_onnx(path)


def test_inline_data_disagreeing_with_dims_is_refused():
    weight = np.ones((2, 2, 2, 2, 2), np.float32)
    model = make_model([1, 2, 3, 3, 3], weight, name="short")
    model.graph.initializer[0].raw_data = b"\0" * 12
    with pytest.raises(ValueError, match=r"tensor 'W' has dims \[2, 2, 2, 2, 2\] \(128 bytes\) "
                                         r"but 12 bytes of data"):
        deconv3d.Conv3DTranspose.from_onnx(model)
