"""Conv3DTranspose layers and their weights from Keras files, without Keras.

This module reads the files Keras writes with nothing but the standard library,
NumPy and h5py (imported only when a file is read; ``pip install
"deconv3d[keras]"``).  It never imports Keras, TensorFlow or PyTorch.

Formats, recognised by their content (not their file name):

``.keras`` archive (Keras 3 ``model.save("m.keras")``)
    A zip holding ``config.json`` (the model config) and ``model.weights.h5``.
    In that HDF5 file a model's layers are groups ``layers/<group>``, where
    ``<group>`` is the snake_case class name numbered per model in
    ``model.layers`` order (``conv3d_transpose``, ``conv3d_transpose_1``, ...),
    not the layer's name; since Keras 3.6 the ``vars`` group of each layer
    carries the layer name as attribute ``name``, which is used when present.
    A layer's variables are ``layers/<group>/vars/0`` (kernel) and ``.../1``
    (bias); a nested model's layers are under ``layers/<group>/layers/...``.
``.weights.h5`` (Keras 3 ``model.save_weights("m.weights.h5")``)
    The same HDF5 layout, without a config.
Legacy HDF5 (``model.save("m.h5")``, Keras 3 or tf.keras / Keras 2)
    Root attribute ``model_config`` (JSON) and one group
    ``model_weights/<layer name>`` per top-level layer, whose attribute
    ``weight_names`` lists its datasets in order (``up/kernel`` in Keras 3,
    ``up/kernel:0`` in Keras 2).  A nested model's group lists the weights of
    all its layers.
Legacy weights (Keras 2 ``model.save_weights("w.h5")``)
    The ``model_weights`` layout at the file root, without a config.

Layers are found in Functional and Sequential models, nested to any depth;
a layer is reported under its *path*, the layer names from the top model down
joined by ``/`` (``"up"``, ``"decoder/up"``).  Layers of subclassed models and
layers inside wrappers (``TimeDistributed`` ...) are not found.

Weights-only files carry no architecture.  Their weights are available through
:func:`read_keras_weights`; to build layers from them, supply the config: the
model config (``json.loads(model.to_json())``) to :func:`load_keras`, or the
model config or one layer's config to :func:`layer_from_keras_file`.  A layer
config may be partial: ``filters``, ``kernel_size`` and ``use_bias`` are taken
from the stored weights when missing, and every other argument takes its
Keras default (so ``config={}`` means "Keras defaults", explicitly).  Nothing
is ever guessed silently: without a config these files give a ValueError.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .layer import Conv3DTranspose

CLASS_NAMES = ("Conv3DTranspose", "Convolution3DTranspose")
INSTALL_HINT = 'pip install "deconv3d[keras]"'

FORMAT_KERAS = "keras"                       # .keras zip archive
FORMAT_WEIGHTS = "weights.h5"                # Keras 3 save_weights
FORMAT_LEGACY = "legacy-h5"                  # model.save("m.h5")
FORMAT_LEGACY_WEIGHTS = "legacy-weights-h5"  # Keras 2 save_weights("w.h5")
FORMAT_DESCRIPTIONS = {
    FORMAT_KERAS: "Keras 3 .keras archive",
    FORMAT_WEIGHTS: "Keras 3 weights file (.weights.h5, no config)",
    FORMAT_LEGACY: "legacy Keras HDF5 model file",
    FORMAT_LEGACY_WEIGHTS: "legacy Keras 2 HDF5 weights file (no config)",
}

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_GROUP_BASE = "conv3d_transpose"    # to_snake_case("Conv3DTranspose")
# Settings that only matter for training: a value deconv3d cannot interpret is
# dropped (with a warning) rather than refusing the whole layer.
_TRAINING_ONLY = ("kernel_initializer", "bias_initializer", "kernel_regularizer",
                  "bias_regularizer", "activity_regularizer", "kernel_constraint",
                  "bias_constraint")


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class KerasLayerEntry:
    """One Conv3DTranspose layer found in a file.

    Attributes
    ----------
    path : str
        Layer names from the top model down, joined by ``/``; unique in the file.
    name : str
        The layer's own name (the last part of ``path``).
    config : dict or None
        The layer's Keras config; None when the file holds weights only.
    weights : tuple of numpy.ndarray
        ``(kernel,)`` or ``(kernel, bias)``, kernel in the Keras layout
        ``(kd, kh, kw, filters, in_channels)``.
    location : str
        Where the weights are in the HDF5 file.
    build_config : dict or None
        Keras's ``build_config`` (``{"input_shape": [...]}``) when the file has it.
    """

    path: str
    name: str
    config: Optional[dict]
    weights: Tuple[np.ndarray, ...]
    location: str
    build_config: Optional[dict] = None

    @property
    def kernel_shape(self) -> Tuple[int, ...]:
        return tuple(self.weights[0].shape)


@dataclass(frozen=True)
class KerasFileContents:
    """What :func:`read_keras_file` found in a file.

    Attributes
    ----------
    path : str
        The file, as given.
    format : str
        One of ``"keras"``, ``"weights.h5"``, ``"legacy-h5"``, ``"legacy-weights-h5"``.
    has_config : bool
        Whether the layers' configs are known (from the file or a supplied model config).
    layers : tuple of KerasLayerEntry
        The Conv3DTranspose layers, in model order.  For legacy weights files
        without a config these are the layers whose weights look like a 3-D
        convolution kernel: they may be Conv3D layers too.
    other_layers : dict
        Path -> class name (snake_case when read from HDF5 group names,
        ``"unknown"`` when the file does not say) of every other layer.
    keras_version : str or None
    """

    path: str
    format: str
    has_config: bool
    layers: Tuple[KerasLayerEntry, ...]
    other_layers: Dict[str, str] = field(default_factory=dict)
    keras_version: Optional[str] = None

    @property
    def description(self) -> str:
        return FORMAT_DESCRIPTIONS[self.format]


# ---------------------------------------------------------------------- public API
def read_keras_file(path, model_config=None) -> KerasFileContents:
    """Find every Conv3DTranspose layer in a Keras file, with its config and weights.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` archive, a ``.weights.h5`` file, or a legacy ``.h5`` model
        or weights file (recognised by content).
    model_config : dict or str, optional
        For weights-only files: the model's config, as ``json.loads(model.to_json())``
        (``{"class_name": ..., "config": {...}}``), ``model.get_config()``, or
        that JSON as a string.  Refused for files that hold their own config.

    Returns
    -------
    KerasFileContents

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ImportError
        h5py is not installed.
    ValueError
        The file is not a Keras file, is corrupt or truncated, or does not
        match ``model_config``.
    TypeError
        ``path`` or ``model_config`` has the wrong type.
    """
    return _read_file(path, model_config, "model_config")


def _read_file(path, model_config, argument: str) -> KerasFileContents:
    path = _check_path(path)
    supplied = _as_model_config(model_config, argument) if model_config is not None else None
    if _sniff(path) == "zip":
        return _read_keras_archive(path, supplied)
    return _read_hdf5_file(path, supplied)


def read_keras_weights(path) -> Dict[str, List[np.ndarray]]:
    """The weights of every Conv3DTranspose layer in a file, keyed by layer path.

    Works for every format, including weights-only files (for legacy Keras 2
    weights files: every layer whose weights look like a 3-D convolution kernel).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``{path: [kernel, bias]}`` (``[kernel]`` without bias), kernel in the
        Keras layout ``(kd, kh, kw, filters, in_channels)``.
    """
    contents = read_keras_file(path)
    return {entry.path: [w.copy() for w in entry.weights] for entry in contents.layers}


def load_keras(path, config=None) -> Dict[str, "Conv3DTranspose"]:
    """Every Conv3DTranspose layer of a Keras file, built and ready to call.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` archive, a legacy ``.h5`` model file, or (with ``config``)
        a ``.weights.h5`` / legacy weights file.
    config : dict or str, optional
        Only for weights-only files: the model config (see :func:`read_keras_file`).

    Returns
    -------
    dict
        Layer path (``"up"``, ``"decoder/up"``) -> :class:`deconv3d.Conv3DTranspose`,
        in model order.  Every layer is validated and built before anything is
        returned; on any error nothing is returned.

    Raises
    ------
    FileNotFoundError, ImportError, ValueError, TypeError
        As :func:`read_keras_file`; ValueError also for a weights-only file
        without ``config``, and for a config deconv3d cannot build.
    """
    contents = _read_file(path, config, "config")
    if not contents.has_config:
        raise ValueError(_weights_only_message(contents))
    return {entry.path: _build_entry(contents, entry, None) for entry in contents.layers}


def layer_from_keras_file(path, name=None, config=None) -> "Conv3DTranspose":
    """One Conv3DTranspose layer of a Keras file, built and ready to call.

    Parameters
    ----------
    path : str or os.PathLike
    name : str, optional
        The layer's path (``"decoder/up"``) or, when unambiguous, its name
        (``"up"``).  May be omitted when the file has exactly one Conv3DTranspose.
    config : dict or str, optional
        Only for weights-only files: the model config, or the config of this
        one layer (``keras_layer.get_config()``, possibly partial:
        ``filters``, ``kernel_size`` and ``use_bias`` come from the weights
        when missing, the rest takes Keras's defaults).

    Returns
    -------
    deconv3d.Conv3DTranspose

    Raises
    ------
    FileNotFoundError, ImportError, ValueError, TypeError
        As :func:`read_keras_file`; ValueError also when no Conv3DTranspose has
        that name (the message lists those that exist), when the name belongs
        to a layer of another type, or when a weights-only file gets no config.
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"`name` must be a layer name (str) or None, got {type(name).__name__}")
    model_config = layer_config = None
    if config is not None:
        model_config, layer_config = _split_config(config)
    contents = _read_file(path, model_config, "config")
    if layer_config is not None and contents.has_config:
        raise ValueError(f"{contents.path} is a {contents.description} and holds its own "
                         f"config; `config` is only for weights-only files")
    entry = select_layer(contents, name)
    if layer_config is None and entry.config is None:
        raise ValueError(_weights_only_message(contents))
    return _build_entry(contents, entry, layer_config)


