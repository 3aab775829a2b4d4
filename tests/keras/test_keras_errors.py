"""deconv3d raises the exception class Keras raises, for the same bad arguments.

Keras often fails only when the layer is built or called, so each side is
judged by the first exception raised anywhere in "construct, then call on a
small valid input" (or construct, call, then ``set_weights`` / ``from_config``
for those cases).  Exceptions are compared by their basic class (a NumPy
``UFuncTypeError`` counts as the TypeError it subclasses).

Where Keras raises something other than ValueError/TypeError (AttributeError,
KeyError, IndexError, ...), deconv3d's documented behaviour (layer.py, Notes) is
a ValueError or TypeError instead: those cases assert Keras's odd class (so the
deviation stays documented) and ours.  Known disagreements are strict xfails.
"""

import json
import warnings

import numpy as np
import pytest

import deconv3d

X = np.ones((1, 3, 3, 3, 2), "float32")          # a valid channels_last input
X_CF = np.ones((1, 2, 3, 3, 3), "float32")       # the same for channels_first

BASIC_CLASSES = (ValueError, TypeError, AttributeError, KeyError, IndexError,
                 NotImplementedError, AssertionError)


def kind(error):
    """The basic class of an exception (None for no exception)."""
    if error is None:
        return None
    return next((c for c in BASIC_CLASSES if isinstance(error, c)), type(error))


def describe(stage, error):
    if error is None:
        return "no exception"
    return f"{type(error).__name__} at {stage}: {str(error)[:300]}"


def first_error(steps):
    """Run steps [(stage, fn)], each fn getting the previous result; (stage, error)."""
    value = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # only exceptions are compared here
        for stage, step in steps:
            try:
                value = step(value)
            except Exception as error:      # noqa: BLE001 -- any class is a result here
                return stage, error
    return None, None


def construct_and_call(cls, kwargs, x=X):
    return first_error([("construct", lambda _: cls(**kwargs)),
                        ("call", lambda layer: layer(x))])


def both(keras, scenario):
    """scenario(cls) -> (stage, error), for Keras's class then ours."""
    return scenario(keras.layers.Conv3DTranspose), scenario(deconv3d.Conv3DTranspose)


def assert_same_class(keras_result, our_result):
    (keras_stage, keras_error), (our_stage, our_error) = keras_result, our_result
    assert kind(our_error) is kind(keras_error), (
        f"Keras: {describe(keras_stage, keras_error)}\n"
        f"ours:  {describe(our_stage, our_error)}")


def xfail(reason, raises=AssertionError):
    return pytest.mark.xfail(strict=True, raises=raises, reason=reason)


# ---------------------------------------------------------------------- constructor arguments
HUGE_DIMENSION = xfail(
    "DISAGREEMENT (low priority): a kernel dimension beyond int64 (filters=10**20, "
    "kernel_size=(2**70, 1, 1)): Keras fails in JAX's PRNG with TypeError ('incompatible "
    "function arguments'); deconv3d's allocation check raises ValueError")

