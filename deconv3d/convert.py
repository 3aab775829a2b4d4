"""A built :class:`Conv3DTranspose` from a Keras layer config and its weights.

Every reader (Keras files, live Keras layers, torch modules) ends here, so the
checks that a config and its weights agree are written once.
"""

from __future__ import annotations

import warnings
from typing import Optional, Tuple

import numpy as np

from .layer import Conv3DTranspose

# Settings that only matter for training: a value deconv3d cannot interpret is
# dropped (with a warning) rather than refusing the whole layer.
TRAINING_ONLY = ("kernel_initializer", "bias_initializer", "kernel_regularizer",
                 "bias_regularizer", "activity_regularizer", "kernel_constraint",
                 "bias_constraint")


def layer_from_config_and_weights(config: dict, weights, source: str,
                                  build_config: Optional[dict] = None) -> Conv3DTranspose:
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
    if not isinstance(config, dict):
        raise TypeError(f"{source}: the layer config must be a dict, got {type(config).__name__}")
    arrays = _check_weight_arrays(weights, source)
    kernel = arrays[0]
    bias = arrays[1] if len(arrays) > 1 else None
    cfg = dict(config)
    cfg.setdefault("filters", int(kernel.shape[3]))
    cfg.setdefault("kernel_size", tuple(int(k) for k in kernel.shape[:3]))
    cfg.setdefault("use_bias", bias is not None)
    layer = _from_config(cfg, source)

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


def _from_config(cfg: dict, source: str) -> Conv3DTranspose:
    try:
        return Conv3DTranspose.from_config(cfg)
    except (ValueError, TypeError) as error:
        # from_config reports every failure as a TypeError, like Keras; the cause says what
        cause = error.__cause__
        first_error = cause if isinstance(cause, (ValueError, TypeError)) else error
    # Initializers, regularizers and constraints never change an inference
    # result: drop the ones deconv3d cannot read, and say so.
    unreadable = []
    for key in TRAINING_ONLY:
        if cfg.get(key) is None:
            continue
        try:
            Conv3DTranspose.from_config({"filters": 1, "kernel_size": 1, key: cfg[key]})
        except (ValueError, TypeError):
            unreadable.append(key)
    if unreadable:
        reduced = {k: v for k, v in cfg.items() if k not in unreadable}
        try:
            layer = Conv3DTranspose.from_config(reduced)
        except (ValueError, TypeError):
            pass
        else:
            warnings.warn(f"{source}: ignored training-only settings deconv3d cannot read "
                          f"({', '.join(unreadable)}); they do not change the layer's outputs",
                          UserWarning, stacklevel=3)
            return layer
    raise type(first_error)(f"{source}: cannot build the layer from its config: "
                            f"{first_error}") from None


def _build_shape(layer: Conv3DTranspose, channels: int, build_config) -> tuple:
    """The input shape to build with: Keras's build_config when it fits the kernel."""
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