def select_layer(contents: KerasFileContents, name=None) -> KerasLayerEntry:
    """The entry of ``contents`` called ``name`` (a path, or a unique layer name).

    Parameters
    ----------
    contents : KerasFileContents
    name : str, optional
        None selects the only Conv3DTranspose of the file.

    Returns
    -------
    KerasLayerEntry

    Raises
    ------
    ValueError
        No such layer (the message lists the layers that exist), an ambiguous
        name, a layer of another type, or ``name=None`` with zero or several layers.
    """
    entries = contents.layers
    available = ", ".join(repr(e.path) for e in entries) or "none"
    if name is None:
        if len(entries) == 1:
            return entries[0]
        if not entries:
            raise ValueError(f"{contents.path} has no Conv3DTranspose layer"
                             f"{_others_suffix(contents)}")
        raise ValueError(f"{contents.path} has {len(entries)} Conv3DTranspose layers "
                         f"({available}); choose one by name (`name=`, or --layer)")
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a layer name (str) or None, got {type(name).__name__}")
    for entry in entries:
        if entry.path == name:
            return entry
    matches = [e for e in entries if e.name == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"{contents.path} has several Conv3DTranspose layers named {name!r} "
                         f"({', '.join(repr(e.path) for e in matches)}); pass the full path")
    others = {p: c for p, c in contents.other_layers.items()
              if p == name or p.rsplit("/", 1)[-1] == name}
    if others:
        what = ", ".join(f"{p!r} is a {c}" for p, c in others.items())
        raise ValueError(f"Layer {name!r} of {contents.path} is not a Conv3DTranspose "
                         f"({what}); Conv3DTranspose layers: {available}")
    raise ValueError(f"{contents.path} has no layer named {name!r}; Conv3DTranspose layers: "
                     f"{available}{_others_suffix(contents)}")