# id: (constructor overrides of filters=2, kernel_size=2; argument name; marks)
CONSTRUCTOR_CASES = {
    # filters
    "filters=0": ({"filters": 0}, "filters"),
    "filters=-1": ({"filters": -1}, "filters"),
    "filters=None": ({"filters": None}, "filters"),
    "filters=2.5": ({"filters": 2.5}, "filters"),
    "filters=2.0": ({"filters": 2.0}, "filters"),
    "filters=np.float64(2)": ({"filters": np.float64(2.0)}, "filters"),
    "filters='a'": ({"filters": "a"}, "filters"),
    "filters=[2]": ({"filters": [2]}, "filters"),
    "filters=1j": ({"filters": 1j}, "filters"),
    "filters=False": ({"filters": False}, "filters"),
    "filters=np.bool_": ({"filters": np.bool_(True)}, "filters"),
    "filters=np.array([2])": ({"filters": np.array([2])}, "filters"),
    "filters=10**20": ({"filters": 10 ** 20}, "filters", HUGE_DIMENSION),
    # kernel_size
    "kernel_size=0": ({"kernel_size": 0}, "kernel_size"),
    "kernel_size=-1": ({"kernel_size": -1}, "kernel_size"),
    "kernel_size=(0,1,1)": ({"kernel_size": (0, 1, 1)}, "kernel_size"),
    "kernel_size=(2,2)": ({"kernel_size": (2, 2)}, "kernel_size"),
    "kernel_size=(2,2,2,2)": ({"kernel_size": (2, 2, 2, 2)}, "kernel_size"),
    "kernel_size=(3.0,3,3)": ({"kernel_size": (3.0, 3, 3)}, "kernel_size"),
    "kernel_size=(2,2,np.float64)": ({"kernel_size": (2, 2, np.float64(2.0))}, "kernel_size"),
    "kernel_size=float array": ({"kernel_size": np.array([2.0, 2.0, 2.0])}, "kernel_size"),
    "kernel_size=('3',3,3)": ({"kernel_size": ("3", 3, 3)}, "kernel_size"),
    "kernel_size=('a',3,3)": ({"kernel_size": ("a", 3, 3)}, "kernel_size"),
    "kernel_size='3'": ({"kernel_size": "3"}, "kernel_size"),
    "kernel_size='333'": ({"kernel_size": "333"}, "kernel_size"),
    "kernel_size=np.int64(3)": ({"kernel_size": np.int64(3)}, "kernel_size"),
    "kernel_size=None": ({"kernel_size": None}, "kernel_size"),
    "kernel_size=2.5": ({"kernel_size": 2.5}, "kernel_size"),
    "kernel_size=False": ({"kernel_size": False}, "kernel_size"),
    "kernel_size=(2**70,1,1)": ({"kernel_size": (2 ** 70, 1, 1)}, "kernel_size",
                                HUGE_DIMENSION),
    # strides
    "strides=0": ({"strides": 0}, "strides"),
    "strides=-1": ({"strides": -1}, "strides"),
    "strides=(1,0,1)": ({"strides": (1, 0, 1)}, "strides"),
    "strides=(2,2)": ({"strides": (2, 2)}, "strides"),
    "strides=None": ({"strides": None}, "strides"),
    "strides=2.0": ({"strides": 2.0}, "strides"),
    "strides=np.int64(2)": ({"strides": np.int64(2)}, "strides"),
    "strides=('2',1,1)": ({"strides": ("2", 1, 1)}, "strides"),
    "strides=(2.5,1,1)": ({"strides": (2.5, 1, 1)}, "strides"),
    "strides=(2.0,1,1)": ({"strides": (2.0, 1, 1)}, "strides"),
    # dilation_rate
    "dilation_rate=0": ({"dilation_rate": 0}, "dilation_rate"),
    "dilation_rate=-1": ({"dilation_rate": -1}, "dilation_rate"),
    "dilation_rate=(1,1)": ({"dilation_rate": (1, 1)}, "dilation_rate"),
    "dilation_rate=None": ({"dilation_rate": None}, "dilation_rate"),
    "dilation_rate=('2',1,1)": ({"dilation_rate": ("2", 1, 1)}, "dilation_rate"),
    "dilation_rate=(2.0,1,1)": ({"dilation_rate": (2.0, 1, 1)}, "dilation_rate"),
    "strides>1 with dilation>1": ({"strides": (2, 1, 1), "dilation_rate": (1, 2, 1)},
                                  "dilation_rate"),
    "strides=2, dilation=3": ({"strides": 2, "dilation_rate": 3}, "dilation_rate"),
    # output_padding
    "output_padding=strides": ({"strides": 2, "output_padding": 2}, "output_padding"),
    "output_padding=1, strides=1": ({"output_padding": 1}, "output_padding"),
    "output_padding>strides per axis": ({"strides": (3, 2, 1), "output_padding": (2, 2, 0)},
                                        "output_padding"),
    "output_padding=-1": ({"strides": 2, "output_padding": -1}, "output_padding"),
    "output_padding=(1,1)": ({"strides": 2, "output_padding": (1, 1)}, "output_padding"),
    "output_padding='a'": ({"strides": 2, "output_padding": "a"}, "output_padding"),
    "output_padding=1.0": ({"strides": 2, "output_padding": 1.0}, "output_padding"),
    "output_padding=(1.0,0,0)": ({"strides": 2, "output_padding": (1.0, 0, 0)},
                                 "output_padding"),
    "output_padding=(0.0,0,0)": ({"strides": 2, "output_padding": (0.0, 0, 0)},
                                 "output_padding"),
    "output_padding=('1',0,0)": ({"strides": 2, "output_padding": ("1", 0, 0)},
                                 "output_padding"),
    # padding (None, numbers and tuples: see ODD_CASES)
    "padding='causal'": ({"padding": "causal"}, "padding"),
    "padding='full'": ({"padding": "full"}, "padding"),
    "padding=''": ({"padding": ""}, "padding"),
    "padding=b'same'": ({"padding": b"same"}, "padding"),
    # data_format
    "data_format='ndhwc'": ({"data_format": "ndhwc"}, "data_format"),
    "data_format=3": ({"data_format": 3}, "data_format"),
    "data_format=''": ({"data_format": ""}, "data_format"),
    # activation
    "activation='nope'": ({"activation": "nope"}, "activation"),
    "activation=3": ({"activation": 3}, "activation"),
    "activation='Relu'": ({"activation": "Relu"}, "activation"),
    "activation=dict nope": ({"activation": {"module": "keras.activations",
                                             "class_name": "function", "config": "nope",
                                             "registered_name": None}}, "activation"),
    "activation='threshold'": ({"activation": "threshold"}, "activation"),
    # initializers
    "kernel_initializer='nope'": ({"kernel_initializer": "nope"}, "kernel_initializer"),
    "kernel_initializer=3": ({"kernel_initializer": 3}, "kernel_initializer"),
    "kernel_initializer='identity'": ({"kernel_initializer": "identity"},
                                      "kernel_initializer"),
    "kernel_initializer='stft'": ({"kernel_initializer": "stft"}, "kernel_initializer"),
    "kernel_initializer=dict nope": ({"kernel_initializer": {"class_name": "Nope",
                                                             "config": {}}},
                                     "kernel_initializer"),
    "kernel_initializer VS mode": ({"kernel_initializer": {
        "class_name": "VarianceScaling", "config": {"mode": "x"}}}, "kernel_initializer"),
    "kernel_initializer VS distribution": ({"kernel_initializer": {
        "class_name": "VarianceScaling", "config": {"distribution": "x"}}},
        "kernel_initializer"),
    "kernel_initializer VS scale<0": ({"kernel_initializer": {
        "class_name": "VarianceScaling", "config": {"scale": -1.0}}}, "kernel_initializer"),
    "kernel_initializer Constant 'a'": ({"kernel_initializer": {
        "class_name": "Constant", "config": {"value": "a"}}}, "kernel_initializer"),
    "kernel_initializer TruncatedNormal stddev 'a'": ({"kernel_initializer": {
        "class_name": "TruncatedNormal", "config": {"stddev": "a"}}}, "kernel_initializer"),
    "kernel_initializer unknown key": ({"kernel_initializer": {
        "class_name": "RandomNormal", "config": {"foo": 1}}}, "kernel_initializer"),
    "kernel_initializer config not a dict": ({"kernel_initializer": {
        "class_name": "Zeros", "config": 3}}, "kernel_initializer"),
    "bias_initializer='nope'": ({"bias_initializer": "nope"}, "bias_initializer"),
    "bias_initializer=3": ({"bias_initializer": 3}, "bias_initializer"),
    # regularizers
    "kernel_regularizer='nope'": ({"kernel_regularizer": "nope"}, "kernel_regularizer"),
    "kernel_regularizer=3": ({"kernel_regularizer": 3}, "kernel_regularizer"),
    "kernel_regularizer l1<0": ({"kernel_regularizer": {"class_name": "L1",
                                                        "config": {"l1": -1.0}}},
                                "kernel_regularizer"),
    "kernel_regularizer l1='a'": ({"kernel_regularizer": {"class_name": "L1",
                                                          "config": {"l1": "a"}}},
                                  "kernel_regularizer"),
    "kernel_regularizer unknown key": ({"kernel_regularizer": {"class_name": "L1",
                                                               "config": {"foo": 1}}},
                                       "kernel_regularizer"),
    "bias_regularizer='nope'": ({"bias_regularizer": "nope"}, "bias_regularizer"),
    "activity_regularizer='nope'": ({"activity_regularizer": "nope"}, "activity_regularizer"),
    "activity_regularizer=3": ({"activity_regularizer": 3}, "activity_regularizer"),
    # constraints
    "kernel_constraint='nope'": ({"kernel_constraint": "nope"}, "kernel_constraint"),
    "kernel_constraint=3": ({"kernel_constraint": 3}, "kernel_constraint"),
    "kernel_constraint unknown key": ({"kernel_constraint": {"class_name": "MaxNorm",
                                                             "config": {"foo": 1}}},
                                      "kernel_constraint"),
    "bias_constraint='nope'": ({"bias_constraint": "nope"}, "bias_constraint"),
    # name, trainable
    "name=3": ({"name": 3}, "name"),
    "name='a/b'": ({"name": "a/b"}, "name"),
    "name=b'x'": ({"name": b"x"}, "name"),
    "trainable=1": ({"trainable": 1}, "trainable"),
    "trainable='yes'": ({"trainable": "yes"}, "trainable"),
    "trainable=None": ({"trainable": None}, "trainable"),
    "trainable=np.bool_": ({"trainable": np.bool_(True)}, "trainable"),
    # dtype
    "dtype='int32'": ({"dtype": "int32"}, "dtype"),
    "dtype=np.int32": ({"dtype": np.int32}, "dtype"),
    "dtype='uint8'": ({"dtype": "uint8"}, "dtype"),
    "dtype='bool'": ({"dtype": "bool"}, "dtype"),
    "dtype='complex64'": ({"dtype": "complex64"}, "dtype"),
    "dtype='nope'": ({"dtype": "nope"}, "dtype"),
    "dtype='float'": ({"dtype": "float"}, "dtype"),
    "dtype='mixed_float32'": ({"dtype": "mixed_float32"}, "dtype"),
    "dtype='float8_e4m3fn'": ({"dtype": "float8_e4m3fn"}, "dtype"),
    "dtype=dict without config": ({"dtype": {"foo": 1}}, "dtype"),
    "dtype=3": ({"dtype": 3}, "dtype"),
    "dtype=[]": ({"dtype": []}, "dtype"),
    # keyword arguments
    "foo=1": ({"foo": 1}, "foo"),
    "groups=2": ({"groups": 2}, "groups"),
    "batch_input_shape": ({"batch_input_shape": (None, 3, 3, 3, 2)}, "batch_input_shape"),
    "rank=3": ({"rank": 3}, "rank"),
}


