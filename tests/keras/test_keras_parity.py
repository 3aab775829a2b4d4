"""deconv3d against keras.layers.Conv3DTranspose (Keras 3 on JAX): outputs, shapes, configs.

Keras is the reference throughout: every expected value below is computed by
Keras on the same input and weights, never copied from deconv3d.

The random sweep runs Keras's layer through ``jax.jit(layer.stateless_call)``:
that is Keras's own ``call`` on the layer's variables, compiled as one XLA
program instead of one program per operation, which makes each configuration
about five times cheaper.  The Keras layers there are built by a symbolic call
(``layer(keras.KerasTensor(shape))``), which goes through Keras's own
``__call__``/``build`` path.  The explicit edge cases further down call the
Keras layer eagerly, ``keras_layer(x)``, exactly as a user would.
"""

import contextlib
import json
import math
import warnings

import numpy as np
import pytest

import deconv3d
from deconv3d import activations as our_activations
from reference import conv3d_transpose, relative_error

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
FORMATS = ("channels_last", "channels_first")

# Every activation name deconv3d accepts, except 'threshold', which Keras cannot
# call without its extra arguments either; None means no activation.
ACTIVATIONS = [None] + sorted(n for n in our_activations.NAMES if n != "threshold")

N_SEEDS = 40             # pytest cases in the random sweep
CONFIGS_PER_SEED = 10    # configurations compared in each of them

# Output dtypes where deconv3d and Keras are known to disagree (see the xfail tests
# test_output_dtype_*): the sweep still compares their values, at float32 tolerance.
KNOWN_DTYPE_DIFFERENCES = {("tanh", "float64")}

# Building a Keras kernel with a random initializer compiles a JAX PRNG program per
# shape (about a second each); the weights are replaced by set_weights anyway.
CHEAP_INIT = dict(kernel_initializer="zeros")


# ---------------------------------------------------------------------- helpers
def input_shape(batch, spatial, channels, data_format):
    if data_format == "channels_last":
        return (batch, *spatial, channels)
    return (batch, channels, *spatial)


def random_weights(rng, kernel_shape, filters, use_bias):
    """Kernel scaled so that outputs are O(1), and a bias; float64 arrays."""
    fan = math.prod(kernel_shape[:3]) * max(kernel_shape[4], 1)
    kernel = rng.standard_normal(kernel_shape) / math.sqrt(fan)
    weights = [kernel]
    if use_bias:
        weights.append(0.5 * rng.standard_normal(filters))
    return weights


