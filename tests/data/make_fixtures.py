"""Write the Keras fixture files in this directory (tests/data), for the loading tests.

Run with Keras 3 installed (any backend; JAX is what the tests use):

    KERAS_BACKEND=jax python tests/data/make_fixtures.py

Every model file comes with ``<model>_expected.npz``: for each Conv3DTranspose
layer (key: its path with ``/`` written ``__``), ``input__<path>`` is a random
input and ``output__<path>`` what *Keras's own layer* returns for it.  The tests
compare deconv3d's loaded layers against these, so loading is tested even where
Keras is not installed.

Files (all small):

* ``functional.keras`` / ``functional.weights.h5``: a Functional model with two
  Conv3DTranspose layers, ``up`` (channels_last, strides 2, output_padding,
  relu) and ``up_cf`` (channels_first, 'same'), next to a Conv3D.
* ``nested.keras`` / ``nested.weights.h5`` / ``nested_legacy.h5``: a Functional
  model holding a Sequential (``block``) that holds a Functional (``deep``):
  layers ``up``, ``block/up`` (dilated, no bias, tanh) and ``block/deep/last``
  (float64); the ``.h5`` is Keras 3's legacy ``model.save("x.h5")``.
* ``single.keras``: a Sequential model with one channels_first layer.
* ``tf_keras_model.h5`` / ``tf_keras_weights.h5`` / ``tf_keras_model.json``: the
  same kind of nested model saved by tf.keras 2 (tf_keras), with
  ``model.save``, ``model.save_weights`` and ``model.to_json``; written by a
  child process with ``TF_USE_LEGACY_KERAS=1``, and skipped (with a message)
  when tf_keras is not installed.
* ``not_keras.h5``: an HDF5 file that is not a Keras file; ``truncated.keras``:
  the first half of ``functional.keras``.
"""

import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def out(name):
    return os.path.join(HERE, name)


