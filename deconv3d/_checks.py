"""Argument checks the layer runs before any array is allocated or any C code runs."""

from __future__ import annotations

import math
import numbers
import os
from typing import Optional

import numpy as np


def physical_memory_bytes() -> Optional[int]:
    """This machine's RAM, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_allocation(shape, itemsize: int, what: str) -> None:
    """Refuse, before allocating, an array that cannot exist or cannot fit in memory."""
    count = math.prod(shape)
    nbytes = count * itemsize
    limit = physical_memory_bytes()
    # an empty array whose other axes are absurd still breaks index arithmetic
    if (count >= 2 ** 62 or math.prod(max(int(n), 1) for n in shape) * itemsize >= 2 ** 60
            or (limit is not None and nbytes > limit)):
        raise ValueError(f"The {what} would have shape {tuple(shape)} ({nbytes / 2**30:.1f} GiB), "
                         f"more than this machine's memory"
                         f"{f' ({limit / 2**30:.1f} GiB)' if limit else ''}")


def truth(value, name: str) -> bool:
    """Python truthiness, with an error naming the argument when there is none."""
    try:
        return bool(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"`{name}` must be True or False, got {value!r}: {error}") from None


def as_shape(input_shape, name: str) -> tuple:
    """A rank-5 shape of ints and Nones."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"`{name}` must be a tuple of 5 dimensions, got {input_shape!r}") from None
    if len(shape) != 5:
        raise ValueError(f"Conv3DTranspose expects rank-5 inputs; got `{name}`={shape!r}")
    dims = []
    for dim in shape:
        if dim is None:
            dims.append(None)
        elif isinstance(dim, numbers.Integral) and not isinstance(dim, bool) and dim >= 0:
            dims.append(int(dim))
        else:
            raise ValueError(f"`{name}` dimensions must be non-negative ints or None; "
                             f"got {shape!r}")
    return tuple(dims)


def as_weight(value, shape, label: str, layer_name: str) -> np.ndarray:
    """``value`` as a numeric array of exactly ``shape`` (the ``label`` weight of a layer)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"Layer {layer_name}: the {label} weight cannot be read as an "
                         f"array: {error}") from None
    if array.dtype.kind not in "fiubc":
        raise ValueError(f"Layer {layer_name}: the {label} weight must be numeric, got an "
                         f"array of dtype {array.dtype}")
    if array.shape != tuple(shape):
        raise ValueError(f"Layer {layer_name} weight shape {tuple(shape)} is not compatible "
                         f"with provided weight shape {array.shape}.")
    return array
