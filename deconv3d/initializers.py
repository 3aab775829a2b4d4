"""Keras initializer names -> seeded NumPy initialisers.

Random values cannot match Keras bit for bit (they come from each backend's
RNG), but the distributions, their parameters and the fan rule for a
transposed-convolution kernel ``(kd, kh, kw, filters, in_channels)`` do:
``fan_in = filters * kd*kh*kw`` and ``fan_out = in_channels * kd*kh*kw``.
"""

from __future__ import annotations

import math

import numpy as np

from .serialization import Catalogue, KerasObject

_FAN_AXES = {"seed": None, "input_axes": None, "output_axes": None}

DEFAULTS = {
    "Zeros": {},
    "Ones": {},
    "Constant": {"value": 0.0},
    "RandomNormal": {"seed": None, "mean": 0.0, "stddev": 0.05},
    "RandomUniform": {"seed": None, "minval": -0.05, "maxval": 0.05},
    "TruncatedNormal": {"seed": None, "mean": 0.0, "stddev": 0.05},
    "VarianceScaling": {"seed": None, "scale": 1.0, "mode": "fan_in",
                        "distribution": "truncated_normal", "input_axes": None,
                        "output_axes": None},
    "GlorotUniform": dict(_FAN_AXES),
    "GlorotNormal": dict(_FAN_AXES),
    "HeUniform": dict(_FAN_AXES),
    "HeNormal": dict(_FAN_AXES),
    "LecunUniform": dict(_FAN_AXES),
    "LecunNormal": dict(_FAN_AXES),
    "Orthogonal": {"seed": None, "gain": 1.0},
    "Identity": {},
    "STFT": {"side": "real", "window": "hann", "periodic": False, "scaling": "density"},
    "Initializer": {},
}

# (scale, mode, distribution) of the VarianceScaling family, as Keras defines them
_VARIANCE_SCALING = {
    "GlorotUniform": (1.0, "fan_avg", "uniform"),
    "GlorotNormal": (1.0, "fan_avg", "truncated_normal"),
    "HeUniform": (2.0, "fan_in", "uniform"),
    "HeNormal": (2.0, "fan_in", "truncated_normal"),
    "LecunUniform": (1.0, "fan_in", "uniform"),
    "LecunNormal": (1.0, "fan_in", "truncated_normal"),
}

ALIASES = {
    "zeros": "Zeros", "zero": "Zeros", "ones": "Ones", "one": "Ones",
    "constant": "Constant", "random_normal": "RandomNormal", "normal": "RandomNormal",
    "random_uniform": "RandomUniform", "uniform": "RandomUniform",
    "truncated_normal": "TruncatedNormal", "variance_scaling": "VarianceScaling",
    "glorot_uniform": "GlorotUniform", "glorot_normal": "GlorotNormal",
    "he_uniform": "HeUniform", "he_normal": "HeNormal",
    "lecun_uniform": "LecunUniform", "lecun_normal": "LecunNormal",
    "orthogonal": "Orthogonal", "OrthogonalInitializer": "Orthogonal",
    "identity": "Identity", "IdentityInitializer": "Identity",
    "stft": "STFT", "STFTInitializer": "STFT", "initializer": "Initializer",
}


