"""Conv3DTranspose layers from the 3-D ``ConvTranspose`` nodes of ONNX models.

ONNX's ConvTranspose is NCDHW with the weight ``(in, out, kd, kh, kw)`` (torch's
layout), so every layer read here is ``channels_first``.  Its window is given by
``pads`` (crops at both ends), ``output_padding`` (positions given back at the
end), ``auto_pad`` or an explicit ``output_shape``; all of them become explicit
per-axis crops, or Keras's padding when that gives the same window.

Model files are data: the protobuf is parsed without loading external data, and
external tensors are then read here, only from files inside the model's folder,
with their byte counts checked against the declared dims before anything is
allocated or read.  Nothing in a model is ever executed.  The ``onnx`` package is
imported only inside functions (``pip install "deconv3d[onnx]"``).
"""

from __future__ import annotations

import math
import os
from typing import Dict, Optional

import numpy as np

from . import _checks, shapes
from .convert import layer_from_config_and_weights
from .layer import Conv3DTranspose

# ONNX TensorProto data types deconv3d computes in -> NumPy dtype (ONNX stores little-endian)
_DTYPES = {1: np.dtype("<f4"), 11: np.dtype("<f8"), 10: np.dtype("<f2")}
_AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def _import_onnx():
    try:
        import onnx  # optional extra: deconv3d[onnx]
    except ImportError as error:
        raise ImportError('reading ONNX models needs the onnx package: '
                          'pip install "deconv3d[onnx]"') from error
    return onnx


def read_model(model):
    """``(ModelProto, folder of its external data or None, label)`` without external data."""
    onnx = _import_onnx()
    if isinstance(model, onnx.ModelProto):
        return model, None, "the ONNX model"
    if not isinstance(model, (str, bytes, os.PathLike)):
        raise TypeError(f"`model` must be a path to an .onnx file or an onnx.ModelProto, got "
                        f"{type(model).__name__}")
    path = os.fsdecode(model)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ONNX model {path!r} does not exist or is not a file")
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as error:   # protobuf's DecodeError and friends: not a model
        raise ValueError(f"{path!r} is not a readable ONNX model: {error}") from None
    return proto, os.path.dirname(os.path.abspath(path)), repr(path)


def conv_transpose_nodes(graph) -> list:
    """``[(name, node)]`` of the graph's ConvTranspose nodes (name: the node's, else its output's)."""
    found = []
    for index, node in enumerate(graph.node):
        if node.op_type == "ConvTranspose" and node.domain in ("", "ai.onnx"):
            name = node.name or (node.output[0] if node.output else f"ConvTranspose_{index}")
            found.append((name, node))
    return found


def node_rank(graph, node) -> Optional[int]:
    """Spatial rank of a ConvTranspose node, from its weight, kernel_shape or input shape."""
    initializers = {t.name: t for t in graph.initializer}
    if len(node.input) > 1 and node.input[1] in initializers:
        return len(initializers[node.input[1]].dims) - 2
    for attribute in node.attribute:
        if attribute.name == "kernel_shape":
            return len(attribute.ints)
    shape = _declared_shape(graph, node.input[0]) if node.input else None
    return None if shape is None else len(shape) - 2


def load_onnx(model) -> Dict[str, Conv3DTranspose]:
    """Every 3-D ``ConvTranspose`` node of an ONNX model as a layer, by node name.

    Parameters
    ----------
    model : str, os.PathLike or onnx.ModelProto
        An ``.onnx`` file (external data is read from its folder only) or a
        loaded model without external data.

    Returns
    -------
    dict of str to deconv3d.Conv3DTranspose
        In graph order; 1-D and 2-D ConvTranspose nodes are left out.  Keys are
        node names (the first output's name for an unnamed node).

    Raises
    ------
    ValueError
        A 3-D node cannot be read (see :func:`layer_from_onnx`), or the file
        is not an ONNX model.
    """
    proto, folder, label = read_model(model)
    return {name: _layer(proto.graph, name, node, folder, label)
            for name, node in conv_transpose_nodes(proto.graph)
            if node_rank(proto.graph, node) in (3, None)}


def layer_from_onnx(model, name: Optional[str] = None) -> Conv3DTranspose:
    """One ``ConvTranspose`` node of an ONNX model as a built channels_first layer.

    Parameters
    ----------
    model : str, os.PathLike or onnx.ModelProto
    name : str, optional
        The node's name; optional when the model has exactly one ConvTranspose.

    Raises
    ------
    KeyError
        No ConvTranspose node has that name (the message lists them).
    ValueError
        The node is not 3-D, has ``group > 1``, weights that are not
        initializers, external data outside the model's folder, tensors whose
        data disagree with their dims, or an ``output_shape`` without a known
        input shape.
    """
    proto, folder, label = read_model(model)
    nodes = conv_transpose_nodes(proto.graph)
    names = [n for n, _ in nodes]
    if name is None:
        if len(nodes) != 1:
            raise ValueError(f"{label} has {len(nodes)} ConvTranspose nodes ({names}); pass "
                             f"`name` to choose one")
        name = names[0]
    if name not in names:
        raise KeyError(f"{label} has no ConvTranspose node named {name!r}; it has {names}")
    return _layer(proto.graph, name, dict(nodes)[name], folder, label)


