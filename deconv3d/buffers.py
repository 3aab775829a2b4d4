"""A small recycling allocator for output arrays.

Every call returns a new array.  Allocating a large one from the operating
system costs more than people expect: the kernel zeroes each fresh page on
first touch (about 25 ms for a 268 MB U-Net output, a third of the whole
call).  Frameworks keep freed memory in their own allocators; so do we, in a
bounded way: when every array (and view) using a buffer is gone, the buffer
goes back to a pool and serves a later call of the same size without new page
faults.  The pool keeps at most ``MAX_IDLE_BUFFERS`` idle buffers and
``MAX_IDLE_BYTES`` bytes; ``release_memory()`` empties it.

Every array handed out starts on a 64-byte boundary (NumPy guarantees 16): the
core's vector stores then never straddle two cache lines.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Dict, List

import numpy as np

from . import _core

MAX_IDLE_BUFFERS = 4
MAX_IDLE_BYTES = 1 << 30
SMALLEST_POOLED = 1 << 20      # below this the system allocator is as good
ALIGNMENT = 64


class _Lease:
    """The base object of a handed-out array: alive exactly as long as any array using it."""

    __slots__ = ("__array_interface__", "__weakref__")

    def __init__(self, raw: np.ndarray, nbytes: int, shape, dtype: np.dtype):
        start = _core.data_address(raw) + _misalignment(raw)
        self.__array_interface__ = {"data": (start, False), "shape": tuple(shape),
                                    "typestr": dtype.str, "version": 3}


def _misalignment(raw: np.ndarray) -> int:
    """Bytes to skip from the start of `raw` to reach a 64-byte boundary."""
    # the core reads the address in a tenth of the time `raw.ctypes.data` takes,
    # which matters to the smallest calls
    return -_core.data_address(raw) % ALIGNMENT


def _aligned_view(raw: np.ndarray, nbytes: int, shape, dtype: np.dtype) -> np.ndarray:
    return np.ndarray(shape, dtype, raw, _misalignment(raw))


class _Pool:
    def __init__(self):
        self._lock = threading.Lock()
        self._idle: Dict[int, List[np.ndarray]] = {}
        self._idle_bytes = 0

    def empty(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < SMALLEST_POOLED:
            return _aligned_view(np.empty(nbytes + ALIGNMENT, np.uint8), nbytes, shape, dtype)
        with self._lock:
            stack = self._idle.get(nbytes)
            raw = stack.pop() if stack else None
            if raw is not None:
                self._idle_bytes -= nbytes
        if raw is None:
            raw = np.empty(nbytes + ALIGNMENT, np.uint8)
        lease = _Lease(raw, nbytes, shape, dtype)
        weakref.finalize(lease, self._give_back, raw)
        return np.asarray(lease)

    def _give_back(self, raw: np.ndarray) -> None:
        with self._lock:
            idle_count = sum(len(stack) for stack in self._idle.values())
            nbytes = raw.nbytes - ALIGNMENT
            if (idle_count >= MAX_IDLE_BUFFERS
                    or self._idle_bytes + nbytes > MAX_IDLE_BYTES):
                return                       # let the memory go back to the system
            self._idle.setdefault(nbytes, []).append(raw)
            self._idle_bytes += nbytes

    def release_memory(self) -> None:
        with self._lock:
            self._idle.clear()
            self._idle_bytes = 0

    def idle_bytes(self) -> int:
        with self._lock:
            return self._idle_bytes


_POOL = _Pool()
empty = _POOL.empty
release_memory = _POOL.release_memory
idle_bytes = _POOL.idle_bytes
