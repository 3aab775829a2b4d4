"""Conv3DTranspose layers and their weights from Keras files, without Keras.

The files Keras writes are read with nothing but the standard library, NumPy
and h5py (imported only when a file is read; ``pip install "deconv3d[keras]"``).
Keras, TensorFlow and PyTorch are never imported.

Formats, recognised by their content (not their file name):

``.keras`` archive (Keras 3 ``model.save("m.keras")``)
    A zip holding ``config.json`` (the model config) and ``model.weights.h5``
    (layout described in ``_keras3``).
``.weights.h5`` (Keras 3 ``model.save_weights("m.weights.h5")``)
    The same HDF5 layout, without a config.
Legacy HDF5 (``model.save("m.h5")``, Keras 3 or tf.keras / Keras 2)
    Root attribute ``model_config`` (JSON) and one group per top-level layer
    (layout described in ``_legacy``).
Legacy weights (Keras 2 ``model.save_weights("w.h5")``)
    The same layer groups at the file root, without a config.

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

Files are data, from anywhere: nothing in them is executed or imported, and
nothing outside the named file is read.  What a file declares is checked
before anything is expanded or allocated (``_archive`` for the zip members,
``_hdf5`` for links and datasets, ``_model_config`` for JSON depth); a file
that is hostile, truncated or contradicts itself gives a ValueError naming
the part at fault.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from .. import convert
from ..layer import Conv3DTranspose
from . import _sniff
from ._contents import (FORMAT_DESCRIPTIONS, FORMAT_KERAS, FORMAT_LEGACY,
                        FORMAT_LEGACY_WEIGHTS, FORMAT_WEIGHTS, KerasFileContents,
                        KerasLayerEntry, check_name, holds_its_own_config, select_layer,
                        weights_only_message)
from ._keras3 import to_snake_case
from ._model_config import CLASS_NAMES, split_config

__all__ = ["CLASS_NAMES", "FORMAT_DESCRIPTIONS", "FORMAT_KERAS", "FORMAT_LEGACY",
           "FORMAT_LEGACY_WEIGHTS", "FORMAT_WEIGHTS", "KerasFileContents", "KerasLayerEntry",
           "layer_from_keras_file", "load_keras", "read_keras_file", "read_keras_weights",
           "select_layer", "to_snake_case"]


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
    return _sniff.read(path, model_config, "model_config")


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


def load_keras(path, config=None) -> Dict[str, Conv3DTranspose]:
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
    contents = _sniff.read(path, config, "config")
    if not contents.has_config:
        raise ValueError(weights_only_message(contents))
    return {entry.path: _build(contents, entry, None) for entry in contents.layers}


def layer_from_keras_file(path, name=None, config=None) -> Conv3DTranspose:
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
    check_name(name)
    model_config = layer_config = None
    if config is not None:
        model_config, layer_config = split_config(config)
    contents = _sniff.read(path, model_config, "config")
    if layer_config is not None and contents.has_config:
        raise holds_its_own_config(contents.path, contents.format)
    entry = select_layer(contents, name)
    if layer_config is None and entry.config is None:
        raise ValueError(weights_only_message(contents))
    return _build(contents, entry, layer_config)


def _build(contents: KerasFileContents, entry: KerasLayerEntry, layer_config):
    source = f"{contents.path}, layer {entry.path!r}"
    if layer_config is not None:
        config = dict(layer_config)
        config.setdefault("name", entry.name)
    else:
        config = entry.config
    return convert.layer_from_config_and_weights(config, list(entry.weights), source,
                                                 entry.build_config)