@contextlib.contextmanager
def expected_keras_warnings():
    """Keras warns about a softmax over an axis of length 1 (the result is all ones)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are using a softmax over axis",
                                category=UserWarning)
        yield


def per_axis(value):
    return [value] * 3 if isinstance(value, int) else list(value)


def crashes_xla(kwargs, shape):
    """True for the configurations that abort the whole process inside XLA.

    jax 0.10.2 / XLA's algebraic simplifier (ConvOperandSwapper) mishandles an
    axis whose transposed convolution has kernel 2, stride 2 and zero padding,
    i.e. padding='same' with output_padding 0 there: when it decides to swap the
    convolution operands it keeps that axis's window (size 2) although the new
    right-hand side is the input, and a CHECK fails ("Window dimensions do not
    match RHS shape") unless the input length on that axis is 2.  This is a
    crash of Keras itself (eager or jitted), nothing to do with deconv3d, so such
    configurations are not sent to Keras.
    """
    if kwargs.get("padding", "valid").lower() != "same" or kwargs.get("output_padding") is None:
        return False
    channels_last = kwargs.get("data_format") in (None, "channels_last")
    spatial = shape[1:4] if channels_last else shape[2:5]
    return any(k == 2 and s == 2 and op == 0 and n != 2 for k, s, op, n in zip(
        per_axis(kwargs["kernel_size"]), per_axis(kwargs.get("strides", 1)),
        per_axis(kwargs["output_padding"]), spatial))


def as_json(value):
    """A config as JSON would carry it (tuples become lists)."""
    return json.loads(json.dumps(value))


def compare_outputs(actual, expected, dtype, activation, pre_activation=None):
    """Relative error of deconv3d's output against Keras's, with a readable message."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != Keras {expected.shape}"
    tolerance = TOLERANCE[dtype]
    if (activation, dtype) in KNOWN_DTYPE_DIFFERENCES:
        tolerance = TOLERANCE["float32"]
    else:
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != Keras {expected.dtype}"
    if activation == "hard_shrink" and pre_activation is not None:
        # hard_shrink jumps from 0 to +-0.5 at |x| = 0.5: rounding may put a value
        # on either side, so positions right at the jump are not compared.
        near_jump = np.abs(np.abs(pre_activation) - 0.5) < 1e-4
        actual = np.where(near_jump, 0.0, actual)
        expected = np.where(near_jump, 0.0, expected)
    error = relative_error(actual, expected)
    assert error <= tolerance, f"relative error {error:.3g}"


def keras_jit_output(jax, keras_layer, x):
    """Keras's output for x, by jit-compiling the layer's stateless call."""
    def run(trainable, non_trainable, inputs):
        return keras_layer.stateless_call(trainable, non_trainable, inputs)[0]

    trainable = [v.value for v in keras_layer.trainable_variables]
    non_trainable = [v.value for v in keras_layer.non_trainable_variables]
    return np.asarray(jax.jit(run)(trainable, non_trainable, x))


def spell(rng, values):
    """Pass a per-axis argument the ways users do: int, tuple or list."""
    values = [int(v) for v in values]
    choice = rng.random()
    if len(set(values)) == 1 and choice < 0.4:
        return values[0]
    return list(values) if choice < 0.7 else tuple(values)


def random_case(rng, index, keras):
    """One random configuration: constructor kwargs, input shape, dtype."""
    activation = ACTIVATIONS[index % len(ACTIVATIONS)]     # every name, in turn
    for _ in range(100):
        data_format = FORMATS[int(rng.integers(2))]
        dtype = "float32" if rng.random() < 0.5 else "float64"
        kernel = rng.integers(1, 5, 3)
        strides = np.ones(3, int) if rng.random() < 0.3 else rng.integers(1, 4, 3)
        dilation = np.ones(3, int)
        if strides.max() == 1 and rng.random() < 0.6:
            dilation = rng.integers(1, 4, 3)
        padding = str(rng.choice(["valid", "same", "valid", "same", "VALID", "Same"]))
        output_padding = None
        if rng.random() < 0.5:
            output_padding = spell(rng, [rng.integers(0, s) for s in strides])
        filters = int(rng.integers(1, 5))
        if activation == "glu" and data_format == "channels_last":
            filters = int(rng.choice([2, 4]))
        kwargs = dict(filters=filters, kernel_size=spell(rng, kernel),
                      strides=spell(rng, strides), padding=padding,
                      data_format=data_format, output_padding=output_padding,
                      dilation_rate=spell(rng, dilation), activation=activation,
                      use_bias=bool(rng.random() < 0.7), **CHEAP_INIT)
        if dtype == "float64":
            kwargs["dtype"] = "float64"
        batch = int(rng.choice([0, 1, 1, 1, 2, 2]))
        shape = input_shape(batch, [int(n) for n in rng.integers(1, 6, 3)],
                            int(rng.integers(1, 5)), data_format)
        if crashes_xla(kwargs, shape):
            continue
        if activation == "glu":
            # glu halves the LAST axis (a spatial one for channels_first): it must be even.
            probe = keras.layers.Conv3DTranspose(**kwargs)
            if probe.compute_output_shape(shape)[-1] % 2:
                continue
        return kwargs, shape, dtype
    raise AssertionError("no valid configuration found")


def compare_with_keras(keras, jax, rng, kwargs, shape, dtype):
    """Build both layers with kwargs, give them the same weights, compare outputs."""
    x = rng.standard_normal(shape).astype(dtype)
    keras_layer = keras.layers.Conv3DTranspose(**kwargs)
    with expected_keras_warnings():
        symbolic = keras_layer(keras.KerasTensor(shape, dtype=dtype))     # builds it
        weights = random_weights(rng, keras_layer.kernel.shape, kwargs["filters"],
                                 kwargs.get("use_bias", True))
        keras_layer.set_weights(weights)
        expected = keras_jit_output(jax, keras_layer, x)

    ours = deconv3d.Conv3DTranspose(**kwargs)
    ours(x)                                 # builds it, like the Keras layer's first call
    ours.set_weights(weights)
    actual = ours(x)

    assert ours.compute_output_shape(shape) == list(keras_layer.compute_output_shape(shape))
    if kwargs.get("activation") != "glu":   # (glu halves an axis after the convolution)
        assert tuple(symbolic.shape) == expected.shape      # Keras agrees with itself
    pre = None
    if kwargs.get("activation") == "hard_shrink":
        pre = conv3d_transpose(x, weights[0], weights[1] if len(weights) > 1 else None,
                               ours.strides, ours.padding, ours.output_padding,
                               ours.dilation_rate, ours.data_format)
    compare_outputs(actual, expected, dtype, kwargs.get("activation"), pre)


@pytest.fixture(scope="module")
def jax(keras):
    return pytest.importorskip("jax")


# ---------------------------------------------------------------------- random sweep
def sweep_cases(seed, keras):
    rng = np.random.default_rng([2024, seed])
    return [random_case(rng, seed * CONFIGS_PER_SEED + i, keras) + (rng,)
            for i in range(CONFIGS_PER_SEED)]


@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_random_configurations_match_keras(keras, jax, seed):
    failures = []
    for kwargs, shape, dtype, rng in sweep_cases(seed, keras):
        try:
            compare_with_keras(keras, jax, rng, kwargs, shape, dtype)
        except Exception as error:      # collect, so one run reports every failing config
            failures.append(f"{kwargs}, input {shape} {dtype}: "
                            f"{type(error).__name__}: {error}")
    assert not failures, (f"{len(failures)} of {CONFIGS_PER_SEED} configurations differ "
                          f"from Keras:\n" + "\n".join(failures))


def test_random_sweep_covers_the_parameter_space(keras):
    """The generator really produces what the sweep claims to test."""
    cases = [case for seed in range(N_SEEDS) for case in sweep_cases(seed, keras)]
    assert len(cases) >= 300

    seen = {key: set() for key in ("activation", "data_format", "dtype", "padding",
                                   "use_bias", "kernel", "stride", "dilation", "op",
                                   "batch", "spelling")}
    kernel_larger_than_input = False
    for kwargs, shape, dtype, _ in cases:
        seen["activation"].add(kwargs["activation"])
        seen["data_format"].add(kwargs["data_format"])
        seen["dtype"].add(dtype)
        seen["padding"].add(kwargs["padding"])
        seen["use_bias"].add(kwargs["use_bias"])
        seen["kernel"].update(per_axis(kwargs["kernel_size"]))
        seen["stride"].update(per_axis(kwargs["strides"]))
        seen["dilation"].update(per_axis(kwargs["dilation_rate"]))
        seen["op"].add(None if kwargs["output_padding"] is None else
                       max(per_axis(kwargs["output_padding"])))
        seen["batch"].add(shape[0])
        seen["spelling"].add(type(kwargs["kernel_size"]).__name__)
        spatial = shape[1:4] if kwargs["data_format"] == "channels_last" else shape[2:]
        kernel_larger_than_input |= any(
            k > n for k, n in zip(per_axis(kwargs["kernel_size"]), spatial))
        if max(per_axis(kwargs["dilation_rate"])) > 1:
            assert max(per_axis(kwargs["strides"])) == 1
    assert seen["activation"] == set(ACTIVATIONS)
    assert seen["data_format"] == set(FORMATS)
    assert seen["dtype"] == {"float32", "float64"}
    assert {"valid", "same", "VALID", "Same"} <= seen["padding"]
    assert seen["use_bias"] == {True, False}
    assert seen["kernel"] == {1, 2, 3, 4}
    assert seen["stride"] == {1, 2, 3} and seen["dilation"] == {1, 2, 3}
    assert seen["op"] == {None, 0, 1, 2}
    assert seen["batch"] == {0, 1, 2}
    assert seen["spelling"] == {"int", "list", "tuple"}
    assert kernel_larger_than_input


def test_activation_names_are_exactly_keras_names(keras):
    from keras.src.activations import ALL_OBJECTS_DICT
    assert set(our_activations.NAMES) == set(ALL_OBJECTS_DICT)


# ---------------------------------------------------------------------- explicit cases
def eager_compare(keras, rng, kwargs, shape, dtype="float32", x=None):
    """Build and call the Keras layer eagerly, copy weights into ours, compare.

    Returns (ours, our output, Keras's output, weights).
    """
    assert not crashes_xla(kwargs, shape)
    kwargs = {**CHEAP_INIT, **kwargs}
    if x is None:
        x = rng.standard_normal(shape).astype(dtype)
    keras_layer = keras.layers.Conv3DTranspose(**kwargs)
    with expected_keras_warnings():
        keras_layer(x)
        weights = random_weights(rng, keras_layer.kernel.shape, kwargs["filters"],
                                 kwargs.get("use_bias", True))
        keras_layer.set_weights(weights)
        expected = np.asarray(keras_layer(x))
    ours = deconv3d.Conv3DTranspose(**kwargs)
    ours(x)
    ours.set_weights(weights)
    actual = ours(x)
    compare_outputs(actual, expected, dtype, kwargs.get("activation"))
    return ours, actual, expected, weights


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("strides,kernel,padding", [
    (1, 3, "same"), (2, 2, "valid"), (2, 3, "same"), ((3, 1, 2), (1, 4, 2), "valid")])
def test_empty_batch(keras, data_format, dtype, strides, kernel, padding):
    kwargs = dict(filters=3, kernel_size=kernel, strides=strides, padding=padding,
                  data_format=data_format, dtype=dtype)
    _, actual, expected, _ = eager_compare(keras, np.random.default_rng(0), kwargs,
                                           input_shape(0, (3, 2, 4), 2, data_format), dtype)
    assert actual.shape[0] == 0 and actual.shape == expected.shape


# Keras accepts a zero-length spatial axis; it then returns what JAX computes, which
# is bias (and activation) only, over a length that depends on the padding.  The
# (kernel, strides, output_padding) below apply to the empty first axis; the other
# two axes use kernel (2, 1), strides (1, 2) and output_padding (0, 1).
ZERO_AXIS_CASES = [
    # kernel, strides, padding, output_padding of the empty axis
    (1, 1, "valid", None), (2, 1, "valid", None), (1, 3, "valid", None),
    (3, 2, "valid", None), (4, 3, "valid", 2), (2, 3, "valid", 0), (3, 1, "same", None),
    (2, 2, "same", None), (4, 3, "same", None), (3, 3, "same", 2), (1, 2, "same", 0),
    (2, 2, "same", 1), (3, 2, "same", 0), (1, 1, "same", 0), (3, 1, "same", 0),
]
# An even kernel, 'same' padding and output_padding 0 on the empty axis: JAX's
# padding is then negative and Keras returns an empty axis (so does deconv3d).
ZERO_AXIS_NEGATIVE = [(2, 1, "same", 0), (4, 1, "same", 0), (4, 3, "same", 0),
                      (4, 2, "same", 0)]

def zero_axis_kwargs(kernel, strides, padding, output_padding, **extra):
    return dict(filters=2, kernel_size=(kernel, 2, 1), strides=(strides, 1, 2),
                padding=padding,
                output_padding=None if output_padding is None else (output_padding, 0, 1),
                **extra)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("kernel,strides,padding,output_padding",
                         ZERO_AXIS_CASES + ZERO_AXIS_NEGATIVE)
def test_zero_length_spatial_axis(keras, data_format, kernel, strides, padding,
                                  output_padding):
    kwargs = zero_axis_kwargs(kernel, strides, padding, output_padding,
                              data_format=data_format, activation="sigmoid")
    shape = input_shape(2, (0, 3, 2), 3, data_format)
    ours, actual, expected, weights = eager_compare(
        keras, np.random.default_rng(1), kwargs, shape)
    # nothing reaches the output: every position is sigmoid(bias)
    channel_axis = 4 if data_format == "channels_last" else 1
    bias = np.expand_dims(weights[1], [a for a in range(5) if a != channel_axis])
    np.testing.assert_allclose(actual, np.broadcast_to(1 / (1 + np.exp(-bias)),
                                                       expected.shape), rtol=1e-6)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("kernel,strides,padding,output_padding,spatial", [
    (4, 1, "valid", None, (1, 2, 3)),
    (4, 2, "same", None, (1, 1, 2)),
    ((4, 3, 4), (3, 2, 1), "valid", (2, 1, 0), (2, 1, 3)),
    ((4, 4, 3), 3, "same", (1, 2, 0), (1, 2, 1)),
    (3, 1, "same", None, (1, 1, 1)),
    ((4, 2, 3), 1, "valid", None, (1, 1, 1)),
])
def test_kernel_larger_than_input(keras, data_format, kernel, strides, padding,
                                  output_padding, spatial):
    kwargs = dict(filters=3, kernel_size=kernel, strides=strides, padding=padding,
                  output_padding=output_padding, data_format=data_format)
    eager_compare(keras, np.random.default_rng(2), kwargs,
                  input_shape(2, spatial, 2, data_format))


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("kernel,strides,padding,output_padding", [
    (1, 2, "valid", None), (1, 3, "valid", None), (2, 3, "valid", None),
    (1, 3, "same", None), (2, 3, "same", (2, 1, 0)), ((1, 2, 1), (3, 3, 2), "valid", (0, 2, 1)),
    (1, 2, "same", (1, 1, 1)), (3, 3, "valid", None),
])
def test_kernel_smaller_than_stride_leaves_bias_only_gaps(keras, data_format, kernel, strides,
                                                          padding, output_padding):
    kwargs = dict(filters=2, kernel_size=kernel, strides=strides, padding=padding,
                  output_padding=output_padding, data_format=data_format)
    shape = input_shape(1, (3, 2, 4), 3, data_format)
    ours, actual, expected, weights = eager_compare(keras, np.random.default_rng(3),
                                                    kwargs, shape)
    # Positions that no input reaches: the naive reference gives 0 there for an
    # all-ones input and all-ones kernel (everything else is >= 1).
    reach = conv3d_transpose(np.ones(shape), np.ones_like(weights[0]), None, ours.strides,
                             ours.padding, ours.output_padding, ours.dilation_rate,
                             data_format)
    gaps = reach == 0
    if kernel != 3:                     # k < stride: there must be gaps
        assert gaps.any()
    bias = np.broadcast_to(weights[1].reshape((1, 1, 1, 1, -1) if data_format ==
                                               "channels_last" else (1, -1, 1, 1, 1)),
                           expected.shape)
    np.testing.assert_allclose(expected[gaps], bias[gaps], rtol=1e-6)   # Keras: bias
    np.testing.assert_allclose(actual[gaps], bias[gaps], rtol=1e-6)     # ours: bias


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3)])
def test_same_padding_with_every_output_padding(keras, data_format, kernel, stride, dilation):
    rng = np.random.default_rng(4)
    compared = 0
    for op in range(stride):
        # output_padding on one axis, a different one on the others
        kwargs = dict(filters=2, kernel_size=(kernel, 2, 3), strides=(stride, stride, 1),
                      padding="same", output_padding=(op, stride - 1 - op, 0),
                      dilation_rate=(dilation, 1, 1), data_format=data_format)
        shape = input_shape(1, (3, 2, 2), 2, data_format)
        if not crashes_xla(kwargs, shape):
            eager_compare(keras, rng, kwargs, shape)
            compared += 1
    assert compared


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("filters", [2, 4])
def test_glu_channels_last_splits_filters(keras, dtype, filters):
    kwargs = dict(filters=filters, kernel_size=2, strides=2, activation="glu", dtype=dtype)
    _, actual, _, _ = eager_compare(keras, np.random.default_rng(5), kwargs,
                                    (2, 2, 3, 1, 3), dtype)
    assert actual.shape[-1] == filters // 2


