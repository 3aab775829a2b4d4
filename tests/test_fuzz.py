"""Fuzzing the layer with garbage arguments and inputs: 10,000 seeded cases.

Each case constructs a layer (perhaps with garbage constructor arguments), then does
some of: build, set_weights, compute_output_shape, and calls (perhaps with garbage
inputs or thread counts).  Every case must end in exactly one of

* success, every call's output matching the NumPy reference (tests/reference.py) --
  NaN positions exactly, for inputs holding NaN and infinities;
* ValueError or TypeError whose message names the offending argument ("input" for call
  inputs, "weight" for set_weights); for sizes, the allocation check's refusal ("... would
  have shape ..., more than this machine's memory") also counts;
* a known library bug (KNOWN_BUGS below): such cases are recognised before the step
  that would trigger the bug, are not run, and are counted.  Each bug has a strict-xfail
  test with a minimal reproducer at the end of this file; when a bug is fixed, that test
  XPASSes (and fails, being strict): delete the bug's entry and predicate here then;

and never a crash, a hang, another exception class, or a warning.

The generator is a seeded NumPy Generator (no hypothesis: no shrinking, and fast); any
case can be regenerated from (batch, index).  Cases run in worker subprocesses -- this
file run as a script, 1,000 cases each, two at a time -- so that a segfault or an abort
fails one test naming the case instead of killing pytest.  faulthandler kills a worker
whose case runs for more than CASE_TIMEOUT seconds (a hang), and the workers run under
an address-space limit, so that a runaway allocation becomes a MemoryError (a failure)
instead of exhausting the machine.  Cases with astronomically large sizes (outputs of
petabytes) additionally run under tracemalloc and must be refused before NumPy
allocates more than HUGE_BUDGET bytes.

Run one batch by hand:   python tests/test_fuzz.py --worker 3 [--verbose]
Show one case:           python tests/test_fuzz.py --show 3 417
"""

import argparse
import concurrent.futures
import dataclasses
import faulthandler
import fractions
import json
import math
import numbers
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import tracemalloc
import warnings

import numpy as np
import pytest

SEED = 20261125
BATCHES = 10
CASES_PER_BATCH = 1000
TOTAL_CASES = BATCHES * CASES_PER_BATCH
# seconds: a case this slow is a hang.  Nearly all take milliseconds, but the naive
# reference for a 10,000-tap kernel axis (batch 7, case 454) takes about 30 s on a
# 2-core machine, and more while the other worker shares the cores.
CASE_TIMEOUT = 300
BATCH_TIMEOUT = 900          # seconds, a backstop for the whole worker
HUGE_BUDGET = 64 << 20       # bytes NumPy may allocate while refusing a petabyte output
ADDRESS_SPACE_HEADROOM = 6 << 30
PARALLEL_WORKERS = 2
SANITIZER = os.environ.get("DECONV3D_SANITIZER", "")   # set by tests/sanitize.sh

# how many of each family of cases, in every batch (sums to CASES_PER_BATCH)
FAMILIES = {"constructor": 340, "input": 240, "layout": 150, "nonfinite": 110, "huge": 60,
            "weights": 50, "shape": 50}
assert sum(FAMILIES.values()) == CASES_PER_BATCH

# ---------------------------------------------------------------------- known bugs
KNOWN_BUGS = {
    "K13-nonfinite-weights": "with NaN/inf weights, taps that fall outside the input are "
                             "skipped (Keras multiplies the zero padding: 0*inf = NaN), and "
                             "which are skipped depends on the tile grouping",
}


# ---------------------------------------------------------------------- the reference
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
    """Assert that one call's output matches the reference; returns notes."""
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


# ---------------------------------------------------------------------- garbage
def double(x):
    """A user activation (module level: it has a name)."""
    return 2 * x


ACTIVATION_POOL = [None, "linear", "relu", "relu6", "leaky_relu", "elu", "celu", "selu",
                   "gelu", "sigmoid", "tanh", "hard_sigmoid", "hard_silu", "silu", "swish",
                   "hard_swish", "softplus", "softsign", "mish", "exponential", "squareplus",
                   "sparse_plus", "sparse_sigmoid", "soft_shrink", "hard_shrink", "hard_tanh",
                   "tanh_shrink", "log_sigmoid", "softmax", "log_softmax"]


class Unprintable:
    def __repr__(self):
        raise RuntimeError("repr() of this object fails")

    def __str__(self):
        raise RuntimeError("str() of this object fails")


def scalar_garbage():
    """Values that are wrong for almost any argument (fresh objects every time)."""
    return [None, True, False, 0, -1, -(2 ** 63), 2 ** 31, 2 ** 63, 2 ** 64, 10 ** 20, 1.5,
            2.0, float("nan"), float("inf"), -float("inf"), "2", "a", "", b"2", 1j,
            np.int64(2), np.int32(-1), np.float64(2.0), np.float32(np.nan), np.bool_(True),
            np.uint8(3), np.array(2), np.array([2, 2, 2]), np.array([2.0, 2.0, 2.0]),
            [2, 2], [2, 2, 2, 2], (2, None, 2), (2, "2", 2), [[2], [2], [2]], (2, 2.5, 2),
            (2, np.int64(2), 2), (2, 2 ** 70, 2), (1, -1, 1), (0, 0, 0), {"a": 1}, {2, 3, 4},
            object(), lambda: 2, range(3), range(1, 4), "abc", "222",
            np.array([[2, 2, 2]]), (float("nan"), 2, 2), fractions.Fraction(2, 1),
            (True, True, True), np.array([1, 2, 3], dtype=np.uint64), (2 ** 62, 1, 1),
            (1, 1, 2 ** 40)]


def tuple_garbage():
    """For kernel_size, strides, dilation_rate, output_padding: sizes, big and small."""
    return scalar_garbage() + [
        1, 2, 3, (1, 2, 3), [3, 1, 2], (3, 1, 1), (1, 1, 40), (7, 1, 1), (1, 10 ** 4, 1),
        (1, 1, 65), (1, 1, 150), (2 ** 20, 2 ** 20, 2 ** 20), (2 ** 30, 1, 1),
        (10 ** 6, 10 ** 6, 10 ** 6), (2 ** 40, 1, 1), 2 ** 40, 10 ** 4, (10, 100, 1000),
        np.array([1, 2, 1]), (np.int8(1), np.uint16(2), np.int64(1)), (1, 1, 2 ** 63),
        (2 ** 64, 1, 1)]


