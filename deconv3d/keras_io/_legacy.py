"""The legacy HDF5 layout: ``model.save("m.h5")`` files and Keras 2 weights files.

A model file has the root attribute ``model_config`` (JSON) and one group
``model_weights/<layer name>`` per top-level layer, whose attribute
``weight_names`` lists its datasets in order (``up/kernel`` in Keras 3,
``up/kernel:0`` in Keras 2).  A nested model's group lists the weights of all
its layers.  A Keras 2 weights file has the same groups at the file root.
"""

from __future__ import annotations

import re
from typing import List

from . import _hdf5
from ._contents import KerasLayerEntry
from ._model_config import CLASS_NAMES, layers_of, model_layers, walk


def _weight_names(group, location: str, path: str) -> List[str]:
    if "weight_names" not in group.attrs:
        raise ValueError(f"{path}: the legacy layer group {location} has no weight_names "
                         f"attribute (corrupt file?)")
    return _hdf5.text_list(_hdf5.attribute(group, "weight_names", location, path))


def _read_named(group, names, location: str, path: str):
    """The datasets ``names``, unread: :func:`_hdf5.read_weights` reads them."""
    datasets = []
    for weight_name in names:
        if weight_name not in group:
            raise ValueError(f"{path}: weight {weight_name!r} listed in {location} is missing "
                             f"(corrupt file?)")
        datasets.append(group[weight_name])
    return tuple(datasets)


def _parse_weight_name(weight_name: str):
    parts = weight_name.split("/")
    parts[-1] = re.sub(r":\d+$", "", parts[-1])
    return parts


def walk_model(model_cfg, root, path: str):
    """``(entries, other layers)`` of a model's inner config, weights from the legacy groups.

    The entries' weights are the h5py datasets, not yet read: the caller reads them
    with :func:`_hdf5.read_weights` once the whole file is walked.
    """
    layers, others = [], {}
    location_prefix = root.name.rstrip("/")
    for layer in layers_of(model_cfg):
        cls, name = layer.class_name, layer.name
        if cls == "InputLayer":
            continue
        location = f"{location_prefix}/{name}"
        if cls in CLASS_NAMES:
            if name not in root:
                raise ValueError(f"{path}: no weights for Conv3DTranspose {name!r} (expected "
                                 f"HDF5 group {location})")
            group = root[name]
            names = _weight_names(group, location, path)
            # kernel first, whatever order the file lists them in
            names = sorted(names, key=lambda n: _parse_weight_name(n)[-1] != "kernel")
            weights = _read_named(group, names, location, path)
            layers.append(KerasLayerEntry(name, name, layer.config, weights, location,
                                          layer.entry.get("build_config")))
        elif model_layers(layer.config) is not None:
            others[name] = cls
            nested = list(walk(layer.config, (name,)))
            for chain, inner in nested:
                if inner.class_name not in CLASS_NAMES:
                    continue
                if name not in root:
                    raise ValueError(f"{path}: no weights for nested model {name!r} (expected "
                                     f"HDF5 group {location})")
                group = root[name]
                names = _weight_names(group, location, path)
                chosen = _match_nested_weights(names, chain, path, location)
                weights = _read_named(group, chosen, location, path)
                layers.append(KerasLayerEntry("/".join(chain), chain[-1], inner.config, weights,
                                              location, inner.entry.get("build_config")))
            for chain, inner in nested:
                if inner.class_name not in CLASS_NAMES and inner.class_name != "InputLayer":
                    others["/".join(chain)] = inner.class_name
        else:
            others[name] = cls
    return layers, others


def _match_nested_weights(names, chain, path: str, location: str) -> List[str]:
    """The kernel (and bias) names of the layer at ``chain`` among a nested model's weights.

    Keras 3 names them ``<model>/<layer>/kernel``, Keras 2 ``<layer>/kernel:0``: the
    weights whose prefix agrees with the most trailing names of ``chain`` win.
    """
    scored = {}
    for weight_name in names:
        parts = _parse_weight_name(weight_name)
        if len(parts) < 2 or parts[-1] not in ("kernel", "bias") or parts[-2] != chain[-1]:
            continue
        prefix = parts[:-1]
        score = 0
        while (score < min(len(prefix), len(chain))
               and prefix[len(prefix) - 1 - score] == chain[len(chain) - 1 - score]):
            score += 1
        scored.setdefault(tuple(prefix), (score, {}))[1][parts[-1]] = weight_name
    best_score = max((score for score, _ in scored.values()), default=0)
    best = [found for score, found in scored.values() if score == best_score]
    if best_score == 0 or len(best) != 1:
        listed = ", ".join(names) or "none"
        raise ValueError(f"{path}: cannot tell which weights in {location} belong to "
                         f"Conv3DTranspose {'/'.join(chain)!r} (weight_names: {listed})")
    found = best[0]
    if "kernel" not in found:
        raise ValueError(f"{path}: no kernel for Conv3DTranspose {'/'.join(chain)!r} in "
                         f"{location}")
    return [found["kernel"]] + ([found["bias"]] if "bias" in found else [])


def scan_weights(root, path: str):
    """Legacy weights-only file: layers whose weights look like a 3-D conv kernel (+ bias).

    The entries' weights are the h5py datasets, not yet read: the caller reads them
    with :func:`_hdf5.read_weights` once the whole file is walked.
    """
    layers, others = [], {}
    location_prefix = root.name.rstrip("/")
    for top in _hdf5.text_list(_hdf5.attribute(root, "layer_names", location_prefix or "/",
                                                path)):
        location = f"{location_prefix}/{top}"
        if top not in root:
            raise ValueError(f"{path}: layer {top!r} is listed in layer_names but has no group "
                             f"(corrupt file?)")
        group = root[top]
        names = _weight_names(group, location, path)
        by_layer = {}
        for weight_name in names:
            parts = _parse_weight_name(weight_name)
            owner = parts[-2] if len(parts) >= 2 else top
            by_layer.setdefault(owner, []).append((parts[-1], weight_name))
        found_any = False
        for owner, items in by_layer.items():
            kinds = [kind for kind, _ in items]
            if kinds not in (["kernel"], ["kernel", "bias"]):
                continue
            # judged by the declared ranks, so other layers' weights are never read
            if any(n in group and getattr(group[n], "ndim", None) != rank
                   for (_, n), rank in zip(items, (5, 1))):
                continue
            weights = _read_named(group, [n for _, n in items], location, path)
            layer_path = top if owner == top else f"{top}/{owner}"
            layers.append(KerasLayerEntry(layer_path, owner, None, weights, location))
            found_any = True
        if not found_any or any(owner != top for owner in by_layer):
            others.setdefault(top, "unknown")
    return layers, others