def constructor_params():
    params = []
    for case_id, (overrides, argument, *marks) in CONSTRUCTOR_CASES.items():
        params.append(pytest.param(overrides, argument, id=case_id, marks=marks))
    return params


def constructor_kwargs(overrides):
    return {"filters": 2, "kernel_size": 2, **overrides}


@pytest.mark.parametrize("overrides,argument", constructor_params())
def test_bad_constructor_argument_same_class_as_keras(keras, overrides, argument):
    kwargs = constructor_kwargs(overrides)
    keras_result, our_result = both(keras, lambda cls: construct_and_call(cls, kwargs))
    assert keras_result[1] is not None or our_result[1] is not None, "not a bad argument"
    assert kind(keras_result[1]) in (ValueError, TypeError, None), \
        "Keras's class is odd: this case belongs in ODD_CASES"
    assert_same_class(keras_result, our_result)


# Cases where deconv3d (like Keras) raises nothing: no message to check.
OURS_ACCEPTS = set()
# Not argument validation: the layer's allocation check refuses, at build, a kernel
# that cannot fit in memory ("The kernel would have shape ...").
RESOURCE_ERRORS = {"filters=10**20", "kernel_size=(2**70,1,1)"}


def message_params():
    params = []
    for case_id, (overrides, argument, *_) in CONSTRUCTOR_CASES.items():
        if case_id in OURS_ACCEPTS | RESOURCE_ERRORS:
            continue
        params.append(pytest.param(overrides, argument, id=case_id))
    return params


