"""Checks of deconv3d.keras on one Keras backend, run as a script in a fresh process.

Keras fixes its backend at import, so each backend needs its own process:
``KERAS_BACKEND=tensorflow python backend_checks.py OUT.json`` runs every check
below and writes ``{check name: {"ok": bool, "error": traceback}}``;
``test_accelerate_backends.py`` runs it once per backend and turns each entry
into a test.  Every expected value comes from the stock Keras layer on the same
backend.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

CHECKS = {}


class NotOnThisBackend(Exception):
    """Raised by a check that is about another backend (reported as a skip)."""


def check(function):
    CHECKS[function.__name__] = function
    return function


def relative_error(actual, expected):
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def numpy(value):
    import keras
    return np.asarray(keras.ops.convert_to_numpy(value))


# ---------------------------------------------------------------------- models
def twice(x):
    """A user activation deconv3d cannot fuse: the backend applies it after deconv3d."""
    import keras
    return keras.ops.multiply(x, 2.0)


def unet(kernel=2, stride=2, padding="valid", data_format="channels_last",
         activations=("relu", "sigmoid"), dilation=1, size=6, nested=False, dtype=None,
         head_kernel=3):
    """A two-level 3-D U-Net whose up-sampling and head are Conv3DTranspose layers."""
    import keras
    layers = keras.layers
    first = data_format == "channels_first"
    axis = 1 if first else -1
    inputs = keras.Input((3, size, size, size) if first else (size, size, size, 3))
    skip = layers.Conv3D(4, 3, padding="same", activation="relu", data_format=data_format,
                         dtype=dtype)(inputs)
    down = layers.MaxPooling3D(stride, data_format=data_format)(skip) if stride > 1 else skip
    deep = layers.Conv3D(6, 3, padding="same", activation="relu", data_format=data_format,
                         dtype=dtype)(down)

    def decoder(deep, skip):
        up = layers.Conv3DTranspose(4, kernel, stride, padding=padding, dilation_rate=dilation,
                                    activation=activations[0], data_format=data_format,
                                    dtype=dtype)(deep)
        merged = layers.Concatenate(axis)([up, skip])
        return layers.Conv3DTranspose(2, head_kernel, padding="same",
                                      activation=activations[1], data_format=data_format,
                                      dtype=dtype)(merged)

    if nested:
        deep_in, skip_in = keras.Input(deep.shape[1:]), keras.Input(skip.shape[1:])
        block = keras.Model([deep_in, skip_in], decoder(deep_in, skip_in), name="decoder")
        outputs = block([deep, skip])
    else:
        outputs = decoder(deep, skip)
    return keras.Model(inputs, outputs)


def sequential():
    """Up-sampling shapes a U-Net would not combine: output_padding, stride 3, no bias."""
    import keras
    layers = keras.layers
    return keras.Sequential([
        keras.Input((3, 4, 5, 2)),
        layers.Conv3DTranspose(3, 3, (2, 3, 1), padding="same", output_padding=(1, 0, 0)),
        layers.Conv3DTranspose(2, (2, 3, 1), 3, use_bias=False, activation="tanh"),
        layers.Conv3DTranspose(3, 2, 1, padding="same", activation=twice),
    ])


MODELS = {
    "unet-valid-k2s2": lambda: unet(),
    "unet-same-k3s2": lambda: unet(3, 2, "same", activations=("gelu", "softmax")),
    "unet-valid-k3s3": lambda: unet(3, 3, "valid", size=6, activations=("elu", None)),
    "unet-same-k3s1-dilated": lambda: unet(3, 1, "same", dilation=2, size=5,
                                           activations=("swish", twice)),
    "unet-same-k4s2-nested": lambda: unet(4, 2, "same", nested=True),
    "unet-channels-first": lambda: unet(2, 2, "valid", "channels_first",
                                        activations=("relu", "sigmoid")),
    "unet-channels-first-same-k3s3": lambda: unet(3, 3, "same", "channels_first", size=6,
                                                  activations=("leaky_relu", "linear")),
    "sequential": sequential,
}


def channels_last(x):
    return np.moveaxis(x, 1, -1)


def channels_first(x):
    return np.moveaxis(x, -1, 1)


# TensorFlow's CPU kernels have no channels_first or dilated transposed convolution, so
# there the stock model fails; the expected values then come from a model TF can run that
# computes the same: (builder, input map, output map).  Kernels have the same layout in
# both data formats, and a dilated kernel is a larger one with zeros between its taps.
TF_TWINS = {
    "unet-same-k3s1-dilated": (lambda: unet(5, 1, "same", size=5, activations=("swish", twice)),
                               lambda x: x, lambda y: y),
    "unet-channels-first": (lambda: unet(2, 2, "valid", activations=("relu", "sigmoid")),
                            channels_last, channels_first),
    "unet-channels-first-same-k3s3": (lambda: unet(3, 3, "same", size=6,
                                                   activations=("leaky_relu", "linear")),
                                      channels_last, channels_first),
}


def expected_output(name, reference, x):
    """What the stock model computes for ``x`` (through its TF twin where TF cannot)."""
    if os.environ["KERAS_BACKEND"] != "tensorflow" or name not in TF_TWINS:
        return reference.predict(x, verbose=0)
    build, to_twin, from_twin = TF_TWINS[name]
    twin = build()
    twin.set_weights([spread(w, t.shape) for w, t in zip(reference.get_weights(),
                                                         twin.get_weights())])
    return from_twin(twin.predict(to_twin(x), verbose=0))


def spread(kernel, shape):
    """A kernel with zeros between its taps, as large as ``shape`` (dilation as a kernel)."""
    if kernel.shape == tuple(shape):
        return kernel
    step = (shape[0] - 1) // (kernel.shape[0] - 1)
    out = np.zeros(shape, kernel.dtype)
    out[::step, ::step, ::step] = kernel
    return out


def inputs_for(model, batch=2, seed=0, dtype="float32"):
    shape = (batch,) + tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def randomize(model, seed=1):
    """Non-trivial weights everywhere (Keras initialises biases to zero)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype(w.dtype) * 0.3
                       for w in model.get_weights()])


