"""Layer API behaviour that needs no Keras: defaults, weights, config, inputs, dtypes."""

import json
import warnings

import numpy as np
import pytest

import deconv3d
from deconv3d import _core
from reference import conv3d_transpose, relative_error


def small_layer(**kwargs):
    arguments = dict(filters=3, kernel_size=2, strides=2)
    arguments.update(kwargs)
    return deconv3d.Conv3DTranspose(**arguments)


def test_seed_example_shape():
    x = np.random.rand(4, 10, 8, 12, 128)
    y = deconv3d.Conv3DTranspose(32, 2, 2, activation="relu")(x)
    assert y.shape == (4, 20, 16, 24, 32)
    assert y.dtype == np.float32
    assert (y >= 0).all()


def test_long_alias_is_the_same_class():
    assert deconv3d.Convolution3DTranspose is deconv3d.Conv3DTranspose


# ---------------------------------------------------------------- keras.json defaults
def test_data_format_defaults_to_channels_last():
    assert small_layer().data_format == "channels_last"


def test_data_format_default_read_from_keras_home(private_keras_home):
    (private_keras_home / "keras.json").write_text(
        json.dumps({"image_data_format": "channels_first", "floatx": "float64"}))
    layer = small_layer()
    assert layer.data_format == "channels_first"
    assert layer.dtype == "float64"
    y = layer(np.ones((1, 4, 2, 2, 2)))
    assert y.shape == (1, 3, 4, 4, 4) and y.dtype == np.float64


def test_keras_json_in_home_directory_when_keras_home_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".keras").mkdir()
    (tmp_path / ".keras" / "keras.json").write_text('{"image_data_format": "channels_first"}')
    assert small_layer().data_format == "channels_first"


def test_unreadable_keras_json_is_ignored(private_keras_home):
    (private_keras_home / "keras.json").write_text("{not json")
    assert small_layer().data_format == "channels_last"


def test_invalid_image_data_format_in_keras_json(private_keras_home):
    (private_keras_home / "keras.json").write_text('{"image_data_format": "NDHWC"}')
    with pytest.raises(ValueError, match="image_data_format"):
        small_layer()


# ---------------------------------------------------------------- weights
def test_weights_have_keras_layout_and_order():
    layer = deconv3d.Conv3DTranspose(5, (1, 2, 3))
    assert not layer.built and layer.weights == [] and layer.kernel is None
    layer.build((None, 4, 4, 4, 7))
    assert layer.built
    assert layer.kernel.shape == (1, 2, 3, 5, 7)
    assert layer.bias.shape == (5,)
    assert [w.shape for w in layer.get_weights()] == [(1, 2, 3, 5, 7), (5,)]
    assert layer.count_params() == 1 * 2 * 3 * 5 * 7 + 5
    assert np.all(layer.bias == 0)         # bias_initializer="zeros"


def test_without_bias_there_is_one_weight():
    layer = small_layer(use_bias=False)
    layer.build((1, 2, 2, 2, 4))
    assert layer.bias is None and len(layer.get_weights()) == 1


def test_set_weights_checks_count_and_shapes():
    layer = small_layer()
    with pytest.raises(ValueError, match="expecting 0 weights"):
        layer.set_weights([np.zeros((2, 2, 2, 3, 4)), np.zeros(3)])
    layer.build((1, 2, 2, 2, 4))
    with pytest.raises(ValueError, match="length 1"):
        layer.set_weights([np.zeros((2, 2, 2, 3, 4))])
    with pytest.raises(ValueError, match=r"\(2, 2, 2, 4, 3\)"):
        layer.set_weights([np.zeros((2, 2, 2, 4, 3)), np.zeros(3)])
    with pytest.raises(ValueError, match=r"\(4,\)"):
        layer.set_weights([np.zeros((2, 2, 2, 3, 4)), np.zeros(4)])
    with pytest.raises(ValueError, match="numeric"):
        layer.set_weights([np.zeros((2, 2, 2, 3, 4)), np.array(["a", "b", "c"])])
    with pytest.raises(ValueError, match="list"):
        layer.set_weights(np.zeros(3))
    # like Keras: a complex kernel loses its imaginary part, with NumPy's warning
    with pytest.warns(np.exceptions.ComplexWarning):
        layer.set_weights([np.full((2, 2, 2, 3, 4), 1 + 2j), np.zeros(3)])
    assert np.all(layer.kernel == 1)


def test_set_weights_casts_and_copies():
    layer = small_layer()
    layer.build((1, 2, 2, 2, 4))
    kernel = np.random.default_rng(0).standard_normal((2, 2, 2, 3, 4))
    layer.set_weights([kernel, np.arange(3)])
    assert layer.kernel.dtype == np.float32 and layer.bias.dtype == np.float32
    np.testing.assert_array_equal(layer.kernel, kernel.astype(np.float32))
    kernel[...] = 0                      # the layer kept its own copy
    assert np.any(layer.kernel != 0)
    with pytest.raises(ValueError):      # and it is read-only: set_weights is the way in
        layer.kernel[0, 0, 0, 0, 0] = 1.0