def layer_from_config_and_weights(config: dict, weights, source: str,
                                  build_config: Optional[dict] = None) -> "Conv3DTranspose":
    """Build a :class:`deconv3d.Conv3DTranspose` from a Keras config and its weights.

    Everything is checked before the layer is returned: the config is read by
    ``Conv3DTranspose.from_config``, the kernel and bias shapes must agree with
    it, and the weights are installed with ``build`` and ``set_weights``.

    Parameters
    ----------
    config : dict
        A Keras 3 or tf.keras layer config.  ``filters``, ``kernel_size`` and
        ``use_bias`` are filled in from the weights when missing.  Training-only
        settings deconv3d cannot interpret (custom initializers, regularizers,
        constraints) are dropped with a UserWarning; they do not affect outputs.
    weights : sequence of array_like
        ``[kernel]`` or ``[kernel, bias]``, kernel ``(kd, kh, kw, filters, in_channels)``.
    source : str
        Names the layer in error messages (for example ``"m.keras, layer 'up'"``).
    build_config : dict, optional
        Keras's ``{"input_shape": [...]}``, used for ``build`` when consistent.

    Returns
    -------
    deconv3d.Conv3DTranspose
    """
    from .layer import Conv3DTranspose  # noqa: F811  (late: layer.py may import this module)

    if not isinstance(config, dict):
        raise TypeError(f"{source}: the layer config must be a dict, got {type(config).__name__}")
    arrays = _check_weight_arrays(weights, source)
    kernel = arrays[0]
    bias = arrays[1] if len(arrays) > 1 else None
    cfg = dict(config)
    cfg.setdefault("filters", int(kernel.shape[3]))
    cfg.setdefault("kernel_size", tuple(int(k) for k in kernel.shape[:3]))
    cfg.setdefault("use_bias", bias is not None)
    layer = _from_config(Conv3DTranspose, cfg, source)

    if tuple(kernel.shape[:3]) != layer.kernel_size or kernel.shape[3] != layer.filters:
        raise ValueError(f"{source}: the stored kernel has shape {kernel.shape}, which does not "
                         f"match the config (kernel_size={layer.kernel_size}, "
                         f"filters={layer.filters}); expected (*kernel_size, filters, "
                         f"in_channels)")
    if bool(layer.use_bias) != (bias is not None):
        raise ValueError(f"{source}: the config says use_bias={layer.use_bias!r} but the file "
                         f"stores {'a' if bias is not None else 'no'} bias")
    if bias is not None and bias.shape != (layer.filters,):
        raise ValueError(f"{source}: the stored bias has shape {bias.shape}, expected "
                         f"({layer.filters},)")
    layer.build(_build_shape(layer, int(kernel.shape[4]), build_config))
    layer.set_weights(list(arrays))
    return layer


