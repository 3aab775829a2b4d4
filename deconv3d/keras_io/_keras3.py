"""The Keras 3 layout: ``.keras`` archives and ``.weights.h5`` files.

In ``model.weights.h5`` a model's layers are groups ``layers/<group>``, where
``<group>`` is the snake_case class name numbered per model in ``model.layers``
order (``conv3d_transpose``, ``conv3d_transpose_1``, ...), not the layer's name;
since Keras 3.6 the ``vars`` group of each layer carries the layer name as
attribute ``name``, which is used when present.  A layer's variables are
``vars/0`` (kernel) and ``vars/1`` (bias); a nested model's layers are under
``layers/<group>/layers/...``.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib

import numpy as np

from . import _hdf5
from ._contents import FORMAT_KERAS, KerasFileContents, KerasLayerEntry, holds_its_own_config
from ._model_config import CLASS_NAMES, layers_of, model_layers, walk

_GROUP_BASE = "conv3d_transpose"    # to_snake_case("Conv3DTranspose")


def to_snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: how ``model.weights.h5`` names layer groups."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def read_archive(path: str, supplied) -> KerasFileContents:
    """The Conv3DTranspose layers of a ``.keras`` archive (``supplied`` must be None)."""
    if supplied is not None:
        raise holds_its_own_config(path, FORMAT_KERAS)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "config.json" not in names:
                raise ValueError(f"{path} is a zip file but not a .keras archive: it has no "
                                 f"config.json (entries: {', '.join(names[:10]) or 'none'})")
            if "model.weights.h5" not in names:
                sharded = " (sharded weights are not supported)" if any(
                    n.endswith(".weights.json") for n in names) else ""
                raise ValueError(f"{path}: the .keras archive has no model.weights.h5{sharded}")
            raw_config = archive.read("config.json")
            raw_metadata = archive.read("metadata.json") if "metadata.json" in names else b"{}"
            raw_weights = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as error:
        raise ValueError(f"{path} is a corrupt or truncated .keras archive: {error}") from None
    try:
        model_config = json.loads(raw_config)
    except ValueError as error:
        raise ValueError(f"{path}: config.json in the .keras archive is not valid JSON "
                         f"(corrupt archive?): {error}") from None
    try:
        version = json.loads(raw_metadata).get("keras_version")
    except (ValueError, AttributeError):
        version = None
    if not isinstance(model_config, dict) or model_layers(model_config.get("config")) is None:
        cls = model_config.get("class_name") if isinstance(model_config, dict) else None
        raise ValueError(f"{path}: the model in the .keras archive ({cls!r}) has no list of "
                         f"layers in its config; only Functional and Sequential models are "
                         f"supported")
    h5py = _hdf5.h5py()
    try:
        with h5py.File(io.BytesIO(raw_weights), "r") as weights:
            layers, others = walk_model(model_config["config"], weights, "", path)
    except OSError as error:
        raise ValueError(f"{path}: model.weights.h5 in the .keras archive is corrupt or "
                         f"truncated: {error}") from None
    return KerasFileContents(path, FORMAT_KERAS, True, tuple(layers), others,
                             version if isinstance(version, str) else None)


def _layer_groups(model_group):
    """{group name: (group, name attribute or None)} of the layers of a model group."""
    container = model_group.get("layers")
    if container is None or not hasattr(container, "keys"):
        return {}
    found = {}
    for key in sorted(container.keys(), key=_natural_key):
        group = container[key]
        if not hasattr(group, "keys"):
            continue
        variables = group.get("vars")
        label = None
        if variables is not None and "name" in variables.attrs:
            label = _hdf5.text(variables.attrs["name"])
        found[key] = (group, label)
    return found


def _weights(group, location: str, path: str):
    variables = group.get("vars")
    if variables is None or not hasattr(variables, "keys"):
        raise ValueError(f"{path}: no weights at {location}/vars (corrupt or incomplete file?)")
    keys = sorted(variables.keys(), key=_natural_key)
    if keys not in (["0"], ["0", "1"]):
        raise ValueError(f"{path}: expected a kernel (and a bias) at {location}/vars, found "
                         f"{keys or 'nothing'}")
    return tuple(np.asarray(variables[k][()]) for k in keys)


def _unique_name(base: str, used: dict) -> str:
    # saving_lib._get_unique_name
    if base in used:
        used[base] += 1
        return f"{base}_{used[base]}"
    used[base] = 0
    return base


def walk_model(model_cfg, model_group, prefix: str, path: str):
    """``(entries, other layers)`` of a model's inner config, weights from ``model_group``."""
    layers, others = [], {}
    groups = _layer_groups(model_group)
    by_label = {}
    for key, (_, label) in groups.items():
        if label is not None:
            by_label.setdefault(label, []).append(key)
    used = {}
    location_prefix = model_group.name.rstrip("/")
    for layer in layers_of(model_cfg):
        cls, name = layer.class_name, layer.name
        base = to_snake_case(cls)
        counted = _unique_name(base, used)
        if cls == "InputLayer":
            continue
        layer_path = f"{prefix}{name}"
        key = counted
        candidates = [k for k in by_label.get(name, ()) if re.fullmatch(
            re.escape(base) + r"(_\d+)?", k)]
        if len(candidates) == 1:
            key = candidates[0]
        group = groups.get(key, (None,))[0]
        location = f"{location_prefix}/layers/{key}"
        if cls in CLASS_NAMES:
            if group is None:
                raise ValueError(f"{path}: no weights for Conv3DTranspose {layer_path!r} "
                                 f"(expected HDF5 group {location})")
            weights = _weights(group, location, path)
            layers.append(KerasLayerEntry(layer_path, name, layer.config, weights,
                                          location + "/vars", layer.entry.get("build_config")))
            continue
        others[layer_path] = cls
        if model_layers(layer.config) is None:
            continue
        if group is None:
            if any(inner.class_name in CLASS_NAMES for _, inner in walk(layer.config)):
                raise ValueError(f"{path}: no weights for nested model {layer_path!r} "
                                 f"(expected HDF5 group {location})")
            continue
        inner, inner_others = walk_model(layer.config, group, layer_path + "/", path)
        layers.extend(inner)
        others.update(inner_others)
    return layers, others


def scan_weights(model_group, prefix: str, path: str):
    """Weights-only Keras 3 file: Conv3DTranspose groups found by their group names."""
    layers, others = [], {}
    location_prefix = model_group.name.rstrip("/")
    for key, (group, label) in _layer_groups(model_group).items():
        name = label if label is not None else key
        layer_path = f"{prefix}{name}"
        location = f"{location_prefix}/layers/{key}"
        base = re.sub(r"_\d+$", "", key)
        if base == _GROUP_BASE:
            weights = _weights(group, location, path)
            if weights[0].ndim != 5:
                raise ValueError(f"{path}: {location}/vars/0 has shape {weights[0].shape}, "
                                 f"not a 5-D Conv3DTranspose kernel")
            layers.append(KerasLayerEntry(layer_path, name, None, weights, location + "/vars"))
            continue
        others[layer_path] = base
        if "layers" in group:
            inner, inner_others = scan_weights(group, layer_path + "/", path)
            layers.extend(inner)
            others.update(inner_others)
    return layers, others
