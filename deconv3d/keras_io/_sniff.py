"""Which Keras format a path holds, told by its content (never by its file name),
and the reader each format goes to."""

from __future__ import annotations

import os

from . import _hdf5, _keras3, _legacy
from ._contents import (FORMAT_LEGACY, FORMAT_LEGACY_WEIGHTS, FORMAT_WEIGHTS, KerasFileContents,
                        holds_its_own_config)
from ._model_config import as_model_config, model_layers, parse_json

_ZIP_MAGIC = b"PK\x03\x04"

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def read(path, model_config, argument: str) -> KerasFileContents:
    """Read any Keras file; ``model_config`` (named ``argument`` in errors) is for weights-only
    files, else None."""
    path = _check_path(path)
    supplied = as_model_config(model_config, argument) if model_config is not None else None
    if _sniff(path) == "zip":
        return _keras3.read_archive(path, supplied)
    h5py = _hdf5.h5py()
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path} is a corrupt or truncated HDF5 file: {error}") from None
    try:
        with handle:
            _hdf5.check_links(handle, path)
            return _read_hdf5(handle, path, supplied)
    except _hdf5.UNREADABLE as error:
        raise ValueError(f"{path} is a corrupt or truncated HDF5 file: {error}") from None


def _check_path(path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a file path (str or os.PathLike), got "
                        f"{type(path).__name__}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such Keras file: {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a Keras file (TensorFlow SavedModel "
                         f"directories are not supported; save with model.save('m.keras'))")
    return path


def _sniff(path: str) -> str:
    """'zip' or 'hdf5' from the file's first bytes; ValueError for anything else."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            if head == _ZIP_MAGIC:
                return "zip"
            # HDF5's signature is at offset 0, or after a user block of 512, 1024, ... bytes
            offset = 0
            while True:
                handle.seek(offset)
                chunk = handle.read(8)
                if chunk == _HDF5_MAGIC:
                    return "hdf5"
                if len(chunk) < 8:
                    break
                offset = 512 if offset == 0 else offset * 2
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error}") from None
    raise ValueError(f"{path} is not a Keras file: it is neither a .keras archive (zip) nor an "
                     f"HDF5 file (.h5 / .weights.h5)")


def _read_hdf5(handle, path: str, supplied) -> KerasFileContents:
    """Find the layers, then read their weights (each checked against its config first)."""
    version = (_hdf5.text(_hdf5.attribute(handle, "keras_version", "/", path))
               if "keras_version" in handle.attrs else None)
    file_format, has_config, layers, others = _walk_hdf5(handle, path, supplied)
    return KerasFileContents(path, file_format, has_config, _hdf5.read_weights(layers, path),
                             others, version)


def _walk_hdf5(handle, path: str, supplied):
    """``(format, has_config, entries, other layers)``, the HDF5 layouts told apart by their
    top-level attributes and groups; the entries' weights are not read yet."""
    attrs = handle.attrs
    if "model_config" in attrs or "model_weights" in handle:
        if supplied is not None:
            raise holds_its_own_config(path, FORMAT_LEGACY)
        if "model_config" not in attrs or "model_weights" not in handle:
            raise ValueError(f"{path}: legacy Keras HDF5 file without "
                             f"{'model_config' if 'model_config' not in attrs else 'model_weights'}"
                             f" (corrupt file?)")
        model_config = parse_json(_hdf5.text(_hdf5.attribute(handle, "model_config", "/", path)),
                                  f"{path}: the model_config attribute")
        if not isinstance(model_config, dict) or model_layers(model_config.get("config")) is None:
            raise ValueError(f"{path}: the model in this legacy HDF5 file has no list of layers "
                             f"in its config; only Functional and Sequential models are supported")
        layers, others = _legacy.walk_model(model_config["config"], handle["model_weights"], path)
        return FORMAT_LEGACY, True, layers, others
    if "layer_names" in attrs:
        if supplied is not None:
            layers, others = _legacy.walk_model(supplied["config"], handle, path)
            return FORMAT_LEGACY_WEIGHTS, True, layers, others
        layers, others = _legacy.scan_weights(handle, path)
        return FORMAT_LEGACY_WEIGHTS, False, layers, others
    if "layers" in handle or "vars" in handle:
        if supplied is not None:
            layers, others = _keras3.walk_model(supplied["config"], handle, "", path)
            return FORMAT_WEIGHTS, True, layers, others
        layers, others = _keras3.scan_weights(handle, "", path)
        return FORMAT_WEIGHTS, False, layers, others
    keys = ", ".join(list(handle.keys())[:10]) or "none"
    raise ValueError(f"{path} is an HDF5 file but not a Keras model or weights file (no "
                     f"model_config, model_weights, layer_names or layers; top-level "
                     f"entries: {keys})")
