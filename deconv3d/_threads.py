"""Thread policy: which thread counts are allowed, and how many threads a call gets.

The core only runs the count it is given; every decision about that count
lives here, so the layer and the command line apply the same rules.
"""

from __future__ import annotations

import numbers
import threading
from typing import Optional

# More OpenMP threads than this only fail (the runtime cannot create them) or thrash.
MAX_THREADS = 1024

# Below this many multiply-adds a call runs on one thread unless told otherwise: a second
# thread costs more than it saves.  Measured on 2 cores: two threads start to pay at about
# 2e6 multiply-adds (~30 us of arithmetic), and from 5e5 already when the kernel equals
# the stride (one matrix product, with no tile tables to build).
SERIAL_BELOW = 2_000_000
SERIAL_BELOW_KERNEL_IS_STRIDE = 500_000


class CallCounter:
    """Counts calls running right now, so that concurrent calls share the cores.

    A call without an explicit thread count gets OpenMP's default divided by the
    number of calls in flight (at least one): eight Python threads calling at
    once on two cores then run one OpenMP thread each instead of sixteen.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._running = 0

    def __enter__(self):
        with self._lock:
            self._running += 1
            return self._running

    def __exit__(self, *exc_info):
        with self._lock:
            self._running -= 1


# One counter for the process: every layer's calls share the same cores.
calls = CallCounter()


def validate(value) -> Optional[int]:
    """A thread count as an int, or None for OpenMP's default.

    Parameters
    ----------
    value : int or None

    Returns
    -------
    int or None

    Raises
    ------
    TypeError
        ``value`` is not an int (bools are refused too).
    ValueError
        ``value`` is outside ``1 .. MAX_THREADS``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"num_threads must be a positive int or None, got {value!r}")
    if not 1 <= value <= MAX_THREADS:
        raise ValueError(f"num_threads must be an int from 1 to {MAX_THREADS} or None, "
                         f"got {value!r}")
    return int(value)