def stock_copy(model):
    """An independent stock-Keras model with the same weights."""
    import keras
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def accelerated_layers(model):
    from deconv3d.keras import Conv3DTranspose
    return [layer for layer in model._flatten_layers(include_self=True, recursive=True)
            if isinstance(layer, Conv3DTranspose)]


def served_calls(model):
    """Forward passes deconv3d computed, per accelerated layer."""
    return [sum(host.calls for host in vars(layer).get("_deconv3d_hosts", {}).values())
            for layer in accelerated_layers(model)]


def conv_transpose_count(model):
    import keras
    return sum(isinstance(layer, keras.layers.Conv3DTranspose)
               for layer in model._flatten_layers(include_self=True, recursive=True))


def build_pair(model):
    """(stock model, accelerated model with the same weights) from a MODELS name or builder."""
    import deconv3d.keras
    model = MODELS[model]() if isinstance(model, str) else model()
    randomize(model)
    reference = stock_copy(model)
    return reference, deconv3d.keras.accelerate(model)


# ---------------------------------------------------------------------- parity
def parity(name):
    reference, model = build_pair(name)
    x = inputs_for(model)
    expected = expected_output(name, reference, x)
    actual = model.predict(x, verbose=0)
    assert len(accelerated_layers(model)) == conv_transpose_count(reference) >= 2
    assert all(served_calls(model)), served_calls(model)
    error = relative_error(actual, expected)
    assert error <= 1e-5, (name, error)
    # an eager call (no gradient recording on any backend) is accelerated too
    before = sum(served_calls(model))
    error = relative_error(numpy(model(x)), expected)
    assert error <= 1e-5, (name, "eager", error)
    if os.environ["KERAS_BACKEND"] != "torch":   # torch: autograd records eager calls
        assert sum(served_calls(model)) > before


for _name in MODELS:
    CHECKS[f"parity[{_name}]"] = (lambda name: lambda: parity(name))(_name)


@check
def parity_float64():
    import deconv3d.keras
    import keras
    # (not tanh: Keras's float64 tanh returns float32)
    model = unet(3, 2, "same", dtype="float64", activations=("relu", "sigmoid"))
    randomize(model)
    reference = stock_copy(model)
    deconv3d.keras.accelerate(model)
    x = inputs_for(model, dtype="float64")
    expected = reference.predict(x, verbose=0)
    actual = model.predict(x, verbose=0)
    assert all(served_calls(model))
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    error = relative_error(actual, expected)
    assert error <= 1e-10, error
    assert keras.backend.standardize_dtype(model.layers[-1].compute_dtype) == "float64"