def _layer(graph, name: str, node, folder, label: str) -> Conv3DTranspose:
    source = f"{label}, node {name!r}"
    rank = node_rank(graph, node)
    if rank != 3:
        raise ValueError(f"{source} is a {rank}-D ConvTranspose; deconv3d reads 3-D ones only"
                         if rank is not None else f"{source}: cannot tell its rank")
    attributes = _attributes(node)
    group = attributes.get("group", 1)
    if group != 1:
        raise ValueError(f"{source} has group={group}; grouped transposed convolutions are "
                         f"not supported (group must be 1)")
    initializers = {t.name: t for t in graph.initializer}
    inputs = [i for i in node.input]
    if len(inputs) < 2 or inputs[1] not in initializers:
        raise ValueError(f"{source}: its weight {inputs[1] if len(inputs) > 1 else None!r} is "
                         f"not a graph initializer (weights computed in the graph are not "
                         f"supported)")
    weight = read_tensor(initializers[inputs[1]], folder, source)
    if weight.ndim != 5:
        raise ValueError(f"{source}: the weight has shape {weight.shape}, expected 5-D")
    bias = None
    if len(inputs) > 2 and inputs[2]:
        if inputs[2] not in initializers:
            raise ValueError(f"{source}: its bias {inputs[2]!r} is not a graph initializer")
        bias = read_tensor(initializers[inputs[2]], folder, source)
    k = tuple(int(v) for v in weight.shape[2:])
    if tuple(attributes.get("kernel_shape", k)) != k:
        raise ValueError(f"{source} has kernel_shape={attributes['kernel_shape']} but its "
                         f"weight has shape {weight.shape}")
    s = _per_axis(attributes, "strides", 1, source)
    d = _per_axis(attributes, "dilations", 1, source)
    crops = _crops(graph, node, attributes, k, s, d, source)
    config = {"filters": int(weight.shape[1]), "kernel_size": k, "strides": s,
              "dilation_rate": d, "data_format": "channels_first",
              "use_bias": bias is not None, "dtype": weight.dtype.name,
              "name": name.strip("/").replace("/", "_") or "conv3d_transpose"}
    keras = shapes.keras_padding_for_crops(crops, k, s, d)
    if keras is None:
        config["crops"] = crops
    else:
        config["padding"], config["output_padding"] = keras
    weights = [weight.transpose(2, 3, 4, 1, 0)] + ([] if bias is None else [bias])
    return layer_from_config_and_weights(config, weights, source)


def _attributes(node) -> dict:
    values = {}
    for attribute in node.attribute:
        if attribute.ints or attribute.type == 7:          # INTS
            values[attribute.name] = tuple(int(v) for v in attribute.ints)
        elif attribute.type == 2:                            # INT
            values[attribute.name] = int(attribute.i)
        elif attribute.type == 3:                            # STRING
            values[attribute.name] = attribute.s.decode("utf-8", "replace")
    return values


def _per_axis(attributes: dict, key: str, default: int, source: str) -> tuple:
    values = attributes.get(key, (default,) * 3)
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"{source} has {key}={list(values)}; expected 3 positive integers")
    return tuple(values)