def initializer_garbage():
    """(value, known bug) for kernel_initializer / bias_initializer."""
    return [
        ("nope", None), (3, None), (None, None), ("identity", None), ("stft", None),
        ("Initializer", None), ({"class_name": "Nope"}, None), ({"class_name": 3}, None),
        ({"class_name": "Zeros", "config": 3}, None),
        ({"class_name": "RandomNormal", "config": {"foo": 1}}, None),
        ({"class_name": "VarianceScaling", "config": {"mode": "x"}}, None),
        ({"class_name": "VarianceScaling", "config": {"distribution": "x"}}, None),
        ({"class_name": "VarianceScaling", "config": {"scale": -1.0}}, None),
        ({"class_name": "VarianceScaling", "config": {"scale": float("nan")}}, None),
        ({"class_name": "Constant", "config": {"value": 0.5}}, None), ("constant", None),
        ("ones", None), ("Zeros", None), ({"class_name": "Ones"}, None), ([], None),
        (lambda shape, dtype=None: np.full(shape, 0.25), None),
        (lambda shape, dtype=None: np.zeros(3), None),
        (lambda shape, dtype=None: None, None),
        (lambda shape, dtype=None: np.full(shape, 0.5).tolist(), None),
        ({"class_name": "RandomUniform", "config": {"minval": "a"}}, None),
        ({"class_name": "GlorotUniform", "config": {"seed": "a"}}, None),
        ({"class_name": "GlorotUniform", "config": {"seed": -1}}, None),
        ({"class_name": "Orthogonal", "config": {"gain": "a"}}, None),
        ({"class_name": "TruncatedNormal", "config": {"mean": None}}, None),
        ({"class_name": "Constant", "config": {"value": [1, 2]}}, None),
        ({"class_name": "GlorotUniform", "config": {"input_axes": [0, 1], "output_axes": [2]}},
         None),
        ({"class_name": "GlorotUniform", "config": {"input_axes": [9], "output_axes": [0]}},
         None),
    ]


def constructor_garbage(rng):
    """{argument: [(value, known bug or None), ...]} -- drawn fresh for each case."""
    plain = lambda values: [(v, None) for v in values]  # noqa: E731
    regularizer = plain(["nope", 3, "l1", "L2", {"class_name": "L1", "config": {"l1": 0.1}},
                         {"class_name": "Nope"}, {"class_name": "L1", "config": 3}, [],
                         lambda w: 0.0])
    constraint = plain(["nope", 3, "non_neg", {"class_name": "MaxNorm"}, {"class_name": 1},
                        lambda w: w])
    return {
        "filters": plain(scalar_garbage() + [1, 3, 17, np.int64(4), np.array(3), 2 ** 40,
                                             2 ** 62, 10 ** 30]),
        "kernel_size": plain(tuple_garbage()),
        "strides": plain(tuple_garbage()),
        "dilation_rate": plain(tuple_garbage()),
        "output_padding": plain(tuple_garbage() + [None, 0, (0, 0, 0), (1, 0, 0)]),
        "padding": plain([None, 1, "", "full", "causal", b"same", ["same"], "same ",
                          "SaMe", np.str_("valid"), 1.5]),
        "data_format": plain([1, "", "NDHWC", b"channels_last", "channels_last ",
                              np.str_("channels_first"), "CHANNELS_LAST", ["channels_last"],
                              None]),
        "activation": plain(["nope", 3, "Relu", "glu", "threshold", {"config": "relu"},
                             {"config": 3}, {"config": None}, ["relu"], np.tanh, double,
                             "sparse_sigmoid", b"relu"]),
        "use_bias": [(v, None) for v in (None, "no", 0, 1, np.bool_(False), 2.5, [], "")]
        + [(np.array([1, 2]), None)],
        "kernel_initializer": initializer_garbage(),
        "bias_initializer": initializer_garbage(),
        "kernel_regularizer": regularizer,
        "bias_regularizer": regularizer,
        "activity_regularizer": regularizer,
        "kernel_constraint": constraint,
        "bias_constraint": constraint,
        "name": plain([3, "a/b", b"x", None, "", "\u00fc" * 3, "x" * 1000, ["n"]]),
        "dtype": plain(["int32", np.int32, "complex64", "nope", 3, [], {"foo": 1},
                        {"config": {"name": 3}}, "bfloat16", "mixed_bfloat16", "float", object,
                        np.float16, "mixed_float16", np.dtype("float64"), float, "float8_e4m3fn",
                        {"class_name": "DTypePolicy", "config": {"name": "float16"}}]),
        "trainable": plain([1, "yes", None, np.bool_(True), 0.0]),
        "autocast": [(v, None) for v in (None, "no", 0, 1.0)]
        + [(np.array([1, 2]), None)],
        "num_threads": plain([0, -1, 1.5, "2", True, None, np.int64(2), np.float64(2.0), 2 ** 31,
                              10 ** 6, 3, [2]]),
    }


EXTRA_KWARGS = [{"foo": 1}, {"groups": 2}, {"rank": 3}, {"batch_input_shape": (None, 2, 2, 2, 1)},
                {"Filters": 2}, {"kernel": 3}]


# ---------------------------------------------------------------------- cases
@dataclasses.dataclass
class Case:
    batch: int
    index: int
    family: str
    kwargs: dict
    steps: list                   # ("build", shape) | ("call", x, kw) | ("set_weights", w)
    #                               | ("compute_output_shape", shape)
    suspects: tuple = ()          # the arguments holding garbage
    known: str = None             # a known bug this case triggers for sure
    huge: bool = False            # run under tracemalloc with HUGE_BUDGET

    def describe(self):
        steps = []
        for step in self.steps:
            steps.append(f"{step[0]}({', '.join(describe(v) for v in step[1:])})")
        return (f"case {self.batch}/{self.index} [{self.family}] suspects={list(self.suspects)} "
                f"Conv3DTranspose(**{describe(self.kwargs)}) then {'; '.join(steps)}")