@check
def mixed_float16_is_served():
    import keras

    def build():
        # (no pooling: TF's CPU MaxPool3D has no float16 kernel)
        return unet(3, 1, "same", size=5, activations=("gelu", "softmax"))

    keras.config.set_dtype_policy("mixed_float16")
    try:
        reference, model = build_pair(build)
    finally:
        keras.config.set_dtype_policy("float32")
    exact = build()
    exact.set_weights([w.astype("float32") for w in reference.get_weights()])
    x = inputs_for(model)
    truth = exact.predict(x, verbose=0)
    expected = reference.predict(x, verbose=0)
    actual = model.predict(x, verbose=0)
    assert actual.dtype == expected.dtype == np.float16
    assert all(served_calls(model))
    # float16 rounding differs (Keras rounds inside its op, deconv3d accumulates in float32
    # and rounds once): deconv3d must be as close to the float32 result as Keras is
    error, keras_error = relative_error(actual, truth), relative_error(expected, truth)
    assert error <= 1.5 * keras_error + 1e-3, (error, keras_error)


@check
def bfloat16_falls_back():
    import keras
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        reference, model = build_pair("unet-valid-k2s2")
    finally:
        keras.config.set_dtype_policy("float32")
    x = inputs_for(model)
    expected = reference.predict(x, verbose=0)
    actual = model.predict(x, verbose=0)
    assert not any(served_calls(model))         # no bfloat16 in NumPy: Keras computes
    np.testing.assert_array_equal(np.asarray(actual, np.float32),
                                  np.asarray(expected, np.float32))


@check
def new_weights_are_used():
    reference, model = build_pair("unet-valid-k2s2")
    x = inputs_for(model)
    model.predict(x, verbose=0)
    randomize(model, seed=7)                     # assign new values to the same variables
    randomize(reference, seed=7)
    error = relative_error(model.predict(x, verbose=0), reference.predict(x, verbose=0))
    assert error <= 1e-5, error


@check
def batch_sizes_and_partial_batches():
    reference, model = build_pair("unet-same-k3s2")
    x = inputs_for(model, batch=5)
    # batch_size 2 leaves a last batch of 1: another traced shape
    error = relative_error(model.predict(x, batch_size=2, verbose=0),
                           reference.predict(x, batch_size=2, verbose=0))
    assert error <= 1e-5, error


