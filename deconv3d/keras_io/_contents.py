"""What reading a Keras file finds: the layer entries, the file's contents, and the
messages about them (which layer was meant, which format needs a config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

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
    """What :func:`deconv3d.read_keras_file` found in a file.

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


def check_name(name) -> None:
    """TypeError unless ``name`` is a str or None."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"`name` must be a layer name (str) or None, got {type(name).__name__}")


def holds_its_own_config(path: str, file_format: str) -> ValueError:
    """The error for a ``config`` given with a file that has one."""
    return ValueError(f"{path} is a {FORMAT_DESCRIPTIONS[file_format]} and holds its own "
                      f"config; `config` is only for weights-only files")


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
    check_name(name)
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


def _others_suffix(contents: KerasFileContents) -> str:
    if not contents.other_layers:
        return ""
    listed = ", ".join(f"{p!r} ({c})" for p, c in list(contents.other_layers.items())[:20])
    more = "" if len(contents.other_layers) <= 20 else ", ..."
    return f"; other layers: {listed}{more}"


def weights_only_message(contents: KerasFileContents) -> str:
    """Why a weights-only file cannot give layers, and what to pass instead."""
    listed = ", ".join(f"{e.path!r} kernel {e.kernel_shape}" for e in contents.layers) or "none"
    return (f"{contents.path} is a {contents.description}: it holds weights but no layer "
            f"configs (strides, padding, ...), which cannot be guessed. Pass `config` "
            f"(--config): the model config (json.loads(model.to_json())), or for one layer "
            f"its layer config (config={{}} for Keras defaults). Layers found: {listed}")
