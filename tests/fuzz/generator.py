"""The fuzz case generator: seeded garbage constructor arguments, inputs and weights.

The generator is a seeded NumPy Generator (no hypothesis: no shrinking, and fast);
any case is regenerated from (batch, index) alone, so a failure names the case
and ``python tests/fuzz/worker.py --show BATCH INDEX`` replays it.
"""

import dataclasses
import fractions

import numpy as np

SEED = 20261125
BATCHES = 10
CASES_PER_BATCH = 1000
TOTAL_CASES = BATCHES * CASES_PER_BATCH

# how many of each family of cases, in every batch (sums to CASES_PER_BATCH)
FAMILIES = {"constructor": 340, "input": 240, "layout": 150, "nonfinite": 110, "huge": 60,
            "weights": 50, "shape": 50}
assert sum(FAMILIES.values()) == CASES_PER_BATCH


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
    """For kernel_initializer / bias_initializer."""
    return [
        "nope", 3, None, "identity", "stft",
        "Initializer", {"class_name": "Nope"}, {"class_name": 3},
        {"class_name": "Zeros", "config": 3},
        {"class_name": "RandomNormal", "config": {"foo": 1}},
        {"class_name": "VarianceScaling", "config": {"mode": "x"}},
        {"class_name": "VarianceScaling", "config": {"distribution": "x"}},
        {"class_name": "VarianceScaling", "config": {"scale": -1.0}},
        {"class_name": "VarianceScaling", "config": {"scale": float("nan")}},
        {"class_name": "Constant", "config": {"value": 0.5}}, "constant",
        "ones", "Zeros", {"class_name": "Ones"}, [],
        lambda shape, dtype=None: np.full(shape, 0.25),
        lambda shape, dtype=None: np.zeros(3),
        lambda shape, dtype=None: None,
        lambda shape, dtype=None: np.full(shape, 0.5).tolist(),
        {"class_name": "RandomUniform", "config": {"minval": "a"}},
        {"class_name": "GlorotUniform", "config": {"seed": "a"}},
        {"class_name": "GlorotUniform", "config": {"seed": -1}},
        {"class_name": "Orthogonal", "config": {"gain": "a"}},
        {"class_name": "TruncatedNormal", "config": {"mean": None}},
        {"class_name": "Constant", "config": {"value": [1, 2]}},
        {"class_name": "GlorotUniform", "config": {"input_axes": [0, 1], "output_axes": [2]}},
        {"class_name": "GlorotUniform", "config": {"input_axes": [9], "output_axes": [0]}},
    ]


def constructor_garbage(rng):
    """{argument: [value, ...]} -- drawn fresh for each case."""
    regularizer = ["nope", 3, "l1", "L2", {"class_name": "L1", "config": {"l1": 0.1}},
                   {"class_name": "Nope"}, {"class_name": "L1", "config": 3}, [], lambda w: 0.0]
    constraint = ["nope", 3, "non_neg", {"class_name": "MaxNorm"}, {"class_name": 1},
                  lambda w: w]
    return {
        "filters": scalar_garbage() + [1, 3, 17, np.int64(4), np.array(3), 2 ** 40, 2 ** 62,
                                       10 ** 30],
        "kernel_size": tuple_garbage(),
        "strides": tuple_garbage(),
        "dilation_rate": tuple_garbage(),
        "output_padding": tuple_garbage() + [None, 0, (0, 0, 0), (1, 0, 0)],
        "padding": [None, 1, "", "full", "causal", b"same", ["same"], "same ", "SaMe",
                    np.str_("valid"), 1.5],
        "data_format": [1, "", "NDHWC", b"channels_last", "channels_last ",
                        np.str_("channels_first"), "CHANNELS_LAST", ["channels_last"], None],
        "activation": ["nope", 3, "Relu", "glu", "threshold", {"config": "relu"}, {"config": 3},
                       {"config": None}, ["relu"], np.tanh, double, "sparse_sigmoid", b"relu"],
        "use_bias": [None, "no", 0, 1, np.bool_(False), 2.5, [], "", np.array([1, 2])],
        "kernel_initializer": initializer_garbage(),
        "bias_initializer": initializer_garbage(),
        "kernel_regularizer": regularizer,
        "bias_regularizer": regularizer,
        "activity_regularizer": regularizer,
        "kernel_constraint": constraint,
        "bias_constraint": constraint,
        "name": [3, "a/b", b"x", None, "", "\u00fc" * 3, "x" * 1000, ["n"]],
        "dtype": ["int32", np.int32, "complex64", "nope", 3, [], {"foo": 1},
                  {"config": {"name": 3}}, "bfloat16", "mixed_bfloat16", "float", object,
                  np.float16, "mixed_float16", np.dtype("float64"), float, "float8_e4m3fn",
                  {"class_name": "DTypePolicy", "config": {"name": "float16"}}],
        "trainable": [1, "yes", None, np.bool_(True), 0.0],
        "autocast": [None, "no", 0, 1.0, np.array([1, 2])],
        "num_threads": [0, -1, 1.5, "2", True, None, np.int64(2), np.float64(2.0), 2 ** 31,
                        10 ** 6, 3, [2]],
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
            kwargs[name] = pick(rng, pools[name])
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
