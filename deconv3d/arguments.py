"""Normalisation and validation of the constructor arguments, the Keras way.

We accept exactly what Keras 3 accepts and normalise it the same way.  Where
Keras rejects a value we raise the same exception class, but always at
construction time (Keras sometimes only fails when the layer is built) and
with a message that names the argument and the value.  Where Keras would fail
with an unrelated error (AttributeError from ``padding=None``, say) we raise a
TypeError or ValueError instead.
"""

from __future__ import annotations

import numbers
import threading
from typing import Optional, Tuple

import numpy as np

from . import keras_settings

# Layers named so far in this process, per base name (see unique_name).
_name_counts = {}
_name_lock = threading.Lock()

RANK = 3


def standardize_tuple(value, name: str, allow_zero: bool = False) -> Tuple[int, ...]:
    """An int or an iterable of three ints -> a tuple of three Python ints.

    Mirrors ``keras.src.utils.argument_validation.standardize_tuple``: a plain
    ``int`` (or ``bool``) is repeated; anything else must be an iterable of
    length 3 whose elements pass ``int()``.  NumPy integer scalars are not
    accepted on their own (Keras rejects them too), but are fine as elements.
    """
    message = (f"The `{name}` argument must be a tuple of {RANK} integers. "
               f"Received {name}={value!r}")
    if isinstance(value, int):
        items = (value,) * RANK
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise ValueError(message) from None
        if len(items) != RANK:
            raise ValueError(message)
    for item in items:
        try:
            int(item)
        except (ValueError, TypeError, OverflowError):
            raise ValueError(f"{message}, including element {item!r} of type "
                             f"{type(item).__name__}") from None
        if isinstance(item, (str, bytes)):
            # Keras lets "3" through int() and then fails comparing it with 0.
            raise TypeError(f"{message}: element {item!r} is a string, not an integer")
        if not isinstance(item, numbers.Integral):
            # Keras accepts 3.0 here and fails later: with a TypeError when an integral
            # float reaches the strides of its convolution, a ValueError otherwise.
            error = (TypeError if name == "strides" and isinstance(item, numbers.Real)
                     and float(item).is_integer() else ValueError)
            raise error(f"{message}: element {item!r} of type {type(item).__name__} "
                        f"is not an integer")
    result = tuple(int(item) for item in items)
    if max(result) > 2 ** 31:
        raise ValueError(f"{message}: values above 2**31 are not supported")
    bad = sorted({v for v in result if (v < 0 if allow_zero else v <= 0)})
    if bad:
        requirement = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{message}, including values {set(bad)} that do not satisfy "
                         f"`value {requirement}`")
    return result


def standardize_padding(value) -> str:
    """``'valid'`` or ``'same'``, case-insensitive."""
    if isinstance(value, bytes):
        # Keras lower-cases bytes too, then finds them in neither {'valid', 'same'}
        raise ValueError(f"The `padding` argument must be one of {{'valid', 'same'}}. "
                         f"Received: padding={value!r}")
    if not isinstance(value, str):
        raise TypeError(f"The `padding` argument must be the string 'valid' or 'same'. "
                        f"Received: padding={value!r} of type {type(value).__name__}")
    padding = value.lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"The `padding` argument must be one of {{'valid', 'same'}}. "
                         f"Received: padding={value!r}")
    return padding


def standardize_data_format(value) -> str:
    """None -> the keras.json default; otherwise ``str(value).lower()`` must be a format."""
    if value is None:
        return keras_settings.image_data_format()
    data_format = str(value).lower()
    if data_format not in keras_settings.DATA_FORMATS:
        raise ValueError("The `data_format` argument must be one of "
                         "{'channels_first', 'channels_last'}. "
                         f"Received: data_format={data_format}")
    return data_format


def standardize_output_padding(value) -> Optional[Tuple[int, ...]]:
    if value is None:
        return None
    return standardize_tuple(value, "output_padding", allow_zero=True)