@pytest.mark.parametrize("overrides,argument", message_params())
def test_our_constructor_error_names_the_argument(overrides, argument):
    stage, error = construct_and_call(deconv3d.Conv3DTranspose, constructor_kwargs(overrides))
    assert error is not None
    assert argument in str(error), describe(stage, error)


# arguments.py: "we raise ... always at construction time (Keras sometimes only fails
# when the layer is built)"; checked for the arguments it validates.
VALIDATED_AT_CONSTRUCTION = ("filters", "kernel_size", "strides", "dilation_rate",
                             "output_padding", "padding", "data_format", "name", "trainable",
                             "dtype", "foo", "groups", "batch_input_shape", "rank")


@pytest.mark.parametrize("overrides,argument", [
    pytest.param(overrides, argument, id=case_id)
    for case_id, (overrides, argument, *_) in CONSTRUCTOR_CASES.items()
    if argument in VALIDATED_AT_CONSTRUCTION and case_id not in RESOURCE_ERRORS])
def test_our_argument_errors_are_raised_at_construction(overrides, argument):
    stage, error = construct_and_call(deconv3d.Conv3DTranspose, constructor_kwargs(overrides))
    assert error is not None and stage == "construct", describe(stage, error)


# ---------------------------------------------------------------------- Keras's odd classes
def set_weights_steps(cls, weights, use_bias=True):
    return first_error([("construct", lambda _: cls(2, 2, use_bias=use_bias)),
                        ("call", lambda layer: (layer(X), layer)[1]),
                        ("set_weights", lambda layer: layer.set_weights(weights))])