def describe(value, limit=300):
    """A short, safe description of any generated value."""
    try:
        if isinstance(value, np.ndarray):
            text = (f"ndarray(shape={value.shape}, dtype={value.dtype}, strides={value.strides}, "
                    f"C={value.flags.c_contiguous}, F={value.flags.f_contiguous}, "
                    f"aligned={value.flags.aligned}, writeable={value.flags.writeable})")
        elif isinstance(value, dict):
            text = "{" + ", ".join(f"{k!r}: {describe(v, 120)}" for k, v in value.items()) + "}"
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
            text = type(value).__name__ + "(" + ", ".join(describe(v, 120) for v in value) + ")"
        else:
            text = repr(value)
    except Exception as error:  # noqa: BLE001 -- Unprintable and friends
        text = f"<{type(value).__name__}: repr fails: {type(error).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def pick(rng, items):
    return items[int(rng.integers(len(items)))]


def triple(rng, low, high):
    if rng.random() < 0.5:
        return int(rng.integers(low, high + 1))
    return tuple(int(v) for v in rng.integers(low, high + 1, 3))


def as3(value):
    return (value,) * 3 if isinstance(value, int) else tuple(value)


def intended_format(value):
    """The data_format a (possibly garbage) value means, for shaping the input."""
    if isinstance(value, str) and value.lower() == "channels_first":
        return "channels_first"
    return "channels_last"


def base_kwargs(rng):
    """A valid constructor call with small sizes."""
    strides = triple(rng, 1, 3)
    dilation = triple(rng, 1, 2) if max(as3(strides)) == 1 and rng.random() < 0.4 else 1
    kwargs = {"filters": int(pick(rng, [1, 2, 3, 4, 5, 8, 9, 16, 17])),
              "kernel_size": triple(rng, 1, 3), "strides": strides,
              "padding": pick(rng, ["valid", "same", "SAME", "Valid"]),
              "dilation_rate": dilation}
    if rng.random() < 0.3:
        kwargs["output_padding"] = tuple(int(rng.integers(0, s)) for s in as3(strides))
    if rng.random() < 0.4:
        kwargs["data_format"] = pick(rng, ["channels_last", "channels_first", "Channels_First",
                                           None])
    if rng.random() < 0.6:
        kwargs["activation"] = pick(rng, ACTIVATION_POOL + [np.tanh, double])
    if rng.random() < 0.3:
        kwargs["use_bias"] = bool(rng.random() < 0.5)
    if rng.random() < 0.4:
        kwargs["dtype"] = pick(rng, ["float32", "float64", "float16", "mixed_float16", np.float64,
                                     {"class_name": "DTypePolicy", "config": {"name": "float64"}}])
    if rng.random() < 0.3:
        kwargs["kernel_initializer"] = pick(rng, [
            "glorot_uniform", "ones", "random_normal", "he_normal", "orthogonal",
            "lecun_uniform", {"class_name": "RandomUniform",
                              "config": {"minval": -1.0, "maxval": 1.0, "seed": 7}}])
    if rng.random() < 0.3:
        kwargs["bias_initializer"] = pick(rng, ["zeros", "ones", "random_normal"])
    if rng.random() < 0.2:
        kwargs["num_threads"] = int(rng.integers(1, 4))
    if rng.random() < 0.1:
        kwargs["name"] = f"fuzz_{int(rng.integers(10 ** 6))}"
    if rng.random() < 0.1:
        kwargs["trainable"] = False
    return kwargs


def input_shape(rng, kwargs, channels, batch=None, spatial=None):
    batch = int(rng.integers(1, 3)) if batch is None else batch
    spatial = tuple(int(v) for v in rng.integers(1, 4, 3)) if spatial is None else spatial
    if intended_format(kwargs.get("data_format")) == "channels_first":
        return (batch, channels, *spatial)
    return (batch, *spatial, channels)


def valid_input(rng, kwargs, channels=None, dtype=None):
    channels = int(rng.integers(1, 5)) if channels is None else channels
    dtype = pick(rng, [np.float32, np.float64]) if dtype is None else dtype
    return rng.standard_normal(input_shape(rng, kwargs, channels)).astype(dtype)


def call_kwargs(rng):
    return {"num_threads": int(rng.integers(1, 4))} if rng.random() < 0.2 else {}


def make_constructor_case(rng, case):
    pools = constructor_garbage(rng)
    kwargs = base_kwargs(rng)
    if rng.random() < 0.08:
        extra = pick(rng, EXTRA_KWARGS)
        kwargs.update(extra)
        case.suspects = tuple(extra)
    else:
        names = list(pools)
        chosen = list(dict.fromkeys(pick(rng, names)
                                    for _ in range(1 if rng.random() < 0.7 else 2)))
        for name in chosen:
            value, known = pick(rng, pools[name])
            kwargs[name] = value
            case.known = case.known or known
        case.suspects = tuple(chosen)
    case.kwargs = kwargs
    case.steps = [("call", valid_input(rng, kwargs), call_kwargs(rng))]
    if rng.random() < 0.3:
        case.steps.append(("call", valid_input(rng, kwargs, channels=None), {}))
        # the second call's channels may differ from the first's: then "input" is to blame
        case.suspects += ("inputs",)


def garbage_inputs(rng, kwargs, channels):
    """Garbage (and some odd but valid) inputs for a layer expecting `channels` channels."""
    good = valid_input(rng, kwargs, channels)
    shape5 = input_shape(rng, kwargs, channels)
    fmt = intended_format(kwargs.get("data_format"))

    def with_channels(c):
        return rng.standard_normal(input_shape(rng, kwargs, c)).astype(np.float32)

    zero_axis = list(shape5)
    zero_axis[int(rng.integers(5))] = 0
    return [
        None, 0, 3.5, "abc", b"abc", True, np.float32(1), np.zeros(()), [], [[1, 2], [3]],
        [1, 2, 3], {"a": 1}, {1, 2}, object(), (v for v in range(3)), range(5), Unprintable(),
        np.zeros((2,) * int(rng.integers(0, 5))), np.zeros((1,) * 6 + (channels,)),
        np.zeros((1, 2, 2, 2, 2, 2, channels)),
        good.astype(np.complex64), good.astype(object), good.astype(str), good.astype("S4"),
        np.zeros(shape5, "M8[s]"), np.zeros(shape5, "m8[s]"), np.zeros(shape5, "V4"),
        np.zeros(shape5, [("a", "f4")]), with_channels(channels + 1),
        with_channels(max(channels - 1, 0)), with_channels(0), np.zeros(zero_axis, np.float32),
        np.zeros((0,) + shape5[1:], np.float32), good.tolist(), good.astype(object).tolist(),
        [good[0].tolist()] * good.shape[0], tuple(map(tuple, good.reshape(good.shape[0], -1))),
        list(good), np.ma.masked_array(good, mask=good > 0), memoryview(np.ascontiguousarray(good)),
        np.full(shape5, 2 ** 64 - 1, np.uint64), np.full(shape5, np.iinfo(np.int64).min),
        np.ones(shape5, np.longdouble), good.astype(np.float16),
        [[[[[2 ** 70] * channels]]]] if fmt == "channels_last" else [[[[[2 ** 70]]]] * channels],
        good[..., None], good[None], good.reshape(-1), np.asarray(good, order="F").T,
    ]