def test_new_weights_take_effect_on_the_next_call():
    rng = np.random.default_rng(1)
    layer = small_layer()
    x = rng.standard_normal((1, 2, 3, 2, 4))
    layer(x)
    kernel, bias = rng.standard_normal((2, 2, 2, 3, 4)), rng.standard_normal(3)
    layer.set_weights([kernel, bias])
    expected = conv3d_transpose(x, kernel, bias, (2, 2, 2))
    assert relative_error(layer(x), expected) < 1e-6


def test_seeded_initializer_is_reproducible():
    def kernel(seed):
        layer = small_layer(kernel_initializer={"class_name": "GlorotUniform",
                                                "config": {"seed": seed}})
        layer.build((1, 2, 2, 2, 4))
        return layer.kernel
    np.testing.assert_array_equal(kernel(3), kernel(3))
    assert not np.array_equal(kernel(3), kernel(4))


def test_glorot_uniform_uses_transposed_conv_fans():
    layer = deconv3d.Conv3DTranspose(16, 3, kernel_initializer="glorot_uniform")
    layer.build((1, 2, 2, 2, 8))
    limit = np.sqrt(6.0 / (27 * (16 + 8)))
    assert np.abs(layer.kernel).max() <= limit
    assert np.abs(layer.kernel).max() > 0.9 * limit


def test_callable_initializer():
    layer = small_layer(kernel_initializer=lambda shape, dtype=None: np.full(shape, 0.5))
    layer.build((1, 2, 2, 2, 4))
    assert np.all(layer.kernel == 0.5)


# ---------------------------------------------------------------- inputs
@pytest.mark.parametrize("make", [
    lambda x: x[:, ::-1],                              # negative strides
    lambda x: np.asfortranarray(x),                    # Fortran order
    lambda x: x.astype(">f8"),                         # big-endian
    lambda x: x.tolist(),                              # nested lists
    lambda x: np.repeat(x, 2, axis=3)[:, :, :, ::2],   # non-contiguous view
    lambda x: readonly(x),
], ids=["negative-strides", "fortran", "big-endian", "list", "strided-view", "read-only"])
def test_any_array_layout_gives_the_same_result(make):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 2, 4, 3))
    layer = small_layer()
    layer.build(x.shape)
    expected = conv3d_transpose(np.asarray(make(x), dtype=np.float64), layer.kernel, layer.bias,
                                (2, 2, 2))
    assert relative_error(layer(make(x)), expected) < 1e-6


def readonly(x):
    x = x.copy()
    x.flags.writeable = False
    return x


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool", "float16"])
def test_other_real_dtypes_are_cast_to_the_compute_dtype(dtype):
    x = (np.arange(2 * 2 * 2 * 2 * 3) % 3).reshape(2, 2, 2, 2, 3).astype(dtype)
    layer = small_layer()
    y = layer(x)
    assert y.dtype == np.float32
    expected = conv3d_transpose(x.astype(np.float64), layer.kernel, layer.bias, (2, 2, 2))
    assert relative_error(y, expected) < 1e-6


@pytest.mark.parametrize("bad, error", [(np.zeros((1, 2, 2, 2, 3), complex), TypeError),
                                        (np.zeros((1, 2, 2, 2, 3), object), TypeError),
                                        (np.array([["a"]]), ValueError),
                                        (None, ValueError)])
def test_non_real_inputs_are_rejected_like_keras(bad, error):
    with pytest.raises(error, match="inputs"):
        small_layer()(bad)


@pytest.mark.parametrize("shape", [(2, 2, 2, 3), (1, 2, 2, 2, 2, 3), ()])
def test_wrong_rank_is_a_value_error(shape):
    with pytest.raises(ValueError, match="ndim=5"):
        small_layer()(np.zeros(shape))


def test_ragged_lists_are_a_value_error():
    with pytest.raises(ValueError, match="inputs"):
        small_layer()([[1, 2], [3]])


def test_channel_mismatch_after_build():
    layer = small_layer()
    layer(np.zeros((1, 2, 2, 2, 3)))
    with pytest.raises(ValueError, match="axis 4"):
        layer(np.zeros((1, 2, 2, 2, 4)))
    # batch and spatial sizes may change freely
    assert layer(np.zeros((3, 1, 4, 2, 3))).shape == (3, 2, 8, 4, 3)


def test_autocast_false_refuses_other_float_dtypes():
    layer = small_layer(autocast=False)
    with pytest.raises(TypeError, match="autocast"):
        layer(np.zeros((1, 2, 2, 2, 3), np.float64))
    assert layer(np.zeros((1, 2, 2, 2, 3), np.float32)).dtype == np.float32


@pytest.mark.parametrize("dtype, out_dtype", [("float32", np.float32), ("float64", np.float64),
                                              ("float16", np.float16),
                                              ("mixed_float16", np.float16)])
def test_dtype_policies(dtype, out_dtype):
    layer = small_layer(dtype=dtype)
    y = layer(np.ones((1, 2, 2, 2, 3)))
    assert y.dtype == out_dtype
    variable = np.float32 if dtype == "mixed_float16" else out_dtype
    assert layer.kernel.dtype == variable
    expected = conv3d_transpose(np.ones((1, 2, 2, 2, 3)), layer.kernel, layer.bias, (2, 2, 2))
    assert relative_error(y, expected) < (1e-3 if out_dtype == np.float16 else 1e-6)


