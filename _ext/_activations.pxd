# Keras activations computed element by element inside the core, in double precision.
# The codes are part of the interface with deconv3d.activations (through
# _core.ACTIVATION_CODES), which maps Keras names onto them.
from libc.math cimport exp, expm1, log1p, tanh, erf, sqrt, fabs

cdef enum:
    ACT_LINEAR = 0
    ACT_RELU = 1
    ACT_RELU6 = 2
    ACT_LEAKY_RELU = 3
    ACT_ELU = 4
    ACT_CELU = 5
    ACT_SELU = 6
    ACT_GELU = 7
    ACT_SIGMOID = 8
    ACT_TANH = 9
    ACT_HARD_SIGMOID = 10
    ACT_HARD_SILU = 11
    ACT_SILU = 12
    ACT_SOFTPLUS = 13
    ACT_SOFTSIGN = 14
    ACT_MISH = 15
    ACT_EXPONENTIAL = 16
    ACT_SQUAREPLUS = 17
    ACT_SPARSE_PLUS = 18
    ACT_SPARSE_SIGMOID = 19
    ACT_SOFT_SHRINK = 20
    ACT_HARD_SHRINK = 21
    ACT_HARD_TANH = 22
    ACT_TANH_SHRINK = 23
    ACT_LOG_SIGMOID = 24


cdef inline double _softplus(double v) noexcept nogil:
    # log(1 + e^v) without overflow, as logaddexp(v, 0)
    return (v if v > 0 else 0.0) + log1p(exp(-fabs(v)))


cdef inline double _sigmoid(double v) noexcept nogil:
    if v >= 0:
        return 1.0 / (1.0 + exp(-v))
    cdef double e = exp(v)
    return e / (1.0 + e)


cdef inline double _relu6(double v) noexcept nogil:
    # comparisons written so that NaN passes through, as jnp.maximum/minimum do
    if v < 0:
        return 0.0
    if v > 6:
        return 6.0
    return v


cdef inline double _activate(double v, int code) noexcept nogil:
    """One element of a Keras activation, computed in double precision."""
    if code == ACT_RELU:
        return 0.0 if v < 0 else v
    elif code == ACT_RELU6:
        return _relu6(v)
    elif code == ACT_LEAKY_RELU:
        return v if v >= 0 else 0.2 * v
    elif code == ACT_ELU:
        return v if v > 0 else expm1(v)
    elif code == ACT_CELU:
        if v != v:
            return v        # NaN stays NaN, as in Keras
        return (v if v > 0 else 0.0) + expm1(v if v < 0 else 0.0)
    elif code == ACT_SELU:
        return 1.0507009873554804934193349852946 * (
            v if v > 0 else 1.6732632423543772848170429916717 * expm1(v))
    elif code == ACT_GELU:
        return 0.5 * v * (1.0 + erf(v * 0.70710678118654752440))
    elif code == ACT_SIGMOID:
        return _sigmoid(v)
    elif code == ACT_TANH:
        return tanh(v)
    elif code == ACT_HARD_SIGMOID:
        return _relu6(v + 3.0) / 6.0
    elif code == ACT_HARD_SILU:
        return v * _relu6(v + 3.0) / 6.0
    elif code == ACT_SILU:
        return v * _sigmoid(v)
    elif code == ACT_SOFTPLUS:
        return _softplus(v)
    elif code == ACT_SOFTSIGN:
        return v / (1.0 + fabs(v))
    elif code == ACT_MISH:
        return v * tanh(_softplus(v))
    elif code == ACT_EXPONENTIAL:
        return exp(v)
    elif code == ACT_SQUAREPLUS:
        return (v + sqrt(v * v + 4.0)) / 2.0
    elif code == ACT_SPARSE_PLUS:
        if v <= -1:
            return 0.0
        if v >= 1:
            return v
        return (v + 1.0) * (v + 1.0) / 4.0
    elif code == ACT_SPARSE_SIGMOID:
        if v <= -1:
            return 0.0
        if v >= 1:
            return 1.0
        return 0.5 * (v + 1.0)
    elif code == ACT_SOFT_SHRINK:
        # like jnp.where(x > t, x - t, jnp.where(x < -t, x + t, 0)): NaN gives 0
        if v > 0.5:
            return v - 0.5
        if v < -0.5:
            return v + 0.5
        return 0.0
    elif code == ACT_HARD_SHRINK:
        return v if fabs(v) > 0.5 else 0.0
    elif code == ACT_HARD_TANH:
        if v > 1:
            return 1.0
        if v < -1:
            return -1.0
        return v
    elif code == ACT_TANH_SHRINK:
        return v - tanh(v)
    elif code == ACT_LOG_SIGMOID:
        return -_softplus(-v)
    return v