# ---------------------------------------------------------------------- helpers: input
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


def _h5py():
    try:
        import h5py
    except ImportError as error:
        raise ImportError(f"Reading Keras files needs h5py, which is not installed; install "
                          f"it with: {INSTALL_HINT}") from error
    return h5py


def _as_model_config(config, argument: str) -> dict:
    """A model config in the ``{"class_name", "config"}`` form."""
    if isinstance(config, (str, bytes)):
        try:
            config = json.loads(config)
        except ValueError as error:
            raise ValueError(f"`{argument}` is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise TypeError(f"`{argument}` must be a model config (dict or JSON string), got "
                        f"{type(config).__name__}")
    if "class_name" in config and "config" in config:
        if _model_layers(config.get("config")) is None:
            raise ValueError(f"`{argument}` is a {config['class_name']!r} config without a "
                             f"list of layers; expected a Functional or Sequential model config")
        return config
    if isinstance(config.get("layers"), list):
        return {"class_name": "Functional", "config": config}
    raise ValueError(f"`{argument}` is not a model config: expected "
                     f"json.loads(model.to_json()) or model.get_config()")


def _split_config(config):
    """(model_config, layer_config): exactly one is not None."""
    if isinstance(config, (str, bytes)):
        try:
            config = json.loads(config)
        except ValueError as error:
            raise ValueError(f"`config` is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise TypeError(f"`config` must be a dict or a JSON string, got {type(config).__name__}")
    if "class_name" in config and "config" in config:
        if config["class_name"] in CLASS_NAMES:
            return None, dict(config["config"])   # a serialised layer
        return _as_model_config(config, "config"), None
    if isinstance(config.get("layers"), list):
        return _as_model_config(config, "config"), None
    return None, dict(config)


def _model_layers(model_cfg):
    """The layer list of a model's inner config, or None if it has none."""
    if isinstance(model_cfg, list):          # very old Keras 2 Sequential
        return model_cfg
    if isinstance(model_cfg, dict) and isinstance(model_cfg.get("layers"), list):
        return model_cfg["layers"]
    return None


def _layer_entries(model_config: dict):
    """(entry, class name, config, layer name) for each well-formed layer of a model config."""
    for entry in _model_layers(model_config.get("config")) or []:
        if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
            cfg = entry["config"]
            yield entry, entry.get("class_name", ""), cfg, cfg.get("name") or entry.get("name") or ""


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)