class Initializer(KerasObject):
    """A Keras initializer: ``init(shape, dtype, rng)`` returns a NumPy array."""

    def __init__(self, class_name, config):
        super().__init__("keras.initializers", class_name, config)
        if class_name == "Initializer":
            self.module = "keras"

    def __call__(self, shape, dtype=np.float32, rng=None):
        shape = tuple(int(n) for n in shape)
        seed = self.config.get("seed")
        rng = rng if seed is None and rng is not None else np.random.default_rng(seed)
        return np.asarray(self._values(shape, rng), dtype=dtype).reshape(shape)

    def _values(self, shape, rng):
        name, cfg = self.class_name, self.config
        if name == "Zeros":
            return np.zeros(shape)
        if name == "Ones":
            return np.ones(shape)
        if name == "Constant":
            return np.full(shape, cfg["value"])
        if name == "RandomNormal":
            # scaled by hand: Keras accepts a negative stddev, NumPy's normal() would not
            return cfg["mean"] + cfg["stddev"] * rng.standard_normal(shape)
        if name == "RandomUniform":
            return rng.uniform(cfg["minval"], cfg["maxval"], shape)
        if name == "TruncatedNormal":
            return cfg["mean"] + cfg["stddev"] * _truncated_standard_normal(shape, rng)
        if name in _VARIANCE_SCALING or name == "VarianceScaling":
            if name == "VarianceScaling":
                scale, mode, distribution = cfg["scale"], cfg["mode"], cfg["distribution"]
            else:
                scale, mode, distribution = _VARIANCE_SCALING[name]
            return _variance_scaling(shape, rng, scale, mode, distribution,
                                     cfg.get("input_axes"), cfg.get("output_axes"))
        if name == "Orthogonal":
            return _orthogonal(shape, rng, cfg["gain"])
        if name == "Identity":
            raise ValueError("Identity matrix initializer can only be used for 2D matrices. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        if name == "STFT":
            raise ValueError(f"The STFT initializer only makes 1-D convolution kernels; it "
                             f"cannot initialise a weight of shape {shape}.")
        raise ValueError("The base `Initializer` creates no values; choose a concrete "
                         "initializer such as 'glorot_uniform'.")


def _truncated_standard_normal(shape, rng):
    """Standard normal samples redrawn until they lie within two standard deviations."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values


def compute_fans(shape, input_axes=None, output_axes=None):
    """Keras's fan rule; for a 5-D transposed-conv kernel ``shape[-2]`` is filters."""
    if input_axes is not None and output_axes is not None:
        return (math.prod(shape[a] for a in input_axes),
                math.prod(shape[a] for a in output_axes))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _variance_scaling(shape, rng, scale, mode, distribution, input_axes, output_axes):
    fan_in, fan_out = compute_fans(shape, input_axes, output_axes)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    variance = scale / max(1.0, n)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, shape)
    if distribution == "truncated_normal":
        # 0.879... is the standard deviation of a standard normal truncated at +-2
        stddev = math.sqrt(variance) / 0.87962566103423978
        return stddev * _truncated_standard_normal(shape, rng)
    return math.sqrt(variance) * rng.standard_normal(shape)


def _orthogonal(shape, rng, gain):
    rows, cols = math.prod(shape[:-1]), shape[-1]
    matrix = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(matrix)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)


def _validated(class_name, config):
    init = Initializer(class_name, config)
    if class_name == "VarianceScaling":
        if config["mode"] not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"Invalid `mode` argument for VarianceScaling: {config['mode']!r}")
        if config["distribution"] not in ("truncated_normal", "untruncated_normal", "normal",
                                          "uniform"):
            raise ValueError("Invalid `distribution` argument for VarianceScaling: "
                             f"{config['distribution']!r}")
        if not config["scale"] > 0:
            raise ValueError(f"Argument `scale` must be positive float. "
                             f"Received: scale={config['scale']!r}")
    return init


CATALOGUE = Catalogue("initializer", "keras.initializers", DEFAULTS, ALIASES, _validated)


def get(identifier, argument: str = ""):
    """An initializer from a Keras identifier (None stays None: the layer picks Keras's default)."""
    return CATALOGUE.get(identifier, argument)


def initial_values(initializer, shape, dtype, rng, argument: str) -> np.ndarray:
    """A weight's first values from an initializer (ours, or a callable ``init(shape, dtype)``).

    Errors are ValueError or TypeError naming ``argument``.
    """
    # Keras falls back to glorot_uniform when a float weight has no initializer.
    if initializer is None:
        initializer = get("glorot_uniform")
    try:
        if isinstance(initializer, Initializer):
            return initializer(shape, dtype, rng)
        values = np.asarray(initializer(shape, dtype=dtype))
    except (ValueError, TypeError, IndexError) as error:
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"`{argument}` could not initialise a weight of shape {tuple(shape)}: "
                   f"{error}") from None
    if values.shape != tuple(shape):
        raise ValueError(f"`{argument}` returned shape {values.shape}, expected {tuple(shape)}")
    return values