def _crops(graph, node, attributes, k, s, d, source) -> tuple:
    """Per-axis (front, back) crops of the node's output window (see ONNX's ConvTranspose)."""
    auto_pad = attributes.get("auto_pad", "NOTSET")
    if auto_pad not in _AUTO_PADS:
        raise ValueError(f"{source} has auto_pad={auto_pad!r}; expected one of {_AUTO_PADS}")
    op = attributes.get("output_padding", (0,) * 3)
    pads = attributes.get("pads", (0,) * 6)
    if len(op) != 3 or len(pads) != 6 or min(op) < 0:
        raise ValueError(f"{source} has output_padding={list(op)}, pads={list(pads)}; expected "
                         f"3 and 6 non-negative integers")
    output_shape = attributes.get("output_shape")
    if output_shape is None and auto_pad in ("NOTSET", "VALID"):
        begin, end = (pads[:3], pads[3:]) if auto_pad == "NOTSET" else ((0,) * 3, (0,) * 3)
        crops = tuple((b, e - o) for b, e, o in zip(begin, end, op))
    else:
        if output_shape is not None:
            output_shape = output_shape[-3:]
            spatial = (_declared_shape(graph, node.input[0]) or (None,) * 5)[2:]
            if len(output_shape) != 3 or not all(isinstance(n, int) for n in spatial):
                raise ValueError(f"{source} has output_shape={list(attributes['output_shape'])}"
                                 f", whose crops depend on the input's spatial shape, and the "
                                 f"graph does not declare it ({list(spatial)})")
            totals = [shapes.full_length(n, *a) + o - out for n, a, o, out in
                      zip(spatial, zip(k, s, d), op, output_shape)]
        else:       # SAME_*: the output is the input times the strides, when it can be
            totals = [max(0, shapes.effective_kernel(*a) + o - st)
                      for a, o, st in zip(zip(k, d), op, s)]
        crops = []
        for total, o in zip(totals, op):
            # the total crop split as ONNX Runtime does: the odd one at the back for
            # SAME_UPPER, in front otherwise; a negative total appends zeros at the back
            if total < 0:
                begin = 0
            else:
                begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            crops.append((begin, total - begin - o))
        crops = tuple(crops)
    if min(front for front, _ in crops) < 0:
        raise ValueError(f"{source}: its output window starts before the transposed "
                         f"convolution does (crops {crops}); negative pads are not supported")
    return crops


def _declared_shape(graph, value_name: str) -> Optional[tuple]:
    """The shape the graph declares for a value (ints, or None per unknown dim)."""
    for info in list(graph.input) + list(graph.value_info):
        if info.name == value_name and info.type.HasField("tensor_type"):
            dims = info.type.tensor_type.shape.dim
            return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    return None


def read_tensor(tensor, folder: Optional[str], source: str) -> np.ndarray:
    """A TensorProto's values, checked against its dims before anything is read.

    External data must name a file inside ``folder`` (no absolute paths, no
    ``..``, no link leading out), and hold the declared byte count at its offset.
    """
    dtype = _DTYPES.get(tensor.data_type)
    label = f"{source}: tensor {tensor.name!r}"
    if dtype is None:
        raise ValueError(f"{label} has ONNX data type {tensor.data_type}; supported: float, "
                         f"double, float16")
    dims = tuple(int(v) for v in tensor.dims)
    if min(dims, default=0) < 0:
        raise ValueError(f"{label} has negative dims {list(dims)}")
    _checks.check_allocation(dims, dtype.itemsize, label)
    count = math.prod(dims)
    nbytes = count * dtype.itemsize
    if tensor.data_location == 1:                           # EXTERNAL
        data = _read_external(tensor, folder, nbytes, label)
    elif tensor.HasField("raw_data"):
        data = tensor.raw_data
        if len(data) != nbytes:
            raise ValueError(f"{label} has dims {list(dims)} ({nbytes} bytes) but "
                             f"{len(data)} bytes of data")
    else:
        values = {1: tensor.float_data, 11: tensor.double_data, 10: tensor.int32_data}[
            tensor.data_type]
        if len(values) != count:
            raise ValueError(f"{label} has dims {list(dims)} ({count} values) but "
                             f"{len(values)} values")
        if tensor.data_type == 10:      # float16 bit patterns, one per int32
            return np.array(values, dtype=np.uint16).view(np.float16).reshape(dims)
        return np.array(values, dtype=dtype).reshape(dims)
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _read_external(tensor, folder, nbytes: int, label: str) -> bytes:
    entries = {entry.key: entry.value for entry in tensor.external_data}
    location = entries.get("location", "")
    if folder is None:
        raise ValueError(f"{label} keeps its data in the external file {location!r}; pass the "
                         f"model's path (not a loaded ModelProto) so that its folder is known")
    parts = location.replace("\\", "/").split("/")
    if (not location or os.path.isabs(location) or location.startswith(("/", "\\"))
            or os.path.splitdrive(location)[0] or ".." in parts):
        raise ValueError(f"{label} points to external data at {location!r}, outside the "
                         f"model's folder: only relative paths without '..' are read")
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
        raise ValueError(f"{label} points to external data at {location!r}, which is not a "
                         f"file inside the model's folder")
    try:
        offset = int(entries.get("offset", 0))
        length = int(entries.get("length", nbytes))
    except ValueError:
        raise ValueError(f"{label} has an unreadable external-data offset or length: "
                         f"{entries}") from None
    if offset < 0 or length != nbytes:
        raise ValueError(f"{label} declares {length} bytes at offset {offset} of {location!r}, "
                         f"but its dims need {nbytes} bytes")
    size = os.path.getsize(path)
    if offset + nbytes > size:
        raise ValueError(f"{label} needs {nbytes} bytes at offset {offset} of {location!r}, "
                         f"which has only {size} bytes")
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(nbytes)
    if len(data) != nbytes:
        raise ValueError(f"{label}: {location!r} ended early (it changed while read)")
    return data
