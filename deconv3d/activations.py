"""Keras activation names -> what the layer applies after the convolution.

Element-wise activations are computed inside the compiled core, on each
output row while it is still in cache (the core's code numbers come from
``deconv3d._core.ACTIVATION_CODES``).  The ones that need a whole axis
(softmax, log_softmax, sparsemax, glu: all over the *last* axis of the output,
as Keras applies them whatever the data format) and user callables run in
NumPy on the finished output.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from . import _core

ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def _softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _sparsemax(x):
    # Keras 3's own formula, kept as it is so that outputs match Keras: note that
    # its threshold sums the cumulative sums over the support.
    ordered = -np.sort(-x, axis=-1)
    cumsum = np.cumsum(ordered, axis=-1)
    ranks = np.arange(1, x.shape[-1] + 1, dtype=x.dtype)
    support = ordered - (cumsum - 1) / ranks > 0
    k = np.sum(support, axis=-1, keepdims=True).astype(x.dtype)
    tau = (np.sum(np.where(support, cumsum, 0), axis=-1, keepdims=True) - 1) / k
    return np.maximum(x - tau, 0)


def _glu(x):
    if x.shape[-1] % 2:
        raise ValueError(f"activation 'glu' splits the last axis in two halves, but it has "
                         f"odd length {x.shape[-1]}")
    a, b = np.split(x, 2, axis=-1)
    return a / (1 + np.exp(-b))


def _threshold(x):
    raise TypeError("activation 'threshold' needs the arguments `threshold` and "
                    "`default_value`; pass a callable instead, e.g. "
                    "lambda x: np.where(x > t, x, default)")


WHOLE_AXIS = {"softmax": _softmax, "log_softmax": _log_softmax, "sparsemax": _sparsemax,
              "glu": _glu, "threshold": _threshold}

NAMES = tuple(sorted(set(_core.ACTIVATION_CODES) | set(WHOLE_AXIS) | set(ALIASES)))


class Activation:
    """A resolved activation: a Keras name, and how the layer computes it.

    ``core_code`` is the fused element-wise code (0 = nothing for the core to do);
    ``apply`` is a function run on the finished output, or None.
    """

    def __init__(self, name: Optional[str], core_code: int = 0,
                 apply: Optional[Callable] = None, original=None):
        self.name = name
        self.core_code = core_code
        self.apply = apply
        self.original = original

    def serialize(self):
        if self.name is not None:
            return self.name
        fn = self.original
        name = getattr(fn, "__name__", type(fn).__name__)
        return {"module": getattr(fn, "__module__", None), "class_name": "function",
                "config": name, "registered_name": "function"}

    def __repr__(self):
        return f"Activation({self.serialize()!r})"


def _by_name(name: str, original=None) -> Activation:
    name = ALIASES.get(name, name)
    if name in _core.ACTIVATION_CODES:
        return Activation(name, _core.ACTIVATION_CODES[name], None, original)
    return Activation(name, 0, WHOLE_AXIS[name], original)


def get(identifier) -> Activation:
    """None, a Keras name, a Keras serialised dict, or a callable -> Activation."""
    if identifier is None:
        return _by_name("linear")
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        if identifier in NAMES:
            return _by_name(identifier)
    elif isinstance(identifier, dict):
        # Keras writes functions as {"class_name": "function", "config": "<name>", ...}
        name = identifier.get("config")
        if isinstance(name, str) and name in NAMES:
            return _by_name(name)
    elif callable(identifier):
        # Keras's own activation functions are recognised, so they run fused.
        name = getattr(identifier, "__name__", None)
        module = getattr(identifier, "__module__", "") or ""
        if module.startswith("keras") and name in NAMES:
            return _by_name(name, identifier)
        return Activation(None, 0, identifier, identifier)
    raise ValueError(f"Could not interpret activation function identifier for `activation`: "
                     f"{identifier!r}. "
                     f"Expected None, a callable or one of: {', '.join(NAMES)}")