def _text_list(value) -> List[str]:
    if value is None:
        return []
    return [_text(v) for v in np.asarray(value).ravel() if not isinstance(v, float)]


def to_snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: how ``model.weights.h5`` names layer groups."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


# ---------------------------------------------------------------------- .keras archives
def _read_keras_archive(path: str, supplied) -> KerasFileContents:
    if supplied is not None:
        raise ValueError(f"{path} is a {FORMAT_DESCRIPTIONS[FORMAT_KERAS]} and holds its own "
                         f"config; `config` is only for weights-only files")
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
    if not isinstance(model_config, dict) or _model_layers(model_config.get("config")) is None:
        cls = model_config.get("class_name") if isinstance(model_config, dict) else None
        raise ValueError(f"{path}: the model in the .keras archive ({cls!r}) has no list of "
                         f"layers in its config; only Functional and Sequential models are "
                         f"supported")
    h5py = _h5py()
    try:
        with h5py.File(io.BytesIO(raw_weights), "r") as weights:
            layers, others = _walk_keras3(model_config, weights, "", path)
    except OSError as error:
        raise ValueError(f"{path}: model.weights.h5 in the .keras archive is corrupt or "
                         f"truncated: {error}") from None
    return KerasFileContents(path, FORMAT_KERAS, True, tuple(layers), others,
                             version if isinstance(version, str) else None)


# ---------------------------------------------------------------------- HDF5 files
def _read_hdf5_file(path: str, supplied) -> KerasFileContents:
    h5py = _h5py()
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path} is a corrupt or truncated HDF5 file: {error}") from None
    try:
        with handle:
            return _read_hdf5(handle, path, supplied)
    except OSError as error:
        raise ValueError(f"{path} is a corrupt or truncated HDF5 file: {error}") from None


def _read_hdf5(handle, path: str, supplied) -> KerasFileContents:
    attrs = handle.attrs
    version = _text(attrs["keras_version"]) if "keras_version" in attrs else None
    if "model_config" in attrs or "model_weights" in handle:
        if supplied is not None:
            raise ValueError(f"{path} is a {FORMAT_DESCRIPTIONS[FORMAT_LEGACY]} and holds its own "
                             f"config; `config` is only for weights-only files")
        if "model_config" not in attrs or "model_weights" not in handle:
            raise ValueError(f"{path}: legacy Keras HDF5 file without "
                             f"{'model_config' if 'model_config' not in attrs else 'model_weights'}"
                             f" (corrupt file?)")
        try:
            model_config = json.loads(_text(attrs["model_config"]))
        except ValueError as error:
            raise ValueError(f"{path}: the model_config attribute is not valid JSON: "
                             f"{error}") from None
        if not isinstance(model_config, dict) or _model_layers(model_config.get("config")) is None:
            raise ValueError(f"{path}: the model in this legacy HDF5 file has no list of layers "
                             f"in its config; only Functional and Sequential models are supported")
        layers, others = _walk_legacy(model_config, handle["model_weights"], path)
        return KerasFileContents(path, FORMAT_LEGACY, True, tuple(layers), others, version)
    if "layer_names" in attrs:
        root = handle
        if supplied is not None:
            layers, others = _walk_legacy(supplied, root, path)
            return KerasFileContents(path, FORMAT_LEGACY_WEIGHTS, True, tuple(layers), others,
                                     version)
        layers, others = _scan_legacy_weights(root, path)
        return KerasFileContents(path, FORMAT_LEGACY_WEIGHTS, False, tuple(layers), others,
                                 version)
    if "layers" in handle or "vars" in handle:
        if supplied is not None:
            layers, others = _walk_keras3(supplied, handle, "", path)
            return KerasFileContents(path, FORMAT_WEIGHTS, True, tuple(layers), others, version)
        layers, others = _scan_keras3_weights(handle, "", path)
        return KerasFileContents(path, FORMAT_WEIGHTS, False, tuple(layers), others, version)
    keys = ", ".join(list(handle.keys())[:10]) or "none"
    raise ValueError(f"{path} is an HDF5 file but not a Keras model or weights file (no "
                     f"model_config, model_weights, layer_names or layers; top-level "
                     f"entries: {keys})")