def test_channels_first_output_is_contiguous_ncdhw():
    layer = small_layer(data_format="channels_first")
    y = layer(np.ones((2, 4, 1, 2, 3)))
    assert y.shape == (2, 3, 2, 4, 6) and y.flags.c_contiguous


# ---------------------------------------------------------------- shapes and config
def test_compute_output_shape_keeps_unknown_dims():
    layer = deconv3d.Conv3DTranspose(5, 3, 2, padding="same")
    assert layer.compute_output_shape((None, 4, None, 6, 2)) == [None, 8, None, 12, 5]
    cf = deconv3d.Conv3DTranspose(5, 3, 2, data_format="channels_first")
    assert cf.compute_output_shape((1, 2, 4, 4, 4)) == [1, 5, 9, 9, 9]
    with pytest.raises(ValueError):
        layer.compute_output_shape((None, 4, 4, 2))


def test_config_round_trip_keeps_everything():
    layer = deconv3d.Conv3DTranspose(
        4, (1, 2, 3), (1, 1, 2), "SAME", "channels_first", output_padding=(0, 0, 1),
        activation="swish", use_bias=False, kernel_initializer="he_normal",
        kernel_regularizer="l2", activity_regularizer="l1", bias_constraint="non_neg",
        name="up", dtype="float64")
    config = layer.get_config()
    assert list(config)[:4] == ["name", "trainable", "dtype", "activity_regularizer"]
    assert config["padding"] == "same" and config["activation"] == "silu"
    assert config["dtype"]["config"]["name"] == "float64"
    clone = deconv3d.Conv3DTranspose.from_config(json.loads(json.dumps(config)))
    assert json.loads(json.dumps(clone.get_config())) == json.loads(json.dumps(config))


def test_from_config_accepts_a_tf_keras_2_config():
    keras2 = {"name": "conv3d_transpose", "trainable": True, "dtype": "float32",
              "filters": 2, "kernel_size": [2, 2, 2], "strides": [2, 2, 2], "padding": "valid",
              "data_format": "channels_last", "groups": 1, "activation": "relu",
              "use_bias": True,
              "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
              "bias_initializer": {"class_name": "Zeros", "config": {}},
              "kernel_regularizer": None, "bias_regularizer": None,
              "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
              "output_padding": None}
    layer = deconv3d.Conv3DTranspose.from_config(keras2)
    assert layer.kernel_size == (2, 2, 2) and layer.dilation_rate == (1, 1, 1)
    with pytest.raises(TypeError, match="groups"):     # Keras: TypeError on any bad config
        deconv3d.Conv3DTranspose.from_config(dict(keras2, groups=2))


def test_default_names_are_unique():
    names = {small_layer().name for _ in range(3)}
    assert len(names) == 3 and all(n.startswith("conv3d_transpose") for n in names)


def test_input_shape_argument_warns_like_keras():
    with pytest.warns(UserWarning, match="input_shape"):
        small_layer(input_shape=(2, 2, 2, 3))


def test_regularizers_and_constraints_do_not_change_the_output():
    rng = np.random.default_rng(3)
    plain = small_layer()
    decorated = small_layer(kernel_regularizer="l1", bias_regularizer="l2",
                            activity_regularizer="l1l2", kernel_constraint="max_norm",
                            bias_constraint="unit_norm")
    x = rng.standard_normal((1, 2, 2, 2, 3))
    plain.build(x.shape)
    decorated.build(x.shape)
    decorated.set_weights(plain.get_weights())
    np.testing.assert_array_equal(plain(x), decorated(x))


# ---------------------------------------------------------------- threads
def test_thread_count_does_not_change_a_single_bit():
    rng = np.random.default_rng(4)
    layer = deconv3d.Conv3DTranspose(8, 3, 2, padding="same")
    x = rng.standard_normal((2, 5, 6, 7, 5))
    results = [layer(x, num_threads=n) for n in (1, 2, 3, 8)]
    for result in results[1:]:
        np.testing.assert_array_equal(results[0], result)
    layer.num_threads = 1
    np.testing.assert_array_equal(layer(x), results[0])


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                        ("2", TypeError), (True, TypeError)])
def test_invalid_thread_counts(bad, error):
    with pytest.raises(error, match="num_threads"):
        small_layer(num_threads=bad)
    with pytest.raises(error, match="num_threads"):
        small_layer()(np.zeros((1, 2, 2, 2, 3)), num_threads=bad)


def test_openmp_compiled_in():
    # A wheel or build that silently lost OpenMP would run single-threaded.
    import os
    if os.environ.get("DECONV3D_OPENMP", "").lower() in ("0", "false", "no", "off"):
        pytest.skip("built serially on purpose (DECONV3D_OPENMP=0)")
    assert _core.openmp_enabled
    assert _core.default_thread_count() >= 1


def test_no_warnings_on_normal_use():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small_layer(activation="gelu")(np.ones((1, 2, 2, 2, 3)))