ODD_CASES = {
    # id: (scenario(cls) -> (stage, error), the class Keras raises)
    "padding=None": (lambda cls: construct_and_call(cls, dict(filters=2, kernel_size=2,
                                                              padding=None)),
                     AttributeError),
    "padding=3": (lambda cls: construct_and_call(cls, dict(filters=2, kernel_size=2,
                                                           padding=3)), AttributeError),
    "padding=(1,1,1)": (lambda cls: construct_and_call(cls, dict(filters=2, kernel_size=2,
                                                                 padding=(1, 1, 1))),
                        AttributeError),
    "padding=[1,1,1]": (lambda cls: construct_and_call(cls, dict(filters=2, kernel_size=2,
                                                                 padding=[1, 1, 1])),
                        AttributeError),
    "kernel_initializer='Initializer'": (
        lambda cls: construct_and_call(cls, dict(filters=2, kernel_size=2,
                                                 kernel_initializer="Initializer")),
        NotImplementedError),
    "rank-6 input": (lambda cls: construct_and_call(cls, dict(filters=2, kernel_size=2),
                                                    np.ones((1, 3, 3, 3, 3, 2), "float32")),
                     IndexError),
    "rank-6 input channels_first": (
        lambda cls: construct_and_call(cls, dict(filters=2, kernel_size=2,
                                                 data_format="channels_first"),
                                       np.ones((1, 2, 3, 3, 3, 3), "float32")), IndexError),
    "compute_output_shape rank 6": (
        lambda cls: first_error([("construct", lambda _: cls(2, 2)),
                                 ("compute_output_shape",
                                  lambda layer: layer.compute_output_shape((1, 3, 3, 3, 3, 2)))]),
        IndexError),
    "glu with odd filters": (lambda cls: construct_and_call(
        cls, dict(filters=3, kernel_size=2, activation="glu")), AssertionError),
    "set_weights scalar kernel": (lambda cls: set_weights_steps(cls, [1.0, np.zeros(2)]),
                                  AttributeError),
    "set_weights None kernel": (lambda cls: set_weights_steps(cls, [None, np.zeros(2)]),
                                AttributeError),
    "set_weights ragged kernel": (lambda cls: set_weights_steps(cls, [[[1], [1, 2]],
                                                                      np.zeros(2)]),
                                  AttributeError),
}


@pytest.mark.parametrize("case", list(ODD_CASES))
def test_where_keras_raises_an_odd_class_we_raise_value_or_type_error(keras, case):
    scenario, keras_class = ODD_CASES[case]
    (keras_stage, keras_error), (our_stage, our_error) = both(keras, scenario)
    # the deviation: Keras's class is neither ValueError nor TypeError ...
    assert kind(keras_error) is keras_class, describe(keras_stage, keras_error)
    # ... and ours is one of them
    assert isinstance(our_error, (ValueError, TypeError)), describe(our_stage, our_error)


# ---------------------------------------------------------------------- documented deviations
def test_constant_initializer_by_name_is_zero(keras):
    """layer.py Notes: "constant" means Constant(0.0); Keras fails with KeyError."""
    kwargs = dict(filters=2, kernel_size=2, kernel_initializer="constant")
    keras_stage, keras_error = construct_and_call(keras.layers.Conv3DTranspose, kwargs)
    assert isinstance(keras_error, KeyError), describe(keras_stage, keras_error)
    layer = deconv3d.Conv3DTranspose(**kwargs)
    layer(X)
    assert np.all(layer.kernel == 0)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool"])
