"""A naive NumPy transposed convolution, written from the math, for testing.

Independent of deconv3d's core *and* of ``deconv3d.shapes``: it follows the
definition Keras's JAX backend uses.  A transposed convolution is an ordinary
correlation of the stride-dilated input (``s - 1`` zeros between samples),
padded by ``(pad_left, pad_right)``, with the spatially flipped kernel, whose
taps are spread by the dilation rate.  Nothing here is clever; it is slow.
"""

import math
import threading

import numpy as np


def keras_jax_padding(k, s, d, padding, op):
    """(pad_left, pad_right) of one axis, in Keras's words (backend_utils, JAX branch)."""
    k_eff = (k - 1) * d + 1
    if padding == "valid":
        if op is None:
            op = max(k_eff, s) - k_eff
        return k_eff - 1, k_eff - 1 + op
    pad_len = s + k_eff - 2 if op is None else k_eff + k_eff % 2 - 2 + op
    left = min(pad_len // 2 + pad_len % 2, k_eff - 1)
    return left, pad_len - left


def conv3d_transpose(x, kernel, bias=None, strides=(1, 1, 1), padding="valid",
                     output_padding=None, dilation_rate=(1, 1, 1), data_format="channels_last"):
    """y for x (N, D, H, W, C) [or (N, C, D, H, W)] and a Keras kernel (kd, kh, kw, F, C)."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    if data_format == "channels_first":
        x = x.transpose(0, 2, 3, 4, 1)
    n, spatial, channels = x.shape[0], x.shape[1:4], x.shape[4]
    filters = kernel.shape[3]

    # 1. stride-dilate the input
    dilated_shape = [max((L - 1) * s + 1, 0) for L, s in zip(spatial, strides)]
    dilated = np.zeros((n, *dilated_shape, channels))
    dilated[:, ::strides[0], ::strides[1], ::strides[2], :] = x

    # 2. pad (a negative pad crops)
    padded = dilated
    for axis in range(3):
        op = None if output_padding is None else output_padding[axis]
        left, right = keras_jax_padding(kernel.shape[axis], strides[axis], dilation_rate[axis],
                                        padding, op)
        padded = _pad_axis(padded, axis + 1, left, right)

    # 3. correlate with the flipped, dilated kernel, one tap at a time
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:3], dilation_rate)]
    out_len = [max(0, p - k + 1) for p, k in zip(padded.shape[1:4], k_eff)]  # JAX: never < 0
    out = np.zeros((n, *out_len, filters))
    flipped = kernel[::-1, ::-1, ::-1]
    for a in range(kernel.shape[0]):
        for b in range(kernel.shape[1]):
            for c in range(kernel.shape[2]):
                da, db, dc = a * dilation_rate[0], b * dilation_rate[1], c * dilation_rate[2]
                window = padded[:, da:da + out_len[0], db:db + out_len[1], dc:dc + out_len[2], :]
                out += window @ flipped[a, b, c].T          # (.., C) @ (C, F)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)
    if data_format == "channels_first":
        out = out.transpose(0, 4, 1, 2, 3)
    return out


def _pad_axis(array, axis, left, right):
    if left < 0:
        array = np.take(array, range(-left, array.shape[axis]), axis=axis)
        left = 0
    if right < 0:
        array = np.take(array, range(0, array.shape[axis] + right), axis=axis)
        right = 0
    widths = [(0, 0)] * array.ndim
    widths[axis] = (left, right)
    return np.pad(array, widths)


# ---- activations, from the Keras / JAX definitions (float64) ----
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.logaddexp(x, 0.0)


_erf = np.vectorize(math.erf, otypes=[float])

ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.minimum(np.maximum(x, 0.0), 6.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "celu": lambda x: np.maximum(x, 0.0) + np.expm1(np.minimum(x, 0.0)),
    "selu": lambda x: 1.0507009873554804934193349852946 * np.where(
        x > 0, x, 1.6732632423543772848170429916717 * np.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "hard_sigmoid": lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "hard_silu": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "silu": lambda x: x * _sigmoid(x),
    "softplus": _softplus,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "exponential": np.exp,
    "squareplus": lambda x: (x + np.sqrt(x * x + 4.0)) / 2.0,
    "sparse_plus": lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4)),
    "sparse_sigmoid": lambda x: np.clip(0.5 * (x + 1.0), 0.0, 1.0),
    "soft_shrink": lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0)),
    "hard_shrink": lambda x: np.where(np.abs(x) > 0.5, x, 0.0),
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
    "tanh_shrink": lambda x: x - np.tanh(x),
    "log_sigmoid": lambda x: -_softplus(-x),
    "softmax": lambda x: np.exp(x - _logsumexp(x)),
    "log_softmax": lambda x: x - _logsumexp(x),
}
ACTIVATIONS["swish"] = ACTIVATIONS["silu"]
ACTIVATIONS["hard_swish"] = ACTIVATIONS["hard_silu"]


def _logsumexp(x):
    if x.shape[-1] == 0:        # nothing to normalise over
        return x
    m = np.max(x, axis=-1, keepdims=True)
    return m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def relative_error(actual, expected):
    """max |actual - expected| / max |expected| (0 when both are all zero)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.size == 0:
        return 0.0
    scale = np.max(np.abs(expected))
    diff = np.max(np.abs(actual - expected))
    return float(diff / scale) if scale > 0 else float(diff)


def assert_same_non_finite(actual, expected, tolerance=1e-5):
    """NaN and both infinities exactly where the reference has them (some, not all), and
    the finite values within `tolerance` (relative_error)."""
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(actual), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(actual), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert 0 < finite.sum() < finite.size
    assert relative_error(actual[finite], expected[finite]) <= tolerance


def layer_reference(layer, x, activation="linear"):
    """What a built deconv3d layer must return for x (either data format), from its
    own weights and settings, through `activation`."""
    channels_first = layer.data_format == "channels_first"
    if channels_first:
        x = x.transpose(0, 2, 3, 4, 1)
    expected = conv3d_transpose(x, layer.kernel, layer.bias if layer.use_bias else None,
                                layer.strides, layer.padding, layer.output_padding,
                                layer.dilation_rate)
    expected = ACTIVATIONS[activation](expected)
    return expected.transpose(0, 4, 1, 2, 3) if channels_first else expected


def assert_python_threads_agree(layer, x, calls=20):
    """Two Python threads calling the same layer (one plan, its buffers) at once, on two
    inputs shaped like x, each get what a lone call gives, `calls` times each."""
    inputs = [np.random.default_rng(seed).standard_normal(x.shape).astype(x.dtype)
              for seed in range(2)]
    expected = [layer(v) for v in inputs]
    failures = []

    def work(which):
        for _ in range(calls):
            if not np.array_equal(layer(inputs[which]), expected[which]):
                failures.append(which)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def assert_windows_match(layer, x, path, count=12, seed=5):
    """`count` random windows of the output, each computed alone by the core (as the
    dask path asks for them) on a plan taking `path`, equal to the full output's."""
    full = layer(x)
    packed = layer._core_plan(x.shape).kernel
    rng = np.random.default_rng(seed)
    for _ in range(count):
        start = [int(rng.integers(0, n)) for n in full.shape[1:4]]
        stop = [int(rng.integers(a + 1, n + 1)) for a, n in zip(start, full.shape[1:4])]
        window = np.empty((x.shape[0], *(b - a for a, b in zip(start, stop)), full.shape[4]),
                          full.dtype)
        plan = packed.plan(x.shape, window.shape, tuple(start))
        assert path in plan.explain()["paths"], (start, stop, plan.explain()["paths"])
        plan.run(x, window)
        np.testing.assert_array_equal(
            window, full[:, start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]])