def test_glu_channels_first_splits_the_last_spatial_axis(keras):
    kwargs = dict(filters=3, kernel_size=2, strides=2, activation="glu",
                  data_format="channels_first")
    _, actual, _, _ = eager_compare(keras, np.random.default_rng(6), kwargs, (1, 2, 2, 3, 3))
    assert actual.shape == (1, 3, 4, 6, 3)


@pytest.mark.parametrize("activation", ["softmax", "log_softmax", "sparsemax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("data_format", FORMATS)
def test_axis_activations_use_the_last_axis(keras, activation, dtype, data_format):
    kwargs = dict(filters=4, kernel_size=(2, 3, 2), strides=(1, 2, 2), padding="same",
                  activation=activation, data_format=data_format, dtype=dtype)
    rng = np.random.default_rng(7)
    _, actual, _, _ = eager_compare(keras, rng, kwargs,
                                    input_shape(2, (2, 3, 3), 3, data_format), dtype)
    if activation == "softmax":     # sums to one over the last axis, whatever the format
        np.testing.assert_allclose(actual.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["relu", "gelu", "softmax", "silu", "hard_sigmoid", "elu"])
def test_keras_activation_functions_as_callables(keras, name):
    kwargs = dict(filters=3, kernel_size=3, strides=2, padding="same",
                  activation=getattr(keras.activations, name))
    eager_compare(keras, np.random.default_rng(8), kwargs, (1, 2, 3, 2, 2))


@pytest.mark.parametrize("dtype", ["float16", "mixed_float16"])
@pytest.mark.parametrize("activation", [None, "tanh"])
def test_half_precision_policies(keras, dtype, activation):
    rng = np.random.default_rng(9)
    kwargs = dict(filters=3, kernel_size=3, strides=2, padding="same", dtype=dtype,
                  activation=activation)
    x = rng.standard_normal((2, 3, 2, 3, 4)).astype("float16")
    keras_layer = keras.layers.Conv3DTranspose(**kwargs)
    keras_layer(x)
    weights = random_weights(rng, keras_layer.kernel.shape, 3, True)
    keras_layer.set_weights(weights)
    expected = np.asarray(keras_layer(x))
    ours = deconv3d.Conv3DTranspose(**kwargs)
    ours(x)
    ours.set_weights(weights)
    actual = ours(x)
    assert actual.dtype == expected.dtype == np.float16
    assert [w.dtype for w in ours.get_weights()] == [
        np.asarray(w).dtype for w in keras_layer.get_weights()]
    # Keras may accumulate in float16; ours in float32, rounded once
    assert relative_error(actual, expected) <= 5e-3


def output_dtypes(keras, activation, dtype):
    x = np.random.default_rng(11).standard_normal((1, 2, 2, 2, 3)).astype(
        "float32" if dtype == "mixed_float16" else dtype)
    kwargs = dict(filters=4, kernel_size=2, activation=activation, dtype=dtype, **CHEAP_INIT)
    expected = np.asarray(keras.layers.Conv3DTranspose(**kwargs)(x)).dtype
    actual = deconv3d.Conv3DTranspose(**kwargs)(x).dtype
    return actual, expected


DTYPE_CASES = [(activation, dtype) for activation in ACTIVATIONS
               for dtype in ("float32", "float64", "float16", "mixed_float16")
               # the known difference has its own strict xfail test below
               if not (activation == "tanh" and dtype == "float64")]


@pytest.mark.parametrize("activation,dtype", DTYPE_CASES)
def test_output_dtype_matches_keras(keras, activation, dtype):
    actual, expected = output_dtypes(keras, activation, dtype)
    assert actual == expected


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="DISAGREEMENT (Keras quirk): with dtype='float64' "
                   "and activation='tanh', Keras returns float32 (keras.ops.tanh casts to "
                   "result_type(x.dtype, float), computing tanh in float32); deconv3d "
                   "returns float64, the layer's compute dtype, on purpose.")
def test_output_dtype_tanh_float64(keras):
    actual, expected = output_dtypes(keras, "tanh", "float64")
    assert actual == expected


# ---------------------------------------------------------------------- compute_output_shape
def random_shape_case(rng):
    kernel = rng.integers(1, 5, 3)
    strides = rng.integers(1, 4, 3)
    dilation = np.ones(3, int)
    if rng.random() < 0.4:
        strides = np.ones(3, int)
        dilation = rng.integers(1, 4, 3)
    output_padding = None
    if rng.random() < 0.5:
        output_padding = tuple(int(rng.integers(0, s)) for s in strides)
    data_format = FORMATS[int(rng.integers(2))]
    kwargs = dict(filters=int(rng.integers(1, 9)), kernel_size=tuple(int(k) for k in kernel),
                  strides=tuple(int(s) for s in strides),
                  padding=str(rng.choice(["valid", "same"])), output_padding=output_padding,
                  dilation_rate=tuple(int(d) for d in dilation), data_format=data_format)
    dims = [None if rng.random() < 0.35 else int(rng.integers(1, 40)) for _ in range(5)]
    return kwargs, tuple(dims)


@pytest.mark.parametrize("seed", range(5))
def test_compute_output_shape_with_unknown_dims(keras, seed):
    rng = np.random.default_rng([7, seed])
    for _ in range(40):
        kwargs, shape = random_shape_case(rng)
        expected = keras.layers.Conv3DTranspose(**kwargs).compute_output_shape(shape)
        actual = deconv3d.Conv3DTranspose(**kwargs).compute_output_shape(shape)
        assert isinstance(actual, list)
        assert actual == list(expected), (kwargs, shape)


def test_compute_output_shape_fully_unknown(keras):
    for data_format in FORMATS:
        kwargs = dict(filters=5, kernel_size=3, strides=2, data_format=data_format)
        shape = (None,) * 5
        assert (deconv3d.Conv3DTranspose(**kwargs).compute_output_shape(shape)
                == list(keras.layers.Conv3DTranspose(**kwargs).compute_output_shape(shape)))


@pytest.mark.parametrize("kernel,strides,padding,output_padding", ZERO_AXIS_CASES)
def test_compute_output_shape_of_empty_axis_matches_what_keras_returns(
        keras, kernel, strides, padding, output_padding):
    # Keras's own compute_output_shape uses (n - 1) * s + ..., which does not
    # describe what its call returns for n == 0; ours must describe the call.
    kwargs = zero_axis_kwargs(kernel, strides, padding, output_padding,
                              kernel_initializer="zeros")
    shape = (1, 0, 2, 3, 2)
    returned = np.asarray(keras.layers.Conv3DTranspose(**kwargs)(np.zeros(shape, "float32")))
    assert deconv3d.Conv3DTranspose(**kwargs).compute_output_shape(shape) == list(
        returned.shape)


# ---------------------------------------------------------------------- config
CONFIG_CASES = {
    "defaults": dict(),
    "per-axis": dict(kernel_size=(1, 2, 3), strides=(3, 1, 2), padding="same",
                     output_padding=(2, 0, 1), data_format="channels_first"),
    "upper-case padding": dict(padding="SAME"),
    "dilation": dict(dilation_rate=(2, 3, 1)),
    "swish written as silu": dict(activation="swish"),
    "hard_swish": dict(activation="hard_swish"),
    "softmax no bias": dict(activation="softmax", use_bias=False),
    "he_normal": dict(kernel_initializer="he_normal", bias_initializer="ones"),
    "orthogonal": dict(kernel_initializer="orthogonal"),
    "variance_scaling": dict(kernel_initializer="variance_scaling"),
    "initializer dict": dict(kernel_initializer={
        "class_name": "VarianceScaling",
        "config": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform", "seed": 3}}),
    "random_normal seeded": dict(kernel_initializer=dict(class_name="RandomNormal",
                                                         config=dict(stddev=0.2, seed=1))),
    "lecun + truncated": dict(kernel_initializer="lecun_uniform",
                              bias_initializer="truncated_normal"),
    "l1": dict(kernel_regularizer="l1"),
    "l2": dict(kernel_regularizer="l2", bias_regularizer="l2"),
    "l1l2": dict(kernel_regularizer="l1l2"),
    "activity_regularizer": dict(activity_regularizer="l2"),
    "orthogonal_regularizer": dict(kernel_regularizer="orthogonal_regularizer"),
    "constraints": dict(kernel_constraint="max_norm", bias_constraint="non_neg"),
    "unit_norm, min_max_norm": dict(kernel_constraint="unit_norm",
                                    bias_constraint="min_max_norm"),
    "float64": dict(dtype="float64"),
    "mixed_float16": dict(dtype="mixed_float16"),
    "not trainable, named": dict(trainable=False, name="up3"),
    "everything": dict(kernel_size=(2, 3, 4), strides=2, padding="valid", output_padding=1,
                       activation="gelu", use_bias=False, kernel_initializer="he_uniform",
                       bias_initializer="zeros", kernel_regularizer="l1l2",
                       bias_regularizer="l1", activity_regularizer="l1",
                       kernel_constraint="non_neg", bias_constraint="max_norm",
                       dtype="float64", name="everything"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_from_keras_config_round_trips(keras, case):
    kwargs = {"filters": 4, "kernel_size": 3, **CONFIG_CASES[case]}
    keras_cfg = keras.layers.Conv3DTranspose(**kwargs).get_config()
    ours = deconv3d.Conv3DTranspose.from_config(keras_cfg)
    ours_cfg = ours.get_config()
    assert as_json(ours_cfg) == as_json(keras_cfg)
    assert list(ours_cfg) == list(keras_cfg), "key order differs"
    # and back: Keras reads our config and writes the same one
    back = keras.layers.Conv3DTranspose.from_config(ours_cfg).get_config()
    assert as_json(back) == as_json(keras_cfg)


def float32_factors(cfg):
    """The config with regularizer factors rounded to float32 (see the test below)."""
    cfg = as_json(cfg)
    for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
        if cfg.get(key):
            cfg[key]["config"] = {k: float(np.float32(v)) if isinstance(v, float) else v
                                  for k, v in cfg[key]["config"].items()}
    return cfg


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_same_arguments_give_the_same_config(keras, case):
    kwargs = {"filters": 4, "kernel_size": 3, "name": "same_name", **CONFIG_CASES[case]}
    keras_cfg = keras.layers.Conv3DTranspose(**kwargs).get_config()
    ours_cfg = deconv3d.Conv3DTranspose(**kwargs).get_config()
    assert float32_factors(ours_cfg) == float32_factors(keras_cfg)


@pytest.mark.parametrize("name", ["l1", "l2", "l1l2", "orthogonal_regularizer"])
def test_default_regularizer_factors_exactly(keras, jax, request, name):
    # Keras stores the factor as a tensor and writes float(tensor): 0.01 when JAX
    # runs with x64 enabled (as in this test suite), 0.009999999776482582 without.
    keras_cfg = keras.layers.Conv3DTranspose(2, 2, kernel_regularizer=name).get_config()
    ours_cfg = deconv3d.Conv3DTranspose(2, 2, kernel_regularizer=name).get_config()
    if jax.config.jax_enable_x64 and name in ("l1", "orthogonal_regularizer"):
        request.applymarker(pytest.mark.xfail(
            strict=True, raises=AssertionError,
            reason="DISAGREEMENT (environment-dependent): with JAX x64 enabled Keras "
            "writes the default l1/orthogonal factor as 0.01; deconv3d always writes "
            "float32(0.01) = 0.009999999776482582 (Keras's value with x64 disabled)"))
    assert as_json(ours_cfg["kernel_regularizer"]) == as_json(keras_cfg["kernel_regularizer"])


def test_config_of_a_built_layer_and_build_config(keras):
    kwargs = dict(filters=2, kernel_size=2, strides=2, name="built")
    x = np.ones((1, 2, 3, 4, 5), "float32")
    keras_layer = keras.layers.Conv3DTranspose(**kwargs)
    keras_layer(x)
    ours = deconv3d.Conv3DTranspose(**kwargs)
    ours(x)
    assert as_json(ours.get_config()) == as_json(keras_layer.get_config())
    assert as_json(ours.get_build_config()) == as_json(keras_layer.get_build_config())


def test_from_keras_config_computes_like_keras(keras):
    """A layer loaded from a Keras config, with Keras's weights, gives Keras's output."""
    rng = np.random.default_rng(10)
    keras_layer = keras.layers.Conv3DTranspose(3, (2, 3, 2), strides=(2, 1, 2), padding="same",
                                               activation="swish",
                                               data_format="channels_first")
    x = rng.standard_normal((2, 2, 3, 2, 3)).astype("float32")
    keras_layer(x)
    ours = deconv3d.Conv3DTranspose.from_config(keras_layer.get_config())
    ours.build(x.shape)
    ours.set_weights([np.asarray(w) for w in keras_layer.get_weights()])
    compare_outputs(ours(x), np.asarray(keras_layer(x)), "float32", "silu")


# ---------------------------------------------------------------------- initializers
# A kernel with very different fan_in (filters * receptive field = 40 * 24) and
# fan_out (in_channels * receptive field = 5 * 24), so a swapped fan rule shows.
INIT_KERNEL = dict(filters=40, kernel_size=(2, 3, 4))
INIT_INPUT = (1, 1, 1, 1, 5)

INITIALIZERS = {
    # name: distribution kind ("uniform": bounded by its limit; "truncated": bounded
    # by 2 standard deviations of the untruncated normal; "normal": no bound)
    "glorot_uniform": "uniform", "he_uniform": "uniform", "lecun_uniform": "uniform",
    "random_uniform": "uniform", "glorot_normal": "truncated", "he_normal": "truncated",
    "lecun_normal": "truncated", "truncated_normal": "truncated",
    "variance_scaling": "truncated", "random_normal": "normal", "orthogonal": "normal",
    "fan_out uniform": "uniform", "fan_avg normal": "normal",
}
INITIALIZER_IDS = {
    "fan_out uniform": {"class_name": "VarianceScaling",
                        "config": {"scale": 3.0, "mode": "fan_out", "distribution": "uniform"}},
    "fan_avg normal": {"class_name": "VarianceScaling",
                       "config": {"scale": 0.5, "mode": "fan_avg",
                                  "distribution": "untruncated_normal"}},
}


def initial_kernel(library, name):
    identifier = INITIALIZER_IDS.get(name, name)
    layer = library.Conv3DTranspose(kernel_initializer=identifier, **INIT_KERNEL)
    layer(np.ones(INIT_INPUT, "float32"))
    return np.asarray(layer.get_weights()[0], dtype=np.float64)


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_initializer_distribution_matches_keras(keras, name):
    expected = initial_kernel(keras.layers, name)
    actual = initial_kernel(deconv3d, name)
    assert actual.shape == expected.shape
    assert abs(actual.std() - expected.std()) <= 0.1 * expected.std(), \
        f"std {actual.std():.4g}, Keras {expected.std():.4g}"
    assert abs(actual.mean()) <= 0.1 * expected.std()
    kind = INITIALIZERS[name]
    if kind == "uniform":
        # 4800 draws come within 0.5% of the limit; nothing may exceed it
        limit = np.abs(expected).max()
        assert np.abs(actual).max() <= limit * 1.01
        assert np.abs(actual).max() >= limit * 0.98
        # and the distribution is flat: a quarter of the draws in each quarter
        hist = np.histogram(actual, bins=4, range=(-limit, limit))[0] / actual.size
        np.testing.assert_allclose(hist, 0.25, atol=0.03)
    elif kind == "truncated":
        assert np.abs(actual).max() <= np.abs(expected).max() * 1.05
        assert np.abs(actual).max() >= np.abs(expected).max() * 0.9
    else:
        # an untruncated normal: some draws beyond 2.5 sigma (about 1.2%)
        assert np.mean(np.abs(actual) > 2.5 * expected.std()) > 0.003


def test_orthogonal_initializer_is_orthogonal_like_keras(keras):
    expected = initial_kernel(keras.layers, "orthogonal")
    actual = initial_kernel(deconv3d, "orthogonal")
    # Keras flattens to (prod(shape[:-1]), shape[-1]); columns are orthonormal there
    expected_gram = expected.reshape(-1, expected.shape[-1]).T @ expected.reshape(
        -1, expected.shape[-1])
    actual_gram = actual.reshape(-1, actual.shape[-1]).T @ actual.reshape(-1, actual.shape[-1])
    np.testing.assert_allclose(actual_gram, expected_gram, atol=1e-5)


@pytest.mark.parametrize("name", ["zeros", "ones", {"class_name": "Constant",
                                                   "config": {"value": 0.25}}])
def test_deterministic_initializers_match_keras_exactly(keras, name):
    for bias_side in (False, True):
        kwargs = dict(filters=3, kernel_size=2)
        kwargs["bias_initializer" if bias_side else "kernel_initializer"] = name
        expected = keras.layers.Conv3DTranspose(**kwargs)
        expected.build((None, 2, 2, 2, 4))
        actual = deconv3d.Conv3DTranspose(**kwargs)
        actual.build((None, 2, 2, 2, 4))
        index = 1 if bias_side else 0
        np.testing.assert_array_equal(actual.get_weights()[index],
                                      np.asarray(expected.get_weights()[index]))