def test_integer_and_boolean_inputs_are_cast(keras, dtype):
    """layer.py Notes: integer and boolean inputs are cast (Keras raises TypeError)."""
    x = np.ones((1, 3, 3, 3, 2), dtype)
    keras_stage, keras_error = construct_and_call(keras.layers.Conv3DTranspose,
                                                  dict(filters=2, kernel_size=2), x)
    assert isinstance(keras_error, TypeError), describe(keras_stage, keras_error)
    layer = deconv3d.Conv3DTranspose(2, 2)
    assert np.array_equal(layer(x), layer(x.astype("float32")))
    assert layer(x).dtype == np.float32


def test_nested_list_input_is_accepted(keras):
    """layer.py Notes: array-likes are accepted (Keras raises ValueError)."""
    keras_stage, keras_error = construct_and_call(keras.layers.Conv3DTranspose,
                                                  dict(filters=2, kernel_size=2), X.tolist())
    assert isinstance(keras_error, ValueError), describe(keras_stage, keras_error)
    layer = deconv3d.Conv3DTranspose(2, 2)
    assert np.array_equal(layer(X.tolist()), layer(X))


@pytest.mark.parametrize("dtype", ["bfloat16", "mixed_bfloat16"])
def test_bfloat16_policies_are_refused(keras, dtype):
    """layer.py Notes: bfloat16 policies are refused (Keras accepts them)."""
    kwargs = dict(filters=2, kernel_size=2, dtype=dtype)
    assert construct_and_call(keras.layers.Conv3DTranspose, kwargs) == (None, None)
    with pytest.raises(ValueError, match="bfloat16"):
        deconv3d.Conv3DTranspose(**kwargs)


# ---------------------------------------------------------------------- inputs
INPUT_CASES = {
    # id: (constructor kwargs, input)
    "rank-4 input": ({}, np.ones((1, 3, 3, 2), "float32")),
    "rank-3 input": ({}, np.ones((3, 3, 2), "float32")),
    "scalar input": ({}, np.float32(1.0)),
    "complex input": ({}, np.ones((1, 3, 3, 3, 2), complex)),
    "object input": ({}, np.array([[[[[object()]]]]])),
    "float64 input with autocast=False": ({"autocast": False},
                                          np.ones((1, 3, 3, 3, 2), "float64")),
    "None input": ({}, pytest.param(None)),
    "string input": ({}, pytest.param(np.full((1, 3, 3, 3, 2), "a"))),
}


def input_params():
    params = []
    for case_id, (kwargs, x) in INPUT_CASES.items():
        if isinstance(x, type(pytest.param(None))):
            params.append(pytest.param(kwargs, x.values[0], id=case_id, marks=x.marks))
        else:
            params.append(pytest.param(kwargs, x, id=case_id))
    return params


@pytest.mark.parametrize("kwargs,x", input_params())
def test_bad_input_same_class_as_keras(keras, kwargs, x):
    kwargs = {"filters": 2, "kernel_size": 2, **kwargs}

    def scenario(cls):
        return first_error([("construct", lambda _: cls(**kwargs)),
                            ("call", lambda layer: layer(x))])
    keras_result, our_result = both(keras, scenario)
    assert keras_result[1] is not None, "Keras accepts this input"
    assert_same_class(keras_result, our_result)


@pytest.mark.parametrize("data_format,first,second", [
    ("channels_last", X, np.ones((1, 3, 3, 3, 5), "float32")),
    ("channels_first", X_CF, np.ones((1, 4, 3, 3, 3), "float32")),
])
def test_channel_count_differs_from_built_kernel(keras, data_format, first, second):
    def scenario(cls):
        return first_error([("construct", lambda _: cls(2, 2, data_format=data_format)),
                            ("first call", lambda layer: (layer(first), layer)[1]),
                            ("second call", lambda layer: layer(second))])
    keras_result, our_result = both(keras, scenario)
    assert keras_result[0] == our_result[0] == "second call"
    assert_same_class(keras_result, our_result)


def test_build_with_unknown_channels(keras):
    def scenario(cls):
        return first_error([("construct", lambda _: cls(2, 2)),
                            ("build", lambda layer: layer.build((None, 3, 3, 3, None)))])
    keras_result, our_result = both(keras, scenario)
    assert keras_result[1] is not None
    assert_same_class(keras_result, our_result)