def validate_filters(filters) -> int:
    """A strictly positive integer (``True`` counts as 1, as in Keras)."""
    if isinstance(filters, np.ndarray):
        # a 0-d integer array works in Keras; anything else fails converting to a shape
        if filters.ndim == 0 and filters.dtype.kind in "iub":
            filters = filters.item()
        else:
            raise ValueError(f"Invalid value for argument `filters`: {filters!r}. Expected a "
                             f"strictly positive integer.")
    if isinstance(filters, (str, bytes)) or not isinstance(filters, numbers.Real):
        if filters is None:
            raise ValueError("Invalid value for argument `filters`: None. Expected a strictly "
                             "positive integer.")
        raise TypeError(f"Invalid type for argument `filters`: {type(filters).__name__}. "
                        f"Expected a strictly positive integer. Received filters={filters!r}")
    if filters <= 0:
        raise ValueError("Invalid value for argument `filters`. Expected a strictly "
                         f"positive value. Received filters={filters}.")
    if not isinstance(filters, numbers.Integral):
        raise ValueError(f"Invalid value for argument `filters`: {filters!r} is not an integer.")
    return int(filters)


def standardize_crops(value, padding: str, output_padding):
    """Explicit per-axis ``(front, back)`` crops -> a tuple of three pairs of ints, or None.

    A deconv3d extension beside Keras's ``padding`` (for layers from torch and ONNX):
    the output of an axis is the uncropped axis without ``front`` leading and
    ``back`` trailing positions; a negative ``back`` appends zeros (torch's
    ``output_padding``).  It replaces ``padding``/``output_padding``, so those must
    keep their defaults.
    """
    if value is None:
        return None
    message = (f"The `crops` argument must be 3 pairs (front, back) of integers, one per "
               f"spatial axis. Received crops={value!r}")
    try:
        pairs = tuple(tuple(pair) for pair in value)
    except TypeError:
        raise ValueError(message) from None
    if len(pairs) != RANK or any(len(pair) != 2 for pair in pairs) or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool)
            for pair in pairs for v in pair):
        raise ValueError(message)
    pairs = tuple((int(front), int(back)) for front, back in pairs)
    if padding != "valid" or output_padding is not None:
        raise ValueError(f"`crops` replaces `padding` and `output_padding`: give crops="
                         f"{pairs} with neither (received padding={padding!r}, "
                         f"output_padding={output_padding})")
    for axis, (front, back) in enumerate(pairs):
        if front < 0 or max(front, abs(back)) > 2 ** 31:
            raise ValueError(f"{message}: axis {axis} needs 0 <= front <= 2**31 and "
                             f"|back| <= 2**31")
    return pairs


def validate_strides_and_dilation(strides, dilation_rate, output_padding, crops=None) -> None:
    """The cross-argument checks of Keras's BaseConvTranspose, in its order.

    A layer with explicit ``crops`` is not a Keras layer (it comes from torch or
    ONNX, which allow strides and dilations > 1 together): it skips them.
    """
    if crops is not None:
        return
    if output_padding is not None:
        for axis, (op, s) in enumerate(zip(output_padding, strides)):
            if op >= s:
                raise ValueError(
                    "`output_padding` must be strictly less than `strides` for all "
                    f"dimensions. At dimension {axis}, `output_padding` is {op} but "
                    f"`strides` is {s}. Received: output_padding={output_padding}, "
                    f"strides={strides}")
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ValueError("`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                         f"Received: strides={strides} and dilation_rate={dilation_rate}")


def keras2_config(config_dict) -> dict:
    """A copy of a Conv3DTranspose config without the keys tf.keras 2 writes and Keras 3
    has no use for (``groups`` must be 1)."""
    if not isinstance(config_dict, dict):
        raise TypeError(f"from_config expects a dict, got {type(config_dict).__name__}")
    cfg = dict(config_dict)
    groups = cfg.pop("groups", 1)
    if groups != 1:
        raise TypeError(f"Error when deserializing class 'Conv3DTranspose': the config has "
                        f"groups={groups!r}, and grouped transposed convolutions are not "
                        f"supported")
    for key in ("batch_input_shape", "batch_size", "implementation", "dynamic"):
        cfg.pop(key, None)
    return cfg


def unique_name(base: str) -> str:
    """A fresh layer name: Keras names layers ``base``, ``base_1``, ... per process."""
    with _name_lock:
        count = _name_counts.get(base, 0)
        _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def validate_name(name) -> None:
    if not isinstance(name, str) or "/" in name:
        raise ValueError("Argument `name` must be a string and cannot contain character `/`. "
                         f"Received: name={name!r} (of type {type(name).__name__})")


def validate_trainable(trainable) -> bool:
    if not isinstance(trainable, bool):
        raise ValueError(f"Expected `trainable` to be a boolean. Received: trainable="
                         f"{trainable!r} (of type {type(trainable).__name__})")
    return trainable