# ---------------------------------------------------------------------- Keras 3 layout
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
            label = _text(variables.attrs["name"])
        found[key] = (group, label)
    return found


def _keras3_weights(group, location: str, path: str):
    variables = group.get("vars")
    if variables is None or not hasattr(variables, "keys"):
        raise ValueError(f"{path}: no weights at {location}/vars (corrupt or incomplete file?)")
    keys = sorted(variables.keys(), key=_natural_key)
    if keys not in (["0"], ["0", "1"]):
        raise ValueError(f"{path}: expected a kernel (and a bias) at {location}/vars, found "
                         f"{keys or 'nothing'}")
    return tuple(np.asarray(variables[k][()]) for k in keys)


def _walk_keras3(model_config: dict, model_group, prefix: str, path: str):
    """Conv3DTranspose entries of a model config, weights from the Keras 3 layout."""
    layers, others = [], {}
    groups = _layer_groups(model_group)
    by_label = {}
    for key, (_, label) in groups.items():
        if label is not None:
            by_label.setdefault(label, []).append(key)
    used = {}
    location_prefix = model_group.name.rstrip("/")
    for entry, cls, cfg, name in _layer_entries(model_config):
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
            weights = _keras3_weights(group, location, path)
            layers.append(KerasLayerEntry(layer_path, name, cfg, weights, location + "/vars",
                                          entry.get("build_config")))
        elif _model_layers(cfg) is not None:
            if group is None:
                if any(e.get("class_name") in CLASS_NAMES for e in _iter_layer_configs(cfg)):
                    raise ValueError(f"{path}: no weights for nested model {layer_path!r} "
                                     f"(expected HDF5 group {location})")
                others[layer_path] = cls
                continue
            inner, inner_others = _walk_keras3(entry, group, layer_path + "/", path)
            layers.extend(inner)
            others[layer_path] = cls
            others.update(inner_others)
        else:
            others[layer_path] = cls
    return layers, others


def _iter_layer_configs(model_cfg):
    for entry in _model_layers(model_cfg) or []:
        if isinstance(entry, dict):
            yield entry
            if isinstance(entry.get("config"), dict) and _model_layers(entry["config"]):
                yield from _iter_layer_configs(entry["config"])


def _unique_name(base: str, used: dict) -> str:
    # saving_lib._get_unique_name
    if base in used:
        used[base] += 1
        return f"{base}_{used[base]}"
    used[base] = 0
    return base