# ---------------------------------------------------------------------- set_weights
KERNEL = np.zeros((2, 2, 2, 2, 2))
SET_WEIGHTS_CASES = {
    # id: (weights, use_bias)
    "one weight for two": ([KERNEL], True),
    "three weights for two": ([KERNEL, np.zeros(2), np.zeros(2)], True),
    "no weights for two": ([], True),
    "two weights without bias": ([KERNEL, np.zeros(2)], False),
    "wrong kernel shape": ([np.zeros((2, 2, 2, 2, 3)), np.zeros(2)], True),
    "kernel with swapped filters/channels": ([np.zeros((2, 2, 2, 3, 2)), np.zeros(2)], True),
    "kernel of rank 4": ([np.zeros((2, 2, 2, 4)), np.zeros(2)], True),
    "wrong bias shape": ([KERNEL, np.zeros(3)], True),
    "2-d bias": ([KERNEL, np.zeros((1, 2))], True),
    "None": (None, True),
    "generator": ((w for w in [KERNEL, np.zeros(2)]), True),
    "an array, not a list": (pytest.param(np.zeros(2)), True),
    "a dict": (pytest.param({0: KERNEL}), True),
    "string bias": (pytest.param([KERNEL, np.array(["a", "b"])]), True),
    "complex kernel": (pytest.param([KERNEL.astype(complex), np.zeros(2)]), True),
}


def set_weights_params():
    params = []
    for case_id, (weights, use_bias) in SET_WEIGHTS_CASES.items():
        if isinstance(weights, type(pytest.param(None))):
            params.append(pytest.param(weights.values[0], use_bias, id=case_id,
                                       marks=weights.marks))
        else:
            params.append(pytest.param(weights, use_bias, id=case_id))
    return params


@pytest.mark.parametrize("weights,use_bias", set_weights_params())
def test_bad_set_weights_same_class_as_keras(keras, weights, use_bias):
    if hasattr(weights, "__next__"):        # a generator can be consumed only once
        items = list(weights)
        keras_result = set_weights_steps(keras.layers.Conv3DTranspose, iter(items), use_bias)
        our_result = set_weights_steps(deconv3d.Conv3DTranspose, iter(items), use_bias)
    else:
        keras_result, our_result = both(keras, lambda cls: set_weights_steps(cls, weights,
                                                                             use_bias))
    assert keras_result[0] == "set_weights" or keras_result[1] is None, keras_result
    assert_same_class(keras_result, our_result)


def test_set_weights_before_build(keras):
    def scenario(cls, weights):
        return first_error([("construct", lambda _: cls(2, 2)),
                            ("set_weights", lambda layer: layer.set_weights(weights))])
    for weights in ([KERNEL, np.zeros(2)], [KERNEL]):
        keras_result = scenario(keras.layers.Conv3DTranspose, weights)
        our_result = scenario(deconv3d.Conv3DTranspose, weights)
        assert kind(keras_result[1]) is ValueError
        assert_same_class(keras_result, our_result)
    # an empty list is fine on both before build
    assert scenario(keras.layers.Conv3DTranspose, []) == (None, None)
    assert scenario(deconv3d.Conv3DTranspose, []) == (None, None)


# ---------------------------------------------------------------------- from_config
def keras_config(keras, **changes):
    cfg = keras.layers.Conv3DTranspose(2, 2).get_config()
    cfg.update(changes)
    return cfg




@pytest.mark.parametrize("case", [
    "missing filters", "not a dict",
    "unknown key",
    "groups=2",
    "padding='causal'",
    "filters=0",
])
def test_bad_from_config_same_class_as_keras(keras, case):
    configs = {
        "missing filters": {k: v for k, v in keras_config(keras).items() if k != "filters"},
        "not a dict": [1],
        "unknown key": keras_config(keras, foo=1),
        "groups=2": keras_config(keras, groups=2),
        "padding='causal'": keras_config(keras, padding="causal"),
        "filters=0": keras_config(keras, filters=0),
    }
    cfg = configs[case]
    keras_result, our_result = both(
        keras, lambda cls: first_error([("from_config", lambda _: cls.from_config(cfg))]))
    assert keras_result[1] is not None
    assert_same_class(keras_result, our_result)


# ---------------------------------------------------------------------- warnings
@pytest.mark.parametrize("kwargs", [{"input_shape": (3, 3, 3, 2)}, {"input_dim": 2}])
def test_input_shape_argument_warns_like_keras(keras, kwargs):
    with pytest.warns(UserWarning, match="input_shape") as keras_warnings:
        keras.layers.Conv3DTranspose(2, 2, **kwargs)
    with pytest.warns(UserWarning, match="input_shape") as our_warnings:
        deconv3d.Conv3DTranspose(2, 2, **kwargs)
    assert ([w.category for w in our_warnings] == [w.category for w in keras_warnings])


