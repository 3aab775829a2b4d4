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

import re
import zipfile

from . import _archive, _hdf5
from ._contents import FORMAT_KERAS, KerasFileContents, KerasLayerEntry, holds_its_own_config
from ._model_config import CLASS_NAMES, layers_of, model_layers, parse_json, walk

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
            return _read_members(archive, path)
    except _archive.DAMAGED as error:
        raise ValueError(f"{path} is a corrupt or truncated .keras archive: {error}") from None


def _read_members(archive: zipfile.ZipFile, path: str) -> KerasFileContents:
    names = _archive.member_names(archive, path)
    if "config.json" not in names:
        raise ValueError(f"{path} is a zip file but not a .keras archive: it has no "
                         f"config.json (entries: {', '.join(names[:10]) or 'none'})")
    if "model.weights.h5" not in names:
        sharded = " (sharded weights are not supported)" if any(
            n.endswith(".weights.json") for n in names) else ""
        raise ValueError(f"{path}: the .keras archive has no model.weights.h5{sharded}")
    model_config = parse_json(
        _archive.read_small(archive, "config.json", _archive.CONFIG_LIMIT, path),
        f"{path}: config.json in the .keras archive")
    version = None
    if "metadata.json" in names:
        try:
            metadata = parse_json(
                _archive.read_small(archive, "metadata.json", _archive.METADATA_LIMIT, path),
                "metadata.json")
        except ValueError:
            metadata = None        # only the version comes from it: not worth refusing over
        if isinstance(metadata, dict) and isinstance(metadata.get("keras_version"), str):
            version = metadata["keras_version"]
    if not isinstance(model_config, dict):
        raise ValueError(f"{path}: config.json in the .keras archive holds a JSON "
                         f"{type(model_config).__name__}, not an object (a model config)")
    if model_layers(model_config.get("config")) is None:
        raise ValueError(f"{path}: the model in the .keras archive "
                         f"({model_config.get('class_name')!r}) has no list of layers in its "
                         f"config; only Functional and Sequential models are supported")
    h5py = _hdf5.h5py()
    with _archive.open_weights(archive, "model.weights.h5", path) as member:
        try:
            with h5py.File(member, "r") as weights:
                _hdf5.check_links(weights, path)
                layers, others = walk_model(model_config["config"], weights, "", path)
                layers = _hdf5.read_weights(layers, path)
        except _hdf5.UNREADABLE as error:
            raise ValueError(f"{path}: model.weights.h5 in the .keras archive is corrupt or "
                             f"truncated: {error}") from None
    return KerasFileContents(path, FORMAT_KERAS, True, tuple(layers), others, version)


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
    """The kernel (and bias) datasets, unread: :func:`_hdf5.read_weights` reads them."""
    variables = group.get("vars")
    if variables is None or not hasattr(variables, "keys"):
        raise ValueError(f"{path}: no weights at {location}/vars (corrupt or incomplete file?)")
    keys = sorted(variables.keys(), key=_natural_key)
    if keys not in (["0"], ["0", "1"]):
        raise ValueError(f"{path}: expected a kernel (and a bias) at {location}/vars, found "
                         f"{keys or 'nothing'}")
    return tuple(variables[k] for k in keys)


def _unique_name(base: str, used: dict) -> str:
    # saving_lib._get_unique_name
    if base in used:
        used[base] += 1
        return f"{base}_{used[base]}"
    used[base] = 0
    return base


def walk_model(model_cfg, model_group, prefix: str, path: str):
    """``(entries, other layers)`` of a model's inner config, weights from ``model_group``.

    The entries' weights are the h5py datasets, not yet read: the caller reads them
    with :func:`_hdf5.read_weights` once the whole file is walked.
    """
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
    """Weights-only Keras 3 file: Conv3DTranspose groups found by their group names.

    The entries' weights are the h5py datasets, not yet read: the caller reads them
    with :func:`_hdf5.read_weights` once the whole file is walked.
    """
    layers, others = [], {}
    location_prefix = model_group.name.rstrip("/")
    for key, (group, label) in _layer_groups(model_group).items():
        name = label if label is not None else key
        layer_path = f"{prefix}{name}"
        location = f"{location_prefix}/layers/{key}"
        base = re.sub(r"_\d+$", "", key)
        if base == _GROUP_BASE:
            weights = _weights(group, location, path)
            layers.append(KerasLayerEntry(layer_path, name, None, weights, location + "/vars"))
            continue
        others[layer_path] = base
        if "layers" in group:
            inner, inner_others = scan_weights(group, layer_path + "/", path)
            layers.extend(inner)
            others.update(inner_others)
    return layers, others
