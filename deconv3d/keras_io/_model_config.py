"""Keras model configs: accepting them from users, and one walker over their layers.

A model config is ``{"class_name": ..., "config": {...}}`` whose inner config
lists the model's layers (Functional and Sequential models; a bare list in
very old Keras 2 Sequential configs).  A layer that is itself a model has its
own list, to any depth.
"""

from __future__ import annotations

import json
from typing import Iterator, NamedTuple, Optional, Tuple

# The Keras class names of the layer deconv3d implements.
CLASS_NAMES = ("Conv3DTranspose", "Convolution3DTranspose")

# Keras configs nest a few JSON levels per nested model; real ones stay far below
# this, and the walkers below recurse once per nested model, so depth is bounded
# well inside Python's recursion limit.
MAX_JSON_DEPTH = 400


class LayerConfig(NamedTuple):
    """One well-formed layer of a model config."""

    name: str
    class_name: str
    config: dict
    entry: dict        # the whole serialised layer (it also holds ``build_config``)


def model_layers(model_cfg) -> Optional[list]:
    """The layer list of a model's inner config, or None if it has none."""
    if isinstance(model_cfg, list):          # very old Keras 2 Sequential
        return model_cfg
    if isinstance(model_cfg, dict) and isinstance(model_cfg.get("layers"), list):
        return model_cfg["layers"]
    return None


def layers_of(model_cfg) -> Iterator[LayerConfig]:
    """The well-formed layers of one model's inner config, in order, not nested ones."""
    for entry in model_layers(model_cfg) or []:
        if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
            cfg = entry["config"]
            yield LayerConfig(cfg.get("name") or entry.get("name") or "",
                              entry.get("class_name", ""), cfg, entry)


def walk(model_cfg, chain: Tuple[str, ...] = ()) -> Iterator[Tuple[Tuple[str, ...], LayerConfig]]:
    """``(chain of names, layer)`` for every layer of a model config, nested ones included.

    Depth first, each model before its own layers; ``chain`` is prefixed to the
    names, so ``walk(inner, ("decoder",))`` yields ``("decoder", "up")``.
    """
    for layer in layers_of(model_cfg):
        names = chain + (layer.name,)
        yield names, layer
        if model_layers(layer.config) is not None:
            yield from walk(layer.config, names)


def parse_json(text, what: str):
    """JSON text (str or bytes) as Python values; ValueError naming ``what`` if it is not
    JSON or nests deeper than :data:`MAX_JSON_DEPTH`."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what} nests too deeply to be a Keras config (more than "
                         f"{MAX_JSON_DEPTH} levels)") from None
    except ValueError as error:
        raise ValueError(f"{what} is not valid JSON: {error}") from None
    _check_depth(value, what)
    return value


def _check_depth(value, what: str) -> None:
    # iterative: a recursive walk would fail on exactly the inputs it must refuse
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"{what} nests too deeply to be a Keras config (more than "
                             f"{MAX_JSON_DEPTH} levels)")
        if isinstance(item, dict):
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)


def _parsed(config, argument: str):
    if isinstance(config, (str, bytes)):
        return parse_json(config, f"`{argument}`")
    if isinstance(config, (dict, list)):
        _check_depth(config, f"`{argument}`")
    return config


def _is_wrapped(config: dict) -> bool:
    """Whether ``config`` is a ``{"class_name", "config"}`` serialisation."""
    return "class_name" in config and "config" in config


def as_model_config(config, argument: str) -> dict:
    """A model config (dict or JSON text) in the ``{"class_name", "config"}`` form."""
    config = _parsed(config, argument)
    if not isinstance(config, dict):
        raise TypeError(f"`{argument}` must be a model config (dict or JSON string), got "
                        f"{type(config).__name__}")
    if _is_wrapped(config):
        if model_layers(config.get("config")) is None:
            raise ValueError(f"`{argument}` is a {config['class_name']!r} config without a "
                             f"list of layers; expected a Functional or Sequential model config")
        return config
    if isinstance(config.get("layers"), list):
        return {"class_name": "Functional", "config": config}
    raise ValueError(f"`{argument}` is not a model config: expected "
                     f"json.loads(model.to_json()) or model.get_config()")


def split_config(config):
    """``(model_config, layer_config)`` of a ``config=`` argument: exactly one is not None."""
    config = _parsed(config, "config")
    if not isinstance(config, dict):
        raise TypeError(f"`config` must be a dict or a JSON string, got {type(config).__name__}")
    if _is_wrapped(config) and config["class_name"] in CLASS_NAMES:
        return None, dict(config["config"])   # a serialised layer
    if _is_wrapped(config) or isinstance(config.get("layers"), list):
        return as_model_config(config, "config"), None
    return None, dict(config)


def declared_kernel(layer_cfg) -> Optional[Tuple[int, ...]]:
    """``(kd, kh, kw, filters)`` as a layer config states them, or None where it does not
    (a partial or unreadable config is judged later, when the layer is built)."""
    if not isinstance(layer_cfg, dict):
        return None
    size, filters = layer_cfg.get("kernel_size"), layer_cfg.get("filters")
    if _is_count(size):
        size = (size,) * 3
    if (not isinstance(size, (list, tuple)) or len(size) != 3 or not all(map(_is_count, size))
            or not _is_count(filters)):
        return None
    return tuple(size) + (filters,)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
