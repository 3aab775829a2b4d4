"""The fuzz oracle: whether one call's output is what the NumPy reference computes.

NaN positions must match exactly, infinities must be equal, finite values must be
within a per-dtype tolerance.  ``reference`` (tests/reference.py) is imported
where it is used, because a worker process puts the tests folder on its path
only once it runs.
"""

import math
import warnings

import numpy as np

# Library bugs the fuzzer still finds.  Each has a strict-xfail reproducer in
# test_regressions.py, which XPASSes (and so fails) once the bug is fixed: then
# delete its entry here.
KNOWN_BUGS = {
    "K13-nonfinite-weights": "with NaN/inf weights, taps that fall outside the input are "
                             "skipped (Keras multiplies the zero padding: 0*inf = NaN), and "
                             "which are skipped depends on the tile grouping",
}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_activation(layer):
    """The activation as a float64 NumPy function (tests/reference.py, plus glu)."""
    from reference import ACTIVATIONS
    name = layer.activation.name
    if name is None:
        return layer.activation.original
    if name == "glu":
        return lambda x: np.split(x, 2, axis=-1)[0] * _sigmoid(np.split(x, 2, axis=-1)[1])
    return ACTIVATIONS[name]


def core_dtype(layer):
    """The dtype the layer documents computing in (float16 policies compute in float32)."""
    return np.float64 if layer.compute_dtype == "float64" else np.float32


def tolerance(dtype):
    return {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 2e-4}.get(np.dtype(dtype), 2e-2)


def reference_size(layer, shape):
    """Roughly how many values the reference's padded input holds."""
    if layer.data_format == "channels_first":
        shape = (shape[0], *shape[2:], shape[1])
    size = shape[0] * max(shape[4], layer.filters, 1)
    for length, k, s, d in zip(shape[1:4], layer.kernel_size, layer.strides, layer.dilation_rate):
        size *= max(length - 1, 0) * s + 1 + 2 * (k - 1) * d + s
    return size


def check_call(layer, inputs, output):
    """Assert that one call's output matches the reference; returns notes.

    The note "K13" means the weights are not finite, so values were not compared
    (see KNOWN_BUGS).
    """
    from reference import conv3d_transpose
    notes = []
    x = np.asarray(inputs)
    assert isinstance(output, np.ndarray), type(output)
    assert output.dtype == np.dtype(layer.compute_dtype), (output.dtype, layer.compute_dtype)
    if x.size == 0 and math.prod(v for v in x.shape if v) > 2 ** 20:
        # an empty input with enormous axes (the "huge" family): too big for the reference
        assert output.ndim == 5 and output.size == 0, output.shape
        return ["empty-unchecked"]
    if reference_size(layer, x.shape) > 2 ** 25:
        # e.g. padding="same" with a dilation of 2**61: the output is small, but the
        # reference would pad the input to the dilated kernel's span
        assert output.ndim == 5
        return ["reference-too-big"]
    kernel = np.asarray(layer.kernel, dtype=np.float64)
    bias = None if layer.bias is None else np.asarray(layer.bias, dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the layer casts its input to the core dtype before computing
        x64 = x.astype(core_dtype(layer)).astype(np.float64)
        expected = conv3d_transpose(x64, kernel, bias, layer.strides, layer.padding,
                                    layer.output_padding, layer.dilation_rate, layer.data_format)
        expected = np.asarray(reference_activation(layer)(expected), dtype=np.float64)
        expected = expected.astype(output.dtype)
    assert output.shape == expected.shape, (output.shape, expected.shape)
    if not (np.isfinite(kernel).all() and (bias is None or np.isfinite(bias).all())):
        notes.append("K13")          # non-finite weights: values not compared (see K13)
        return notes
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(output), nan), (
        f"NaN positions differ: {int((np.isnan(output) != nan).sum())} of {nan.size}")
    inf = np.isinf(expected)
    assert np.array_equal(output[inf], expected[inf]), "infinities differ"
    finite = np.isfinite(expected)
    assert np.isfinite(output[finite]).all(), "non-finite values where the reference is finite"
    if finite.any():
        got, want = output[finite].astype(np.float64), expected[finite].astype(np.float64)
        scale = max(float(np.max(np.abs(want))), 1e-30)
        error = float(np.max(np.abs(got - want))) / scale
        assert error <= tolerance(output.dtype), f"relative error {error:.3g}"
    return notes