def _scan_keras3_weights(model_group, prefix: str, path: str):
    """Weights-only Keras 3 file: Conv3DTranspose groups found by their group names."""
    layers, others = [], {}
    location_prefix = model_group.name.rstrip("/")
    for key, (group, label) in _layer_groups(model_group).items():
        name = label if label is not None else key
        layer_path = f"{prefix}{name}"
        location = f"{location_prefix}/layers/{key}"
        base = re.sub(r"_\d+$", "", key)
        if base == _GROUP_BASE:
            weights = _keras3_weights(group, location, path)
            if weights[0].ndim != 5:
                raise ValueError(f"{path}: {location}/vars/0 has shape {weights[0].shape}, "
                                 f"not a 5-D Conv3DTranspose kernel")
            layers.append(KerasLayerEntry(layer_path, name, None, weights, location + "/vars"))
        elif "layers" in group:
            inner, inner_others = _scan_keras3_weights(group, layer_path + "/", path)
            layers.extend(inner)
            others[layer_path] = base
            others.update(inner_others)
        else:
            others[layer_path] = base
    return layers, others


# ---------------------------------------------------------------------- legacy layout
def _weight_names(group, location: str, path: str) -> List[str]:
    if "weight_names" not in group.attrs:
        raise ValueError(f"{path}: the legacy layer group {location} has no weight_names "
                         f"attribute (corrupt file?)")
    return _text_list(group.attrs["weight_names"])


def _read_named(group, names, location: str, path: str):
    arrays = []
    for weight_name in names:
        if weight_name not in group:
            raise ValueError(f"{path}: weight {weight_name!r} listed in {location} is missing "
                             f"(corrupt file?)")
        arrays.append(np.asarray(group[weight_name][()]))
    return tuple(arrays)


def _parse_weight_name(weight_name: str):
    parts = weight_name.split("/")
    parts[-1] = re.sub(r":\d+$", "", parts[-1])
    return parts


def _walk_legacy(model_config: dict, root, path: str):
    """Conv3DTranspose entries of a model config, weights from the legacy layout."""
    layers, others = [], {}
    location_prefix = root.name.rstrip("/")
    for entry, cls, cfg, name in _layer_entries(model_config):
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
            layers.append(KerasLayerEntry(name, name, cfg, weights, location,
                                          entry.get("build_config")))
        elif _model_layers(cfg) is not None:
            others[name] = cls
            nested = list(_nested_conv_configs(cfg, [name]))
            for chain, inner_entry in nested:
                if name not in root:
                    raise ValueError(f"{path}: no weights for nested model {name!r} (expected "
                                     f"HDF5 group {location})")
                group = root[name]
                names = _weight_names(group, location, path)
                chosen = _match_nested_weights(names, chain, path, location)
                weights = _read_named(group, chosen, location, path)
                inner_cfg = inner_entry["config"]
                layers.append(KerasLayerEntry("/".join(chain), chain[-1], inner_cfg, weights,
                                              location, inner_entry.get("build_config")))
            for chain, cls_name in _nested_others(cfg, [name]):
                others["/".join(chain)] = cls_name
        else:
            others[name] = cls
    return layers, others


def _nested_conv_configs(model_cfg, chain):
    for entry in _model_layers(model_cfg) or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            continue
        cfg = entry["config"]
        name = cfg.get("name") or entry.get("name") or ""
        if entry.get("class_name") in CLASS_NAMES:
            yield chain + [name], entry
        elif _model_layers(cfg) is not None:
            yield from _nested_conv_configs(cfg, chain + [name])


def _nested_others(model_cfg, chain):
    for entry in _model_layers(model_cfg) or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            continue
        cls = entry.get("class_name", "")
        cfg = entry["config"]
        name = cfg.get("name") or entry.get("name") or ""
        if cls in CLASS_NAMES or cls == "InputLayer":
            continue
        yield chain + [name], cls
        if _model_layers(cfg) is not None:
            yield from _nested_others(cfg, chain + [name])


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


def _scan_legacy_weights(root, path: str):
    """Legacy weights-only file: layers whose weights look like a 3-D conv kernel (+ bias)."""
    layers, others = [], {}
    location_prefix = root.name.rstrip("/")
    for top in _text_list(root.attrs["layer_names"]):
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
            weights = _read_named(group, [n for _, n in items], location, path)
            if weights[0].ndim != 5 or (len(weights) == 2 and weights[1].ndim != 1):
                continue
            layer_path = top if owner == top else f"{top}/{owner}"
            layers.append(KerasLayerEntry(layer_path, owner, None, weights, location))
            found_any = True
        if not found_any or any(owner != top for owner in by_layer):
            others.setdefault(top, "unknown")
    return layers, others