def make_input_case(rng, case):
    kwargs = base_kwargs(rng)
    kwargs.pop("num_threads", None)
    channels = int(rng.integers(1, 5))
    case.kwargs = kwargs
    case.steps = []
    if rng.random() < 0.5:        # built first: then the channel count is fixed
        case.steps.append(("call", valid_input(rng, kwargs, channels), {}))
    ckw = call_kwargs(rng)
    case.suspects = ("inputs",)
    if rng.random() < 0.15:
        ckw = {"num_threads": pick(rng, [0, -1, 1.5, "2", True, None, np.int64(2),
                                          np.float64(2.0), 2 ** 31, 10 ** 6, [1], 2 ** 64])}
        value = valid_input(rng, kwargs, channels)
        case.suspects = ("num_threads",)
    else:
        value = pick(rng, garbage_inputs(rng, kwargs, channels))
    case.steps.append(("call", value, ckw))


def unaligned(array):
    """A C-contiguous copy of `array` at an odd address."""
    raw = np.zeros(array.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, dtype=array.dtype, count=array.size, offset=1)
    out = out.reshape(array.shape)
    out[...] = array
    return out


def make_layout_case(rng, case):
    """Valid inputs in every layout and dtype: must work and match the reference."""
    kwargs = base_kwargs(rng)
    channels = int(rng.integers(1, 5))
    case.kwargs = kwargs
    shape = input_shape(rng, kwargs, channels)
    values = rng.standard_normal(shape)
    layout = pick(rng, ["fortran", "negative", "transposed", "strided", "readonly",
                        "big-endian", "dtype", "list", "tuple", "broadcast", "unaligned",
                        "memoryview", "masked", "zero-stride", "mixed"])
    if layout == "fortran":
        x = np.asfortranarray(values.astype(pick(rng, [np.float32, np.float64])))
    elif layout == "negative":
        axes = tuple(int(a) for a in np.flatnonzero(rng.random(5) < 0.5)) or (1,)
        x = np.flip(np.flip(values, axes).copy(), axes)
    elif layout == "transposed":
        order = tuple(int(a) for a in rng.permutation(5))
        x = np.ascontiguousarray(values.transpose(order)).transpose(np.argsort(order))
    elif layout == "strided":
        big = np.repeat(np.repeat(values, 2, axis=2), 3, axis=4)
        x = big[:, :, ::2, :, ::3]
    elif layout == "readonly":
        x = values.astype(np.float32)
        x.flags.writeable = False
    elif layout == "big-endian":
        x = values.astype(pick(rng, [">f4", ">f8", ">f2"]))
    elif layout == "dtype":
        dtype = pick(rng, [np.float16, np.int8, np.int16, np.int32, np.int64, np.uint8,
                           np.uint16, np.uint32, np.uint64, np.bool_, np.longdouble, ">i4",
                           "<u2"])
        x = (np.abs(values) * 3).astype(dtype) if np.dtype(dtype).kind in "iub" \
            else values.astype(dtype)
    elif layout == "list":
        x = values.tolist()
    elif layout == "tuple":
        x = tuple(values.tolist())
    elif layout == "broadcast":
        x = np.broadcast_to(values[:1, :1], shape)
    elif layout == "unaligned":
        x = unaligned(values.astype(pick(rng, [np.float32, np.float64])))
    elif layout == "memoryview":
        x = memoryview(values.astype(np.float32))
    elif layout == "masked":
        x = np.ma.masked_array(values, mask=values > 1)
    elif layout == "zero-stride":
        x = np.lib.stride_tricks.as_strided(values[..., :1], shape=shape,
                                            strides=values[..., :1].strides[:4] + (0,))
    else:
        x = values.astype(np.float32)[:, ::-1].transpose(0, 1, 2, 3, 4)
        x = np.asfortranarray(x)[..., ::-1]
    case.steps = [("call", x, call_kwargs(rng))]
    case.suspects = ()


