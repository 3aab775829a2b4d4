"""Defaults that Keras reads from its ``keras.json``, and the dtype policy.

Keras looks for ``keras.json`` in ``$KERAS_HOME`` when that variable is set,
otherwise in ``~/.keras``.  Unlike Keras we never create the file.  The file is
read when a default is needed, so a test (or a user) can point ``KERAS_HOME``
somewhere else at run time.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

import numpy as np

DATA_FORMATS = ("channels_first", "channels_last")
FLOAT_NAMES = ("float16", "float32", "float64")


def keras_json_path() -> str:
    """Where Keras would read its configuration file from."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "keras.json")


def _read_keras_json() -> dict:
    # Keras treats a missing or unparsable file as "no settings".
    try:
        with open(keras_json_path(), encoding="utf-8") as handle:
            settings = json.load(handle)
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


def _setting(key: str, default: str, allowed) -> str:
    value = _read_keras_json().get(key, default)
    if value not in allowed:
        raise ValueError(f"Invalid `{key}` in {keras_json_path()}: {value!r}; "
                         f"expected one of {allowed}")
    return value


def image_data_format() -> str:
    """``image_data_format`` from keras.json, ``"channels_last"`` when unset."""
    return _setting("image_data_format", "channels_last", DATA_FORMATS)


def floatx() -> str:
    """``floatx`` from keras.json, ``"float32"`` when unset."""
    return _setting("floatx", "float32", FLOAT_NAMES)


class DTypePolicy(NamedTuple):
    """A Keras dtype policy reduced to what inference needs.

    ``name`` is the Keras policy name, ``variable_dtype`` the dtype weights are
    stored in, ``compute_dtype`` the dtype the output is returned in, and
    ``core_dtype`` the dtype the compiled core computes in (float16 work is done
    in float32 and rounded once at the end).
    """

    name: str
    variable_dtype: np.dtype
    compute_dtype: np.dtype
    core_dtype: np.dtype


_POLICIES = {
    "float32": ("float32", "float32"),
    "float64": ("float64", "float64"),
    "float16": ("float16", "float16"),
    "mixed_float16": ("float32", "float16"),
}


def dtype_policy(dtype) -> DTypePolicy:
    """Resolve a layer's ``dtype`` argument (None, a name, a NumPy dtype or a Keras policy dict)."""
    if dtype is None:
        name = floatx()
    elif isinstance(dtype, dict):
        # the serialised form Keras writes: {"class_name": "DTypePolicy", "config": {"name": ...}}
        config = dtype.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("name"), str):
            raise ValueError(f"Cannot read a dtype policy from dtype={dtype!r}")
        name = config["name"]
    elif isinstance(dtype, str):
        name = dtype
    elif isinstance(dtype, (np.dtype, type)):
        try:
            name = np.dtype(dtype).name
        except TypeError:
            raise ValueError(f"Cannot interpret `dtype` argument: {dtype!r}") from None
    elif hasattr(dtype, "name") and isinstance(getattr(dtype, "name"), str):
        name = dtype.name          # a keras.DTypePolicy object
    else:
        raise ValueError(f"Cannot interpret `dtype` argument: {dtype!r}; expected None, a "
                         f"string such as 'float32', or a policy dict")
    if name not in _POLICIES:
        if name in ("bfloat16", "mixed_bfloat16"):
            raise ValueError(f"dtype={name!r} is not supported: NumPy has no bfloat16. "
                             f"Use one of {sorted(_POLICIES)}")
        raise ValueError(f"Cannot convert dtype={name!r} to a supported dtype policy; "
                         f"expected one of {sorted(_POLICIES)}")
    variable, compute = _POLICIES[name]
    core = "float64" if compute == "float64" else "float32"
    return DTypePolicy(name, np.dtype(variable), np.dtype(compute), np.dtype(core))