# ---------------------------------------------------------------------- building
def _check_weight_arrays(weights, source: str) -> Tuple[np.ndarray, ...]:
    if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"{source}: weights must be a list [kernel] or [kernel, bias], got "
                        f"{type(weights).__name__}")
    if len(weights) not in (1, 2):
        raise ValueError(f"{source}: expected [kernel] or [kernel, bias], got {len(weights)} "
                         f"arrays")
    arrays = tuple(np.asarray(w) for w in weights)
    for label, array in zip(("kernel", "bias"), arrays):
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{source}: the {label} has dtype {array.dtype}, not a real number "
                            f"type")
    if arrays[0].ndim != 5:
        raise ValueError(f"{source}: the kernel has shape {arrays[0].shape}; a Conv3DTranspose "
                         f"kernel is 5-D (kd, kh, kw, filters, in_channels)")
    if len(arrays) == 2 and arrays[1].ndim != 1:
        raise ValueError(f"{source}: the bias has shape {arrays[1].shape}; expected (filters,)")
    return arrays


def _from_config(cls, cfg: dict, source: str):
    try:
        return cls.from_config(cfg)
    except (ValueError, TypeError) as error:
        # from_config reports every failure as a TypeError, like Keras; the cause says what
        cause = error.__cause__
        first_error = cause if isinstance(cause, (ValueError, TypeError)) else error
    # Initializers, regularizers and constraints never change an inference
    # result: drop the ones deconv3d cannot read, and say so.
    unreadable = []
    for key in _TRAINING_ONLY:
        if cfg.get(key) is None:
            continue
        try:
            cls.from_config({"filters": 1, "kernel_size": 1, key: cfg[key]})
        except (ValueError, TypeError):
            unreadable.append(key)
    if unreadable:
        reduced = {k: v for k, v in cfg.items() if k not in unreadable}
        try:
            layer = cls.from_config(reduced)
        except (ValueError, TypeError):
            pass
        else:
            warnings.warn(f"{source}: ignored training-only settings deconv3d cannot read "
                          f"({', '.join(unreadable)}); they do not change the layer's outputs",
                          UserWarning, stacklevel=3)
            return layer
    raise type(first_error)(f"{source}: cannot build the layer from its config: "
                            f"{first_error}") from None


def _build_shape(layer, channels: int, build_config) -> tuple:
    channel_axis = 4 if layer.data_format == "channels_last" else 1
    if isinstance(build_config, dict):
        shape = build_config.get("input_shape")
        if (isinstance(shape, (list, tuple)) and len(shape) == 5
                and shape[channel_axis] == channels
                and all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0)
                        for d in shape)):
            return tuple(shape)
    shape = [None] * 5
    shape[channel_axis] = channels
    return tuple(shape)


def _build_entry(contents: KerasFileContents, entry: KerasLayerEntry, layer_config):
    source = f"{contents.path}, layer {entry.path!r}"
    if layer_config is not None:
        config = dict(layer_config)
        config.setdefault("name", entry.name)
    else:
        config = entry.config
    return layer_from_config_and_weights(config, list(entry.weights), source,
                                         entry.build_config)


def _others_suffix(contents: KerasFileContents) -> str:
    if not contents.other_layers:
        return ""
    listed = ", ".join(f"{p!r} ({c})" for p, c in list(contents.other_layers.items())[:20])
    more = "" if len(contents.other_layers) <= 20 else ", ..."
    return f"; other layers: {listed}{more}"


def _weights_only_message(contents: KerasFileContents) -> str:
    listed = ", ".join(f"{e.path!r} kernel {e.kernel_shape}" for e in contents.layers) or "none"
    return (f"{contents.path} is a {contents.description}: it holds weights but no layer "
            f"configs (strides, padding, ...), which cannot be guessed. Pass `config` "
            f"(--config): the model config (json.loads(model.to_json())), or for one layer "
            f"its layer config (config={{}} for Keras defaults). Layers found: {listed}")