def make_nonfinite_case(rng, case):
    """NaN and infinities in the input: propagated exactly like the reference."""
    kwargs = base_kwargs(rng)
    if callable(kwargs.get("activation")):
        kwargs["activation"] = pick(rng, ACTIVATION_POOL)
    case.kwargs = kwargs
    x = valid_input(rng, kwargs, dtype=pick(rng, [np.float32, np.float64, np.float16]))
    flat = x.reshape(-1)
    specials = [np.nan, np.inf, -np.inf]
    if x.dtype == np.float64 and rng.random() < 0.2:
        specials.append(1e300)       # finite in float64, infinite once cast to float32
    count = int(rng.integers(1, max(2, flat.size // 4)))
    flat[rng.integers(0, flat.size, count)] = rng.choice(specials, count)
    if rng.random() < 0.1:
        flat[:] = pick(rng, specials)
    case.steps = [("call", x, call_kwargs(rng))]
    case.suspects = ()


def make_huge_case(rng, case):
    """Sizes whose output would need petabytes: refused before anything big is allocated."""
    case.huge = True
    kwargs = base_kwargs(rng)
    kwargs.pop("num_threads", None)
    case.kwargs = kwargs
    channels = int(rng.integers(1, 4))
    kind = pick(rng, ["zero-axis", "broadcast", "batch", "filters", "kernel", "dilation",
                      "build", "kernel-two-axes"])
    if kind == "zero-axis":
        # a zero-size input (no memory) whose other axes are enormous
        axis_sizes = [2 ** int(rng.integers(20, 31)) for _ in range(2)]
        spatial = [0] + axis_sizes
        order = rng.permutation(3)
        spatial = tuple(int(spatial[i]) for i in order)
        shape = input_shape(rng, kwargs, channels, batch=int(rng.integers(0, 2)), spatial=spatial)
        x = np.empty(shape, np.uint8)
        case.suspects = ("inputs",)
    elif kind in ("broadcast", "batch"):
        spatial = (2 ** 14,) * 3 if kind == "broadcast" else (1, 1, 1)
        batch = 1 if kind == "broadcast" else 2 ** 40
        shape = input_shape(rng, kwargs, channels, batch=batch, spatial=spatial)
        x = np.broadcast_to(np.float32(1.0), shape)
        case.suspects = ("inputs",)
    else:
        x = valid_input(rng, kwargs, channels)
        if kind == "filters":
            kwargs["filters"] = pick(rng, [2 ** 40, 2 ** 50, 10 ** 18])
        elif kind == "kernel":
            kwargs["kernel_size"] = pick(rng, [(2 ** 20,) * 3, 2 ** 30, (1, 2 ** 62, 1)])
        elif kind == "dilation":
            kwargs["padding"] = "valid"          # ('same' keeps the output small)
            kwargs["strides"] = 1
            kwargs.pop("output_padding", None)
            kwargs["kernel_size"] = 3
            kwargs["dilation_rate"] = pick(rng, [2 ** 40, (2 ** 61, 1, 1), (1, 2 ** 30, 2 ** 30)])
        elif kind == "kernel-two-axes":
            kwargs["kernel_size"] = (2 ** 31, 2 ** 31, 1)
        kwargs.setdefault("filters", 2)
        case.suspects = {"filters": ("filters",), "kernel": ("kernel_size",),
                         "dilation": ("dilation_rate",), "build": ("input_shape",),
                         "kernel-two-axes": ("kernel_size",)}[kind]
        if kind == "build":
            shape = list(input_shape(rng, kwargs, 2 ** int(rng.integers(45, 62))))
            case.steps = [("build", tuple(shape))]
            return
    case.steps = [("call", x, {})]


def make_weights_case(rng, case):
    kwargs = base_kwargs(rng)
    case.kwargs = kwargs
    channels = int(rng.integers(1, 4))
    x = valid_input(rng, kwargs, channels)
    filters = kwargs["filters"]
    kshape = as3(kwargs["kernel_size"]) + (filters, channels)
    use_bias = kwargs.get("use_bias", True)
    k = rng.standard_normal(kshape)
    b = rng.standard_normal(filters)
    ragged = [[1.0], [1.0, 2.0]]
    full = (lambda kernel, bias=b: [kernel, bias] if use_bias else [kernel])  # noqa: E731
    candidates = [
        np.zeros(3), "ab", None, 3, {}, {"kernel": k}, [k], [k, b, b], [k.T, b], full(k),
        full(k.astype(np.complex128)), full(k.tolist(), b.tolist()), tuple(full(k)),
        full(k.astype(">f8")), full(k.astype(np.float16)), full(np.asfortranarray(k)),
        full(k[::-1]), full(k.astype(bool)), full(k.astype(object)), full(None), full(ragged),
        [k, "abc"], full(k * np.nan), full(np.broadcast_to(k[..., :1], kshape)),
        full(k[..., None]), [k, np.float64(1.0)], full(memoryview(np.ascontiguousarray(k))),
        full(k.astype(np.int64)), full((k * 1e300)), [k, b[:, None]], full(unaligned(k)),
        full(k, b.astype(">f4")), full(k, [2 ** 70] * filters),
    ]
    weights = pick(rng, candidates)
    case.steps = []
    if rng.random() < 0.1:
        case.steps.append(("set_weights", weights))          # before build: expects []
    case.steps += [("build", x.shape), ("set_weights", weights), ("call", x, call_kwargs(rng))]
    case.suspects = ("weights",)


def make_shape_case(rng, case):
    kwargs = base_kwargs(rng)
    case.kwargs = kwargs
    channels = int(rng.integers(1, 4))
    good = input_shape(rng, kwargs, channels)
    shape = pick(rng, [None, 5, "abcde", good[:4], good + (2,), good[:4] + (None,),
                       good[:4] + (-1,), (1, 2.0, 2, 2, 3), (1, True, 2, 2, 3), (None,) * 5,
                       list(good), np.array(good), good[:4] + (np.int64(channels),), range(1, 6),
                       (np.float64(1),) + good[1:], {1: 2}, "12345", (None,) + good[1:],
                       good[:1] + (0, 0, 0) + good[4:], (2 ** 63,) + good[1:], good])
    kind = pick(rng, ["build", "compute_output_shape"])
    case.steps = [(kind, shape)]
    if kind == "build":
        case.steps.append(("call", valid_input(rng, kwargs, channels), {}))
        case.suspects = ("input_shape", "inputs")
    else:
        case.suspects = ("input_shape",)


MAKERS = {"constructor": make_constructor_case, "input": make_input_case,
          "layout": make_layout_case, "nonfinite": make_nonfinite_case, "huge": make_huge_case,
          "weights": make_weights_case, "shape": make_shape_case}


def family_of(index):
    """Families in a fixed, interleaved order (so that every batch has its quota)."""
    rng = np.random.default_rng([SEED, 0xFA])
    order = rng.permutation(np.repeat(np.arange(len(FAMILIES)), list(FAMILIES.values())))
    return list(FAMILIES)[int(order[index])]


def make_case(batch, index):
    rng = np.random.default_rng([SEED, batch, index])
    family = family_of(index)
    case = Case(batch, index, family, {}, [])
    MAKERS[family](rng, case)
    return case


# ---------------------------------------------------------------------- the runner
KEYWORDS = {
    "inputs": ("input",),
    "input_shape": ("input_shape", "input"),
    "weights": ("weight",),
    # the catalogues of Keras objects name the family (tests/test_keras_errors.py)
    "kernel_initializer": ("kernel_initializer", "initializer"),
    "bias_initializer": ("bias_initializer", "initializer"),
    "kernel_regularizer": ("kernel_regularizer", "regularizer"),
    "bias_regularizer": ("bias_regularizer", "regularizer"),
    "activity_regularizer": ("activity_regularizer", "regularizer"),
    "kernel_constraint": ("kernel_constraint", "constraint"),
    "bias_constraint": ("bias_constraint", "constraint"),
}
SIZE_ARGUMENTS = {"filters", "kernel_size", "strides", "dilation_rate", "output_padding",
                  "inputs", "input_shape"}
RESOURCE_PHRASE = "would have shape"       # the layer's allocation check


def names_a_suspect(message, suspects):
    text = message.lower()
    for suspect in suspects:
        if any(word.lower() in text for word in KEYWORDS.get(suspect, (suspect,))):
            return True
        if suspect in SIZE_ARGUMENTS and RESOURCE_PHRASE in text:
            return True
    return False


def is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2 ** 40


def known_bug_before(layer, step, case):
    """The known bug this step would trigger, if any (None: run it).

    Every bug this used to recognise before running a step (K1-K12, K14) is fixed;
    K13 is recognised after the call, where its values are left uncompared.
    """
    return None


def run_step(layer, step):
    kind = step[0]
    if kind == "build":
        layer.build(step[1])
        return None
    if kind == "set_weights":
        layer.set_weights(step[1])
        return None
    if kind == "compute_output_shape":
        shape = layer.compute_output_shape(step[1])
        concrete = tuple(step[1])
        if all(is_int(v) for v in concrete) and all(is_int(v) for v in shape) \
                and max(shape) < 64 and math.prod(shape) < 10 ** 6:
            # a concrete small shape: the call must give exactly that shape
            produced = layer(np.zeros(tuple(int(v) for v in concrete), np.float32)).shape
            assert list(produced) == list(shape), (produced, shape)
        return None
    x, kwargs = step[1], step[2]
    return layer(x, **kwargs)


def run_case(case):
    """-> (outcome, detail).  outcome: ok | ValueError | TypeError | known:<id> | FAIL:<why>."""
    import deconv3d
    if case.known:
        return f"known:{case.known}", ""
    caught = []
    results = []
    layer = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layer = deconv3d.Conv3DTranspose(**case.kwargs)
            for step in case.steps:
                known = known_bug_before(layer, step, case)
                if known:
                    return f"known:{known}", ""
                output = run_step(layer, step)
                if step[0] == "call":
                    results.append((step[1], output))
    except (ValueError, TypeError) as error:
        message = safe_str(error, limit=None)
        if not case.suspects:
            return "FAIL:error-on-valid-case", f"{type(error).__name__}: {message}"
        if not names_a_suspect(message, case.suspects):
            return "FAIL:message-names-no-argument", f"{type(error).__name__}: {message[:500]}"
        return type(error).__name__, message[:200]
    except Exception as error:  # noqa: BLE001 -- any other class is a finding
        return "FAIL:other-exception", f"{type(error).__name__}: {safe_str(error)}"
    notes = []
    try:
        for inputs, output in results:
            notes += check_call(layer, inputs, output)
    except AssertionError as error:
        return "FAIL:wrong-result", safe_str(error)
    except Exception as error:  # noqa: BLE001 -- the oracle itself failed
        return "FAIL:oracle-error", f"{type(error).__name__}: {safe_str(error)}"
    if "K13" in notes:
        return "known:K13-nonfinite-weights", "values not compared"
    complex_warning = getattr(np, "exceptions", np).ComplexWarning
    if caught and case.family == "weights" and all(
            issubclass(w.category, complex_warning) for w in caught):
        # set_weights with complex values: the imaginary part is dropped with NumPy's
        # ComplexWarning, as Keras 3 (JAX) does too
        return "ok", ",".join(notes + ["complex-weights-warned-like-keras"])
    if caught:
        messages = [f"{w.category.__name__}: {w.message}" for w in caught]
        return "FAIL:warning", "; ".join(messages)[:300]
    return "ok", ",".join(notes)


def safe_str(error, limit=500):
    try:
        return str(error)[:limit]
    except Exception:  # noqa: BLE001
        return f"<str() of {type(error).__name__} fails>"


def limit_address_space():
    """Turn runaway allocations into MemoryError (skipped under sanitizers and valgrind)."""
    try:
        import resource
    except ImportError:
        return
    if SANITIZER or "valgrind" in os.environ.get("LD_PRELOAD", ""):
        return
    try:
        with open("/proc/self/statm") as handle:
            size = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    limit = size + ADDRESS_SPACE_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def worker(batch, verbose=False):
    """Run one batch; print one JSON line per failure and a final summary line."""
    limit_address_space()
    counts = {}
    failures = []
    notes = {}
    started = time.perf_counter()
    for index in range(CASES_PER_BATCH):
        sys.stderr.write(f"@{index}\n")
        sys.stderr.flush()
        case = make_case(batch, index)
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        if case.huge:
            tracemalloc.start()
        try:
            outcome, detail = run_case(case)
        finally:
            peak = 0
            if case.huge:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            faulthandler.cancel_dump_traceback_later()
        if case.huge and peak > HUGE_BUDGET and not outcome.startswith("known:"):
            outcome, detail = "FAIL:allocated-too-much", f"peak {peak} bytes; {outcome} {detail}"
        if outcome == "ok" and detail:
            for note in detail.split(","):
                notes[note] = notes.get(note, 0) + 1
        key = f"{case.family}|{outcome}"
        counts[key] = counts.get(key, 0) + 1
        if outcome.startswith("FAIL") or verbose:
            record = {"case": case.describe(), "outcome": outcome, "detail": detail}
            if outcome.startswith("FAIL"):
                failures.append(record)
            if verbose:
                print(json.dumps(record), flush=True)
    summary = {"batch": batch, "cases": CASES_PER_BATCH, "counts": counts,
               "failures": failures[:50], "failure_count": len(failures), "notes": notes,
               "seconds": round(time.perf_counter() - started, 2)}
    print("SUMMARY " + json.dumps(summary), flush=True)


# ---------------------------------------------------------------------- pytest side
def package_parent():
    import deconv3d
    return os.path.dirname(os.path.dirname(os.path.abspath(deconv3d.__file__)))


def run_worker(batch, keras_home):
    """Run one batch in a subprocess; returns its summary (or raises with the case)."""
    env = dict(os.environ, KERAS_HOME=keras_home, PYTHONFAULTHANDLER="1",
               DECONV3D_FUZZ_PACKAGE=package_parent())
    command = [sys.executable, os.path.abspath(__file__), "--worker", str(batch)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=BATCH_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        return {"batch": batch, "crash": f"batch timed out after {BATCH_TIMEOUT} s",
                "stderr": (error.stderr or b"")[-3000:] if isinstance(error.stderr, bytes)
                else (error.stderr or "")[-3000:]}
    lines = [line for line in done.stdout.splitlines() if line.startswith("SUMMARY ")]
    if done.returncode == 0 and lines:
        return json.loads(lines[-1][len("SUMMARY "):])
    started = [line for line in done.stderr.splitlines() if line.startswith("@")]
    index = int(started[-1][1:]) if started else None
    where = make_case(batch, index).describe() if index is not None else "before the first case"
    stderr = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("@"))
    return {"batch": batch, "crash": f"worker exited with status {done.returncode} during {where}",
            "stderr": stderr[-5000:]}


_results = {}
_results_lock = threading.Lock()
_pool = None


def _batch_result(batch, selected, keras_home):
    """Start every selected batch (two at a time) on first use; wait for this one."""
    global _pool
    with _results_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(PARALLEL_WORKERS)
            for b in selected:
                _results[b] = _pool.submit(run_worker, b, keras_home)
        if batch not in _results:
            _results[batch] = _pool.submit(run_worker, batch, keras_home)
    return _results[batch].result()


_summaries = {}


@pytest.fixture(scope="module")
def keras_home_for_workers(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fuzz-keras-home"))


@pytest.mark.parametrize("batch", range(BATCHES))
def test_fuzz_batch(batch, request, keras_home_for_workers):
    selected = sorted(int(item.callspec.params["batch"]) for item in request.session.items
                      if getattr(item, "originalname", None) == "test_fuzz_batch")
    summary = _batch_result(batch, selected, keras_home_for_workers)
    assert "crash" not in summary, f"{summary['crash']}\n{summary['stderr']}"
    _summaries[batch] = summary
    assert sum(summary["counts"].values()) == CASES_PER_BATCH
    failures = summary["failures"]
    assert not failures, (f"{summary['failure_count']} failing cases, e.g.:\n"
                          + "\n".join(json.dumps(f) for f in failures[:10]))


def test_fuzz_case_count_and_outcomes(capsys):
    """Runs after the batches: at least 10,000 cases ran, with the outcome table."""
    if len(_summaries) < BATCHES:
        pytest.skip(f"only {len(_summaries)} of {BATCHES} batches ran (and passed) here")
    total, by_outcome, by_family, notes = 0, {}, {}, {}
    for summary in _summaries.values():
        for key, count in summary["counts"].items():
            family, outcome = key.split("|", 1)
            total += count
            by_outcome[outcome] = by_outcome.get(outcome, 0) + count
            by_family.setdefault(family, {})
            by_family[family][outcome] = by_family[family].get(outcome, 0) + count
        for note, count in summary["notes"].items():
            notes[note] = notes.get(note, 0) + count
    assert total == TOTAL_CASES >= 10_000
    assert not any(outcome.startswith("FAIL") for outcome in by_outcome)
    for outcome in ("ok", "ValueError", "TypeError"):
        assert by_outcome.get(outcome, 0) > 500, by_outcome      # every kind is exercised
    with capsys.disabled():
        print(f"\nfuzz: {total} cases in {BATCHES} batches "
              f"({sum(s['seconds'] for s in _summaries.values()):.1f} s of worker time)")
        for outcome, count in sorted(by_outcome.items()):
            print(f"  {outcome:40s} {count:6d}")
        for family, outcomes in sorted(by_family.items()):
            print(f"  {family:12s} " + ", ".join(f"{o}={c}" for o, c in sorted(outcomes.items())))
        if notes:
            print(f"  notes on successes: {notes}")


# ---------------------------------------------------------------------- in-process checks
def test_generator_is_deterministic_and_covers_every_family():
    assert make_case(3, 17).describe() == make_case(3, 17).describe()
    families = [family_of(i) for i in range(CASES_PER_BATCH)]
    assert {f: families.count(f) for f in FAMILIES} == FAMILIES


def test_nan_positions_match_the_reference_for_every_activation():
    """A direct, in-process check: every fused and whole-axis activation propagates NaN/inf."""
    import deconv3d
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 3, 3)).astype(np.float32)
    x[0, 1, 2, 1, 0] = np.nan
    x[1, 0, 0, 0, 1] = np.inf
    x[1, 2, 3, 2, 2] = -np.inf
    for name in ACTIVATION_POOL:
        if name in ("celu",) or name in ("softmax", "log_softmax"):
            continue          # celu: K6; softmax family: K7 (warnings), both below
        layer = deconv3d.Conv3DTranspose(4, 3, strides=(2, 1, 2), padding="same",
                                         activation=name, bias_initializer="random_normal")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = layer(x)
        check_call(layer, x, y)      # NaN positions exactly those of the reference


def test_huge_output_is_refused_before_allocating():
    """An input needing no memory whose output would need petabytes: a ValueError, with
    NumPy never asked for more than a few MiB, and the process's memory unchanged."""
    import deconv3d
    x = np.broadcast_to(np.float32(1.0), (1, 2 ** 14, 2 ** 14, 2 ** 14, 2))   # 16 TiB view
    layer = deconv3d.Conv3DTranspose(4, 3, strides=2)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="would have shape"):
            layer(x)
        empty = np.empty((1, 0, 2 ** 30, 2 ** 30, 2), np.uint8)
        with pytest.raises(ValueError, match="output"):
            layer(empty)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < HUGE_BUDGET, peak


# ---------------------------------------------------------------------- known bugs
def run_python(code, timeout=60):
    """Run code in a fresh interpreter importing the same deconv3d; -> (status, output)."""
    env = dict(os.environ, DECONV3D_FUZZ_PACKAGE=package_parent())
    prelude = ("import os, sys; sys.path.insert(0, os.environ['DECONV3D_FUZZ_PACKAGE']); "
               "import numpy as np, deconv3d\n")
    try:
        done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    return done.returncode, (done.stdout + done.stderr)[-2000:]


def bug(key):
    return pytest.mark.xfail(strict=True, reason=f"{key}: {KNOWN_BUGS[key]}")


def test_long_kernel_axis():
    status, output = run_python("""
        layer = deconv3d.Conv3DTranspose(1, (1, 1, 150), kernel_initializer="ones")
        y = layer(np.ones((1, 1, 1, 1, 1)), num_threads=1)
        assert y.shape == (1, 1, 1, 150, 1) and np.all(y == 1), y
        print("fine")
    """)
    assert status == 0 and "fine" in output, (status, output)


def test_huge_thread_count_is_refused():
    import deconv3d
    layer = deconv3d.Conv3DTranspose(1, 2)
    with pytest.raises(ValueError, match="num_threads"):
        layer(np.ones((1, 2, 2, 2, 1)), num_threads=2 ** 31)
    status, output = run_python("""
        try:
            deconv3d.Conv3DTranspose(1, 2)(np.ones((1, 2, 2, 2, 1)), num_threads=10 ** 6)
        except ValueError:
            print("refused")
    """)
    assert status == 0 and "refused" in output, (status, output)


def test_huge_strides_are_refused_quickly():
    status, output = run_python("""
        try:
            deconv3d.Conv3DTranspose(1, 1, strides=10_000)(np.ones((1, 1, 1, 1, 1)))
        except ValueError as error:
            print("refused:", error)
    """, timeout=10)
    assert status == 0 and "refused" in output, (status, output)


def test_dilation_beyond_int64_is_a_value_error():
    import deconv3d
    with pytest.raises(ValueError):
        deconv3d.Conv3DTranspose(1, 2, dilation_rate=2 ** 64)(np.ones((1, 1, 1, 1, 1)))


def test_zero_channels_do_not_bypass_the_size_check():
    import deconv3d
    with pytest.raises(ValueError):
        deconv3d.Conv3DTranspose(2 ** 40, 1)(np.ones((1, 1, 1, 1, 0)))     # bias: 8 TiB


def test_celu_propagates_nan():
    import deconv3d
    layer = deconv3d.Conv3DTranspose(1, 1, activation="celu", use_bias=False,
                                     kernel_initializer="ones")
    assert np.isnan(layer(np.full((1, 1, 1, 1, 1), np.nan))).all()


def test_non_finite_values_raise_no_warnings():
    import deconv3d
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deconv3d.Conv3DTranspose(2, 1)(np.full((1, 1, 1, 1, 1), 1e300))       # -> inf
        x = np.ones((1, 1, 1, 1, 1), np.float32)
        x[0, 0, 0, 0, 0] = np.inf
        deconv3d.Conv3DTranspose(2, 1, activation="softmax", kernel_initializer="ones")(x)


def test_huge_broadcast_input_is_refused_with_a_value_error():
    import deconv3d
    x = np.broadcast_to(np.float32(0), (1, 1000, 1000, 100, 10_000))    # a 4 TB view
    with pytest.raises(ValueError):
        deconv3d.Conv3DTranspose(1, 1)(x)


def test_use_bias_array_error_names_the_argument():
    import deconv3d
    with pytest.raises((ValueError, TypeError), match="use_bias"):
        deconv3d.Conv3DTranspose(1, 1, use_bias=np.array([1, 2]))(np.ones((1, 1, 1, 1, 1)))


def test_initializer_config_errors_are_value_or_type_errors_naming_the_argument():
    import deconv3d
    bad = {"class_name": "GlorotUniform", "config": {"input_axes": [9], "output_axes": [0]}}
    with pytest.raises((ValueError, TypeError), match="kernel_initializer"):
        deconv3d.Conv3DTranspose(1, 1, kernel_initializer=bad)(np.ones((1, 1, 1, 1, 1)))


def test_softmax_of_an_empty_last_axis():
    import deconv3d
    layer = deconv3d.Conv3DTranspose(2, 2, padding="same", output_padding=0, activation="softmax",
                                     data_format="channels_first")
    assert layer(np.ones((1, 1, 1, 1, 1))).shape == (1, 2, 0, 0, 0)       # as Keras


def test_empty_output_with_enormous_axes_names_the_output():
    import deconv3d
    x = np.empty((0, 2 ** 30, 2 ** 30, 1, 1), np.uint8)
    with pytest.raises(ValueError, match="output|input"):
        deconv3d.Conv3DTranspose(8, 1)(x)


@bug("K13-nonfinite-weights")
def test_infinite_weights_meet_the_zeros_like_keras():
    import deconv3d
    from reference import conv3d_transpose
    layer = deconv3d.Conv3DTranspose(1, (3, 1, 1), strides=(2, 1, 1), use_bias=False)
    x = np.ones((1, 4, 1, 1, 1), np.float32)
    layer.build(x.shape)
    kernel = np.ones((3, 1, 1, 1, 1))
    kernel[0] = np.inf
    layer.set_weights([kernel])
    with np.errstate(invalid="ignore"):
        expected = conv3d_transpose(x, kernel, None, (2, 1, 1))    # [inf nan inf nan ... nan]
    np.testing.assert_array_equal(np.isnan(layer(x)), np.isnan(expected))


def test_unaligned_input():
    """Right on x86; under UBSan (tests/sanitize.sh) the misaligned loads abort the run."""
    status, output = run_python("""
        layer = deconv3d.Conv3DTranspose(2, 2, kernel_initializer="ones")
        raw = np.zeros(4 * 2 * 2 * 2 * 3 + 1, np.uint8)
        x = np.frombuffer(raw.data, np.float32, count=24, offset=1).reshape(1, 2, 2, 2, 3)
        x[...] = 1
        assert not x.flags.aligned
        y = layer(x)
        assert y.max() == 24, y
        print("fine")
    """)
    assert status == 0 and "fine" in output, (status, output)


# ---------------------------------------------------------------------- script entry
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=int, help="run one batch of cases")
    parser.add_argument("--show", type=int, nargs=2, metavar=("BATCH", "INDEX"),
                        help="describe one case and run it in this process")
    parser.add_argument("--verbose", action="store_true")
    arguments = parser.parse_args()
    package = os.environ.get("DECONV3D_FUZZ_PACKAGE")
    if package and package not in sys.path:
        sys.path.insert(1, package)
    os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="deconv3d-fuzz-"))
    if arguments.show:
        case = make_case(*arguments.show)
        print(case.describe())
        print(run_case(case))
    elif arguments.worker is not None:
        worker(arguments.worker, arguments.verbose)
    else:
        parser.print_help()


if __name__ == "__main__":
    faulthandler.enable()
    main()