# ---------------------------------------------------------------------- gradients
def gradients(model, x, probe):
    """d sum(model(x) * probe) / d(x, trainable weights), with the backend's own autodiff."""
    backend = os.environ["KERAS_BACKEND"]
    if backend == "jax":
        import jax
        import jax.numpy as jnp
        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        def loss(trainable, x):
            y, _ = model.stateless_call(trainable, frozen, x)
            return jnp.sum(y * probe)

        weights, dx = jax.jit(jax.grad(loss, argnums=(0, 1)))(trainable, jnp.asarray(x))
        return [dx] + list(weights)
    if backend == "tensorflow":
        import tensorflow as tf
        x = tf.convert_to_tensor(x)

        @tf.function
        def grads(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(model(x) * probe)
            return tape.gradient(loss, [x] + model.trainable_variables)

        return grads(x)
    import torch
    x = torch.tensor(x, requires_grad=True)
    loss = (model(x) * torch.as_tensor(probe)).sum()
    weights = [v.value for v in model.trainable_variables]
    return torch.autograd.grad(loss, [x] + weights)


@check
def gradients_are_keras_gradients():
    # (activations whose gradients are not ~0: a softmax over W makes the bias gradient
    # of its layer rounding noise, and rounding noise does not compare)
    builders = [lambda: unet(3, 2, "same", activations=("gelu", "sigmoid")), sequential]
    if os.environ["KERAS_BACKEND"] != "tensorflow":   # no channels_first gradient on TF's CPU
        builders.append(lambda: unet(2, 2, "valid", "channels_first"))
    for build in builders:
        reference, model = build_pair(build)
        x = inputs_for(model)
        probe = np.random.default_rng(3).standard_normal(
            reference.predict(x, verbose=0).shape).astype("float32")
        expected = gradients(reference, x, probe)
        actual = gradients(model, x, probe)
        assert len(actual) == len(expected) == 1 + len(model.trainable_variables)
        for a, e in zip(actual, expected):
            assert a is not None
            error = relative_error(numpy(a), numpy(e))
            assert error <= 1e-5, (error, a.shape)
        served = sum(served_calls(model))
        if os.environ["KERAS_BACKEND"] == "torch":
            assert served == 0   # autograd was recording: Keras's op ran, by design
        else:
            assert served > 0    # forward on deconv3d, derivative from Keras's op


@check
def fit_matches_stock_training():
    import keras
    reference, model = build_pair("unet-valid-k2s2")
    x = inputs_for(model, batch=4)
    y = np.random.default_rng(5).random(reference.predict(x, verbose=0).shape)
    for m in (reference, model):
        m.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        m.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    for a, e in zip(model.get_weights(), reference.get_weights()):
        assert relative_error(a, e) <= 1e-5
    assert relative_error(model.predict(x, verbose=0), reference.predict(x, verbose=0)) <= 1e-5


@check
def jax_forward_mode_and_jit():
    if os.environ["KERAS_BACKEND"] != "jax":
        raise NotOnThisBackend("JAX transformations")
    import jax
    import jax.numpy as jnp
    reference, model = build_pair("unet-same-k3s2")
    x = jnp.asarray(inputs_for(model))
    direction = jnp.asarray(np.random.default_rng(9).standard_normal(x.shape), x.dtype)

    def forward(model):
        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]
        return lambda x: model.stateless_call(trainable, frozen, x)[0]

    expected = jax.jvp(forward(reference), (x,), (direction,))
    actual = jax.jit(lambda x, d: jax.jvp(forward(model), (x,), (d,)))(x, direction)
    for a, e in zip(actual, expected):
        assert relative_error(a, e) <= 1e-5
    assert all(served_calls(model))


@check
def tensorflow_xla_falls_back():
    if os.environ["KERAS_BACKEND"] != "tensorflow":
        raise NotOnThisBackend("TensorFlow's XLA")
    reference, model = build_pair("unet-valid-k2s2")
    model.compile(jit_compile=True)            # XLA cannot compile a Python function
    x = inputs_for(model)
    error = relative_error(model.predict(x, verbose=0), reference.predict(x, verbose=0))
    assert error <= 1e-5, error
    assert not any(served_calls(model))


# ---------------------------------------------------------------------- saving
LOAD_WITHOUT_DECONV3D = """
import sys, numpy as np, keras
model = keras.saving.load_model(sys.argv[1], safe_mode=False)
assert not [name for name in sys.modules if name.startswith("deconv3d")]
assert all(type(l) is keras.layers.Conv3DTranspose for l in model._flatten_layers()
           if isinstance(l, keras.layers.Conv3DTranspose))
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
"""