# ---------------------------------------------------------------------- accepted values
def plain(value):
    """A config made comparable: NumPy scalars to Python, tuples to lists."""
    def default(obj):
        if isinstance(obj, (np.generic, np.ndarray)):
            return obj.tolist()
        raise TypeError(f"not JSON serialisable: {obj!r}")
    return json.loads(json.dumps(value, default=default))


ACCEPTED_CASES = {
    "kernel_size=True": {"kernel_size": True},
    # Keras scales a standard normal by a negative stddev without complaint
    "kernel_initializer RandomNormal stddev<0": {"kernel_initializer": {
        "class_name": "RandomNormal", "config": {"stddev": -1.0}}},
    "filters=True": {"filters": True},
    "filters=np.int64(2)": {"filters": np.int64(2)},
    "filters=np.int8(3)": {"filters": np.int8(3)},
    "padding='SAME'": {"padding": "SAME"},
    "padding='Valid'": {"padding": "Valid"},
    "data_format='Channels_First'": {"data_format": "Channels_First"},
    "data_format='CHANNELS_LAST'": {"data_format": "CHANNELS_LAST"},
    "data_format=None": {"data_format": None},
    "kernel_size=[2,3,1]": {"kernel_size": [2, 3, 1]},
    "kernel_size=np.int64 tuple": {"kernel_size": (np.int64(2), np.int64(1), np.int64(3))},
    "kernel_size=int array": {"kernel_size": np.array([2, 1, 3])},
    "kernel_size=(True,2,2)": {"kernel_size": (True, 2, 2)},
    "strides=(True,2,3)": {"strides": (True, 2, 3)},
    "strides=[2,3,2], output_padding=True": {"strides": [2, 3, 2], "output_padding": True,
                                             "padding": "same"},
    "output_padding=(True,0,0)": {"strides": 2, "output_padding": (True, 0, 0)},
    "output_padding=np.int64": {"strides": 3, "output_padding": (np.int64(2), 0, 1)},
    "dilation_rate=[2,1,3]": {"dilation_rate": [2, 1, 3]},
    "name=''": {"name": ""},
    "kernel_initializer=None": {"kernel_initializer": None},
    "bias_initializer=None": {"bias_initializer": None},
    "activation=None": {"activation": None},
    "activation dict": {"activation": {"module": "keras.activations", "class_name": "function",
                                       "config": "relu", "registered_name": None}},
    "activation='swish'": {"activation": "swish"},
    "dtype=np.float64": {"dtype": np.float64},
    "dtype policy dict": {"dtype": {"module": "keras", "class_name": "DTypePolicy",
                                    "config": {"name": "float64"}, "registered_name": None}},
    "use_bias=False": {"use_bias": False},
    "trainable=False": {"trainable": False},
    "autocast=False": {"autocast": False},
    "filters=np.array(2)": pytest.param({"filters": np.array(2)}),
}


def accepted_params():
    params = []
    for case_id, overrides in ACCEPTED_CASES.items():
        if isinstance(overrides, type(pytest.param(None))):
            params.append(pytest.param(overrides.values[0], id=case_id, marks=overrides.marks))
        else:
            params.append(pytest.param(overrides, id=case_id))
    return params


@pytest.mark.parametrize("overrides", accepted_params())
def test_accepted_values_agree_with_keras(keras, overrides):
    kwargs = {"filters": 2, "kernel_size": 2, "name": "accepted",
              "kernel_initializer": "zeros", **overrides}
    channels_first = str(kwargs.get("data_format")).lower() == "channels_first"
    dtype = "float64" if "dtype" in overrides else "float32"
    x = np.random.default_rng(0).standard_normal(
        (1, 3, 2, 4, 3) if not channels_first else (1, 3, 3, 2, 4)).astype(dtype)

    keras_layer = keras.layers.Conv3DTranspose(**kwargs)
    keras_layer(x)
    ours = deconv3d.Conv3DTranspose(**kwargs)
    ours(x)
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal(np.shape(w)) for w in keras_layer.get_weights()]
    keras_layer.set_weights(weights)
    ours.set_weights(weights)
    expected = np.asarray(keras_layer(x))
    actual = ours(x)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    assert plain(ours.get_config()) == plain(keras_layer.get_config())
    assert ours.trainable == keras_layer.trainable