def randomize(model, rng):
    """Random kernels and (non-zero) biases, so that a wrong mapping shows."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            randomize(layer, rng)
            continue
        weights = layer.get_weights()
        if weights:
            layer.set_weights([(0.5 * rng.standard_normal(w.shape)).astype(w.dtype)
                               for w in weights])


def expected_outputs(layers, rng, spatial=(3, 4, 2), batch=1):
    """{input__path, output__path} for each (path, layer, in_channels, dtype)."""
    arrays = {}
    for path, layer, channels in layers:
        if layer.data_format == "channels_first":
            shape = (batch, channels, *spatial)
        else:
            shape = (batch, *spatial, channels)
        x = rng.standard_normal(shape).astype(layer.compute_dtype)
        key = path.replace("/", "__")
        arrays[f"input__{key}"] = x
        arrays[f"output__{key}"] = np.asarray(layer(x))
    return arrays


# ---------------------------------------------------------------------- Keras 3
def keras3():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("JAX_ENABLE_X64", "1")     # for the float64 layer
    import keras
    from keras import layers

    keras.utils.set_random_seed(1234)
    rng = np.random.default_rng(1234)

    # Functional, two Conv3DTranspose layers (one channels_first) and a Conv3D
    inputs = keras.Input((3, 3, 3, 2), name="volume")
    a = layers.Conv3DTranspose(3, 2, strides=2, output_padding=(1, 0, 1), activation="relu",
                               name="up")(inputs)
    b = layers.Conv3DTranspose(2, 3, strides=(1, 2, 1), padding="same",
                               data_format="channels_first", name="up_cf")(inputs)
    c = layers.Conv3D(2, 1, name="mix")(a)
    model = keras.Model(inputs, [b, c], name="functional_model")
    randomize(model, rng)
    model.save(out("functional.keras"))
    model.save_weights(out("functional.weights.h5"))
    np.savez_compressed(out("functional_expected.npz"), **expected_outputs(
        [("up", model.get_layer("up"), 2), ("up_cf", model.get_layer("up_cf"), 3)], rng))

    # Functional > Sequential > Functional
    deep_in = keras.Input((None, None, None, 2))
    deep_out = layers.Conv3DTranspose(2, 2, strides=2, padding="same", dtype="float64",
                                      name="last")(deep_in)
    deep = keras.Model(deep_in, deep_out, name="deep")
    block = keras.Sequential([
        keras.Input((None, None, None, 2)),
        layers.Conv3D(2, 1, name="mix"),
        layers.Conv3DTranspose(2, 2, dilation_rate=2, use_bias=False, activation="tanh",
                               name="up"),
        deep,
    ], name="block")
    inputs = keras.Input((3, 3, 3, 2))
    x = layers.Conv3DTranspose(2, 3, padding="same", name="up")(inputs)
    outputs = block(x)
    model = keras.Model(inputs, outputs, name="outer")
    randomize(model, rng)
    model.save(out("nested.keras"))
    model.save_weights(out("nested.weights.h5"))
    model.save(out("nested_legacy.h5"))
    np.savez_compressed(out("nested_expected.npz"), **expected_outputs([
        ("up", model.get_layer("up"), 2),
        ("block/up", block.get_layer("up"), 2),
        ("block/deep/last", deep.get_layer("last"), 2)], rng))

    # Sequential at the top
    model = keras.Sequential([
        keras.Input((2, 3, 3, 3)),
        layers.Conv3DTranspose(2, (3, 2, 1), strides=(2, 1, 2), output_padding=(1, 0, 1),
                               data_format="channels_first", activation="sigmoid",
                               name="only")], name="seq")
    randomize(model, rng)
    model.save(out("single.keras"))
    np.savez_compressed(out("single_expected.npz"), **expected_outputs(
        [("only", model.get_layer("only"), 2)], rng))

    # Files that are not (whole) Keras files
    import h5py
    with h5py.File(out("not_keras.h5"), "w") as handle:
        handle["data"] = np.arange(6.0)
        handle.attrs["note"] = "an HDF5 file that is not a Keras file"
    with open(out("functional.keras"), "rb") as handle:
        data = handle.read()
    with open(out("truncated.keras"), "wb") as handle:
        handle.write(data[:len(data) // 2])


# ---------------------------------------------------------------------- tf.keras 2
def keras2():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras as keras
    from tf_keras import layers

    keras.utils.set_random_seed(4321)
    rng = np.random.default_rng(4321)
    # TensorFlow's CPU kernels have no channels_first 3-D (transposed) convolution.
    block = keras.Sequential([
        layers.Conv3DTranspose(2, 2, strides=2, padding="same", use_bias=False,
                               activation="tanh", name="inner", input_shape=(None, None, None, 3)),
    ], name="block")
    inputs = keras.Input((3, 3, 3, 2))
    x = layers.Conv3DTranspose(3, 3, strides=(2, 1, 2), output_padding=(1, 0, 0),
                               name="up")(inputs)
    x = layers.Conv3D(3, 1, name="mix")(x)
    outputs = block(x)
    model = keras.Model(inputs, outputs, name="tfk")
    randomize(model, rng)
    model.save(out("tf_keras_model.h5"))
    model.save_weights(out("tf_keras_weights.h5"))
    with open(out("tf_keras_model.json"), "w", encoding="utf-8") as handle:
        handle.write(json.dumps(json.loads(model.to_json()), indent=1))
    np.savez_compressed(out("tf_keras_expected.npz"), **expected_outputs(
        [("up", model.get_layer("up"), 2), ("block/inner", block.get_layer("inner"), 3)], rng))


def main():
    if "--tf-keras" in sys.argv:
        keras2()
        return
    keras3()
    try:
        import tf_keras  # noqa: F401
    except ImportError:
        print("tf_keras is not installed: the tf.keras (Keras 2) fixtures were not written")
    else:
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
        subprocess.run([sys.executable, os.path.abspath(__file__), "--tf-keras"], check=True,
                       env=env)
    for name in sorted(os.listdir(HERE)):
        if not name.endswith(".py"):
            print(f"{name:28s} {os.path.getsize(out(name)):7d} bytes")


if __name__ == "__main__":
    main()