@check
def saved_model_loads_without_deconv3d():
    import keras
    # (models without the custom activation, which a fresh process would not know)
    for name in ("unet-same-k4s2-nested",):
        reference, model = build_pair(name)
        x = inputs_for(model)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            config = json.dumps(model.get_config())
            assert "deconv3d" not in config
            np.save(os.path.join(tmp, "x.npy"), x)
            # a directory where deconv3d cannot be imported from
            subprocess.run([sys.executable, "-c", LOAD_WITHOUT_DECONV3D, path,
                            os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")],
                           check=True, cwd=tmp, env=without_deconv3d_on_path())
            loaded = np.load(os.path.join(tmp, "y.npy"))
            plain = keras.saving.load_model(path, safe_mode=False)
        assert conv_transpose_count(plain) == conv_transpose_count(model)
        assert not accelerated_layers(plain)
        assert relative_error(loaded, reference.predict(x, verbose=0)) <= 1e-5


def without_deconv3d_on_path():
    """The environment of this process, with deconv3d made unimportable."""
    env = dict(os.environ)
    blocker = tempfile.mkdtemp()
    with open(os.path.join(blocker, "deconv3d.py"), "w") as handle:
        handle.write("raise ImportError('deconv3d must not be imported here')\n")
    env["PYTHONPATH"] = blocker + os.pathsep + env.get("PYTHONPATH", "")
    return env


@check
def load_model_accelerates():
    import deconv3d.keras
    reference, model = build_pair("unet-valid-k2s2")
    x = inputs_for(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        reference.save(path)
        loaded = deconv3d.keras.load_model(path, num_threads=1)
    assert len(accelerated_layers(loaded)) == 2
    assert all(layer.num_threads == 1 for layer in accelerated_layers(loaded))
    assert relative_error(loaded.predict(x, verbose=0), reference.predict(x, verbose=0)) <= 1e-5
    assert all(served_calls(loaded))


@check
def legacy_h5_custom_objects():
    import deconv3d.keras
    import keras
    reference, _ = build_pair("unet-valid-k2s2")
    x = inputs_for(reference)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.h5")
        reference.save(path)
        loaded = keras.saving.load_model(path, custom_objects=deconv3d.keras.custom_objects)
    assert len(accelerated_layers(loaded)) == 2
    assert relative_error(loaded.predict(x, verbose=0), reference.predict(x, verbose=0)) <= 1e-5
    assert all(served_calls(loaded))


# ---------------------------------------------------------------------- layer API
@check
def layer_config_round_trip():
    import deconv3d.keras
    import keras
    layer = deconv3d.keras.Conv3DTranspose(4, 3, 2, padding="same", activation="relu",
                                           output_padding=1, num_threads=2,
                                           kernel_regularizer="l2")
    config = layer.get_config()
    assert "num_threads" not in config
    assert config == keras.layers.Conv3DTranspose.from_config(config).get_config()
    copy = deconv3d.keras.Conv3DTranspose.from_config(config)
    assert type(copy) is deconv3d.keras.Conv3DTranspose and copy.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert (serialized["module"], serialized["class_name"]) == ("keras.layers",
                                                                "Conv3DTranspose")
    assert type(keras.saving.deserialize_keras_object(serialized)) is \
        keras.layers.Conv3DTranspose


@check
def standalone_layer():
    import deconv3d.keras
    import keras
    layer = deconv3d.keras.Conv3DTranspose(3, 2, 2, activation="relu", num_threads=1)
    stock = keras.layers.Conv3DTranspose(3, 2, 2, activation="relu")
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5, 2)).astype("float32")
    layer(x), stock(x)
    stock.set_weights(layer.get_weights())
    assert relative_error(numpy(layer(x)), numpy(stock(x))) <= 1e-5
    for bad in (0, -1, 1.5, True, "2"):
        try:
            deconv3d.keras.Conv3DTranspose(3, 2, num_threads=bad)
        except ValueError:
            continue
        raise AssertionError(f"num_threads={bad!r} was accepted")


@check
def custom_layers_are_searched_and_subclasses_left_alone():
    import deconv3d.keras
    import keras

    class Custom(keras.layers.Conv3DTranspose):
        pass

    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.up = keras.layers.Conv3DTranspose(2, 2, 2)

        def call(self, x):
            return self.up(x)

    block = Block()
    model = keras.Sequential([keras.Input((3, 3, 3, 2)), Custom(2, 2), block,
                              keras.layers.Conv3DTranspose(2, 2)])
    x = np.random.default_rng(0).standard_normal((1, 3, 3, 3, 2)).astype("float32")
    expected = model.predict(x, verbose=0)
    deconv3d.keras.accelerate(model)
    assert type(model.layers[0]) is Custom
    assert type(block.up) is deconv3d.keras.Conv3DTranspose
    assert type(model.layers[2]) is deconv3d.keras.Conv3DTranspose
    assert relative_error(model.predict(x, verbose=0), expected) <= 1e-5
    assert all(served_calls(model))


def main(out_path):
    import keras
    keras.saving.register_keras_serializable("deconv3d_tests")(twice)
    selected = sys.argv[2:] or list(CHECKS)
    results = {}
    for name in selected:
        start = time.perf_counter()
        try:
            CHECKS[name]()
            results[name] = {"ok": True}
        except NotOnThisBackend as reason:
            results[name] = {"ok": True, "skipped": str(reason)}
        except Exception:  # every failure is reported, and the other checks still run
            results[name] = {"ok": False, "error": traceback.format_exc()}
        results[name]["seconds"] = round(time.perf_counter() - start, 1)
    with open(out_path, "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main(sys.argv[1])
