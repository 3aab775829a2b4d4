"""Conv3DTranspose's methods that reach other formats: Keras files, live Keras layers, torch, ONNX.

They are attached to the class here rather than written in ``layer.py``:
they build layers through ``convert``, ``keras_io`` and ``frameworks``, which
all import ``layer``, so defining them there would close an import cycle.
The package imports this module, so the methods exist whenever
``deconv3d.Conv3DTranspose`` does.
"""

from __future__ import annotations

from . import frameworks, keras_io, onnx_io
from .layer import Conv3DTranspose


def from_keras_file(cls, path, name=None, config=None) -> Conv3DTranspose:
    """A built layer with the config and weights of a layer in a Keras file.

    Reads ``.keras`` archives, ``.weights.h5`` files and legacy ``.h5``
    files without importing Keras (needs h5py: ``pip install
    "deconv3d[keras]"``).  See :func:`deconv3d.keras_io.layer_from_keras_file`.

    Parameters
    ----------
    path : str or os.PathLike
    name : str, optional
        Layer name or path (``"decoder/up"``); optional when the file has
        exactly one Conv3DTranspose.
    config : dict or str, optional
        Only for weights-only files: the model config, or this layer's config.
    """
    return keras_io.layer_from_keras_file(path, name=name, config=config)


def from_keras_layer(cls, layer) -> Conv3DTranspose:
    """A built copy of a live Keras ``Conv3DTranspose`` (any backend, or tf.keras)."""
    return frameworks.layer_from_keras_layer(layer)


def from_torch(cls, module, name=None) -> Conv3DTranspose:
    """An exactly equivalent channels_first layer for a ``torch.nn.ConvTranspose3d``.

    Any ``groups=1``, zeros-padded module converts: with Keras's padding when one
    gives torch's window, else with explicit ``crops`` (see :mod:`deconv3d.frameworks`).
    """
    return frameworks.layer_from_torch(module, name=name)


def from_onnx(cls, model, name=None) -> Conv3DTranspose:
    """A built channels_first layer equal to a 3-D ``ConvTranspose`` node of an ONNX model.

    ``model`` is an ``.onnx`` path or an ``onnx.ModelProto``; ``name`` the node's name
    (optional when there is one).  See :func:`deconv3d.onnx_io.layer_from_onnx`.
    """
    return onnx_io.layer_from_onnx(model, name=name)


def to_torch(self):
    """A torch module (channels-first) computing what this built layer computes."""
    return frameworks.layer_to_torch(self)


Conv3DTranspose.from_keras_file = classmethod(from_keras_file)
Conv3DTranspose.from_keras_layer = classmethod(from_keras_layer)
Conv3DTranspose.from_torch = classmethod(from_torch)
Conv3DTranspose.from_onnx = classmethod(from_onnx)
Conv3DTranspose.to_torch = to_torch
