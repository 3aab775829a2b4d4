"""Layers from live Keras layers and PyTorch modules, and back to PyTorch (deconv3d.frameworks).

Keras tests use the ``keras`` fixture (skipped without Keras); PyTorch tests
skip without torch.  Every expected value comes from the framework itself.
"""

import itertools

import numpy as np
import pytest

import deconv3d
from deconv3d.frameworks import (_TORCH_ACTIVATIONS, keras_padding_for_torch,
                                 layer_from_keras_layer, layer_from_torch, layer_to_torch)


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


# ---------------------------------------------------------------------- Keras layers
KERAS_CONFIGS = [
    dict(filters=3, kernel_size=2, strides=2),
    dict(filters=2, kernel_size=3, padding="same", strides=(2, 1, 3), output_padding=(1, 0, 2)),
    dict(filters=4, kernel_size=(3, 1, 2), dilation_rate=(2, 1, 3), use_bias=False,
         activation="tanh"),
    dict(filters=2, kernel_size=2, strides=2, padding="same", data_format="channels_first",
         activation="relu"),
    dict(filters=2, kernel_size=3, dtype="float64", bias_initializer="ones"),
]


@pytest.mark.parametrize("config", KERAS_CONFIGS, ids=range(len(KERAS_CONFIGS)))
def test_from_keras_layer_gives_keras_output(keras, config):
    keras_layer = keras.layers.Conv3DTranspose(**config)
    channels_first = config.get("data_format") == "channels_first"
    shape = (2, 3, 4, 3, 5) if channels_first else (2, 4, 3, 5, 3)
    rng = np.random.default_rng(0)
    dtype = config.get("dtype", "float32")
    x = rng.standard_normal(shape).astype(dtype)
    keras_layer(x)   # build
    keras_layer.set_weights([rng.standard_normal(w.shape).astype(dtype)
                             for w in keras_layer.get_weights()])
    layer = layer_from_keras_layer(keras_layer)
    assert isinstance(layer, deconv3d.Conv3DTranspose)
    assert layer.name == keras_layer.name and layer.dtype == dtype
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    assert relative_error(layer(x), np.asarray(keras_layer(x))) < tolerance
    # a copy: changing the Keras layer afterwards does not change ours
    before = layer.get_weights()
    keras_layer.set_weights([w * 2 for w in keras_layer.get_weights()])
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_from_keras_layer_refuses_other_layers(keras):
    conv = keras.layers.Conv3D(2, 2)
    conv.build((None, 4, 4, 4, 2))
    with pytest.raises(TypeError, match=r"must be a keras.layers.Conv3DTranspose, got "
                                        r".*Conv3D$"):
        layer_from_keras_layer(conv)


def test_from_keras_layer_refuses_non_layers():
    with pytest.raises(TypeError, match="got builtins.dict"):
        layer_from_keras_layer({"filters": 2})


def test_from_keras_layer_needs_a_built_layer(keras):
    layer = keras.layers.Conv3DTranspose(2, 2, name="fresh")
    with pytest.raises(ValueError, match="'fresh' has no weights yet"):
        layer_from_keras_layer(layer)


def test_from_keras_layer_with_a_keras2_style_config():
    # a stand-in with what tf.keras 2 returns: 'groups', no 'dilation_rate', string dtype
    class Conv3DTranspose:
        name = "k2"

        def get_config(self):
            return {"name": "k2", "trainable": True, "dtype": "float32", "filters": 2,
                    "kernel_size": [2, 2, 2], "strides": [2, 2, 2], "padding": "valid",
                    "data_format": "channels_last", "groups": 1, "activation": "linear",
                    "use_bias": True, "kernel_initializer": {"class_name": "GlorotUniform",
                                                             "config": {"seed": None}},
                    "bias_initializer": {"class_name": "Zeros", "config": {}},
                    "kernel_regularizer": None, "bias_regularizer": None,
                    "activity_regularizer": None, "kernel_constraint": None,
                    "bias_constraint": None, "output_padding": None}

        def get_weights(self):
            return [np.ones((2, 2, 2, 2, 3), np.float32), np.zeros(2, np.float32)]

    layer = layer_from_keras_layer(Conv3DTranspose())
    assert layer.strides == (2, 2, 2) and layer.kernel.shape == (2, 2, 2, 2, 3)
    assert layer(np.ones((1, 1, 1, 1, 3))).shape == (1, 2, 2, 2, 2)


# ---------------------------------------------------------------------- PyTorch
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_output(module, x):
    import torch
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def keras_windows_matching(module, x, kernel, bias):
    """Every Keras (padding, output_padding) whose deconv3d output equals torch's."""
    k, s, d = module.kernel_size, module.stride, module.dilation
    reference = torch_output(module, x)
    found = []
    if max(s) > 1 and max(d) > 1:
        return found
    choices = [None] + [tuple(o) for o in itertools.product(*(range(v) for v in s))]
    for padding in ("valid", "same"):
        for output_padding in choices:
            layer = deconv3d.Conv3DTranspose(
                kernel.shape[3], k, strides=s, padding=padding, output_padding=output_padding,
                dilation_rate=d, data_format="channels_first", dtype="float64")
            layer.build(x.shape)
            layer.set_weights([kernel, bias])
            out = layer(x)
            if out.shape == reference.shape and np.allclose(out, reference, atol=1e-9):
                found.append((padding, output_padding))
    return found


def torch_cases():
    """(kernel, stride, padding, output_padding, dilation) that torch accepts, per axis."""
    cases = []
    for k, s, p, op, d in itertools.product((1, 2, 3, 4), (1, 2, 3), (0, 1, 2), (0, 1, 2),
                                            (1, 2)):
        if op < max(s, d) and (k - 1) * d + 1 + op - 2 * p > 0:
            cases.append(((k,) * 3, (s,) * 3, (p,) * 3, (op,) * 3, (d,) * 3))
    # axes that differ
    cases += [((3, 2, 1), (2, 1, 3), (0, 0, 0), (1, 0, 2), (1, 1, 1)),
              ((3, 3, 5), (1, 1, 1), (1, 1, 2), (0, 0, 0), (1, 1, 1)),
              ((4, 2, 3), (2, 2, 1), (1, 0, 1), (0, 0, 0), (1, 1, 1)),
              ((3, 2, 1), (1, 1, 1), (1, 0, 0), (0, 0, 0), (1, 1, 1)),
              ((2, 3, 2), (1, 1, 1), (0, 0, 0), (0, 1, 1), (1, 2, 3))]
    return cases


@pytest.mark.parametrize("case", torch_cases(), ids=lambda c: "-".join(
    "".join(map(str, v)) for v in c))
def test_from_torch_is_exact_or_refused_rightly(torch, case):
    k, s, p, op, d = case
    torch.manual_seed(0)
    module = torch.nn.ConvTranspose3d(3, 2, k, stride=s, padding=p, output_padding=op,
                                      dilation=d).double()
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 4, 2))
    kernel = module.weight.detach().numpy().transpose(2, 3, 4, 1, 0)
    bias = module.bias.detach().numpy()
    try:
        layer = layer_from_torch(module)
    except ValueError as error:
        assert "torch.nn.ConvTranspose3d" in str(error)
        # the refusal is right: no Keras padding/output_padding reproduces torch
        assert keras_windows_matching(module, x, kernel, bias) == []
        return
    assert layer.data_format == "channels_first" and layer.dtype == "float64"
    assert relative_error(layer(x), torch_output(module, x)) < 1e-12
    # and back to torch
    assert relative_error(torch_output(layer_to_torch(layer), x), torch_output(module, x)) < 1e-12


@pytest.mark.parametrize("k, s, p, op", [(2, 2, 0, 0), (3, 2, 0, 1), (4, 2, 1, 0), (3, 1, 1, 0),
                                         (5, 3, 1, 0), (1, 2, 0, 1)])
def test_from_torch_float32_within_1e_5(torch, k, s, p, op):
    torch.manual_seed(2)
    module = torch.nn.ConvTranspose3d(4, 5, k, stride=s, padding=p, output_padding=op)
    x = np.random.default_rng(2).standard_normal((2, 4, 5, 3, 4)).astype(np.float32)
    layer = layer_from_torch(module, name="from_torch")
    assert layer.name == "from_torch" and layer.dtype == "float32"
    assert relative_error(layer(x), torch_output(module, x)) < 1e-5


def test_common_torch_settings_map_as_documented():
    assert keras_padding_for_torch((2,) * 3, (2,) * 3, (0,) * 3, (0,) * 3, (1,) * 3) == (
        "valid", None)
    assert keras_padding_for_torch((3,) * 3, (2,) * 3, (0,) * 3, (1,) * 3, (1,) * 3) == (
        "valid", (1, 1, 1))
    assert keras_padding_for_torch((4,) * 3, (2,) * 3, (1,) * 3, (0,) * 3, (1,) * 3) == (
        "same", None)
    assert keras_padding_for_torch((3,) * 3, (1,) * 3, (1,) * 3, (0,) * 3, (1,) * 3) == (
        "same", None)


def test_the_usual_torch_upsampler_has_no_keras_equivalent():
    with pytest.raises(ValueError, match="axis D crops 1 in front and 0 at the back .* Keras "
                                         "never crops more in front than at the back"):
        keras_padding_for_torch((3,) * 3, (2,) * 3, (1,) * 3, (1,) * 3, (1,) * 3)


def test_mixed_axes_message():
    with pytest.raises(ValueError, match="axis D needs 'same', axis H needs 'valid'.*one "
                                         "padding for all axes"):
        keras_padding_for_torch((3, 2, 1), (1,) * 3, (1, 0, 0), (0,) * 3, (1,) * 3)


def test_from_torch_without_bias(torch):
    module = torch.nn.ConvTranspose3d(2, 3, 2, stride=2, bias=False)
    layer = layer_from_torch(module)
    assert layer.use_bias is False and layer.bias is None
    x = np.random.default_rng(3).standard_normal((1, 2, 3, 3, 3)).astype(np.float32)
    assert relative_error(layer(x), torch_output(module, x)) < 1e-5


def test_from_torch_refuses_groups(torch):
    module = torch.nn.ConvTranspose3d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="groups=2"):
        layer_from_torch(module)


def test_from_torch_refuses_other_padding_modes(torch):
    module = torch.nn.ConvTranspose3d(2, 2, 3)
    module.padding_mode = "reflect"    # torch refuses it in the constructor; set it anyway
    with pytest.raises(ValueError, match="padding_mode='reflect'"):
        layer_from_torch(module)


def test_from_torch_takes_stride_with_dilation_through_crops(torch):
    module = torch.nn.ConvTranspose3d(2, 2, 3, stride=2, dilation=2).double()
    with pytest.raises(ValueError, match=r"stride=\(2, 2, 2\), dilation=\(2, 2, 2\)\) has no "
                                         r"Keras equivalent"):
        keras_padding_for_torch((3,) * 3, (2,) * 3, (0,) * 3, (0,) * 3, (2,) * 3)
    layer = layer_from_torch(module)
    assert layer.crops == ((0, 0),) * 3
    x = np.random.default_rng(6).standard_normal((1, 2, 3, 4, 2))
    assert relative_error(layer(x), torch_output(module, x)) < 1e-12


def test_the_usual_torch_upsampler_converts_with_crops(torch):
    module = torch.nn.ConvTranspose3d(3, 2, 3, stride=2, padding=1, output_padding=1).double()
    layer = layer_from_torch(module)
    assert layer.crops == ((1, 0),) * 3 and layer.get_config()["crops"] == [[1, 0]] * 3
    x = np.random.default_rng(7).standard_normal((2, 3, 3, 5, 4))
    assert relative_error(layer(x), torch_output(module, x)) < 1e-12
    back = layer_to_torch(layer)
    assert isinstance(back, torch.nn.ConvTranspose3d)
    assert (back.padding, back.output_padding) == ((1, 1, 1), (1, 1, 1))
    # and through its config
    again = deconv3d.Conv3DTranspose.from_config(layer.get_config())
    again.build(x.shape)
    again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(again(x), layer(x))


def test_from_torch_refuses_uninitialised_lazy_modules(torch):
    module = torch.nn.LazyConvTranspose3d(2, 3)
    with pytest.raises(ValueError, match="lazy module"):
        layer_from_torch(module)


def test_from_torch_refuses_other_modules(torch):
    with pytest.raises(TypeError, match="torch.nn.ConvTranspose3d, got .*Conv3d"):
        layer_from_torch(torch.nn.Conv3d(2, 2, 3))
    with pytest.raises(TypeError, match="got builtins.str"):
        layer_from_torch("module")


def test_from_torch_refuses_bfloat16(torch):
    module = torch.nn.ConvTranspose3d(2, 2, 2).to(torch.bfloat16)
    with pytest.raises(ValueError, match="dtype torch.bfloat16"):
        layer_from_torch(module)


# ---------------------------------------------------------------------- to PyTorch
TO_TORCH_CONFIGS = [
    dict(filters=2, kernel_size=3, strides=2, padding="same"),            # odd crop at the back
    dict(filters=2, kernel_size=(3, 2, 4), strides=(2, 1, 3), padding="same",
         output_padding=(1, 0, 2)),
    dict(filters=3, kernel_size=2, strides=3),                            # zeros appended
    dict(filters=3, kernel_size=2, strides=2, output_padding=1, activation="relu"),
    dict(filters=2, kernel_size=3, dilation_rate=2, padding="same", use_bias=False,
         activation="sigmoid"),
    dict(filters=2, kernel_size=2, data_format="channels_first", activation="leaky_relu"),
    dict(filters=2, kernel_size=1, strides=2, padding="same", activation="gelu"),
]


@pytest.mark.parametrize("config", TO_TORCH_CONFIGS, ids=range(len(TO_TORCH_CONFIGS)))
def test_to_torch_computes_the_same(torch, config):
    layer = deconv3d.Conv3DTranspose(**config, dtype="float64")
    rng = np.random.default_rng(4)
    channels_first = config.get("data_format") == "channels_first"
    x = rng.standard_normal((2, 3, 4, 3, 5) if channels_first else (2, 4, 3, 5, 3))
    layer.build(x.shape)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.weights])
    module = layer_to_torch(layer)
    x_first = x if channels_first else x.transpose(0, 4, 1, 2, 3)
    out = torch_output(module, np.ascontiguousarray(x_first))
    ours = layer(x)
    if not channels_first:
        ours = ours.transpose(0, 4, 1, 2, 3)
    assert relative_error(out, ours) < 1e-12


def test_to_torch_gives_a_plain_module_when_one_exists(torch):
    layer = deconv3d.Conv3DTranspose(2, 4, strides=2, padding="same")
    layer.build((None, None, None, None, 3))
    module = layer_to_torch(layer)
    assert isinstance(module, torch.nn.ConvTranspose3d)
    assert (module.padding, module.output_padding) == ((1, 1, 1), (0, 0, 0))
    odd = deconv3d.Conv3DTranspose(2, 3, strides=2, padding="same")
    odd.build((None, None, None, None, 3))
    assert isinstance(layer_to_torch(odd), torch.nn.Sequential)


def test_to_torch_refusals(torch):
    layer = deconv3d.Conv3DTranspose(2, 2)
    with pytest.raises(ValueError, match="not built"):
        layer_to_torch(layer)
    layer = deconv3d.Conv3DTranspose(2, 2, activation="softmax")
    layer.build((None, None, None, None, 3))
    with pytest.raises(ValueError, match="activation 'softmax'"):
        layer_to_torch(layer)
    with pytest.raises(TypeError, match="deconv3d.Conv3DTranspose"):
        layer_to_torch(object())


@pytest.mark.parametrize("activation", sorted(_TORCH_ACTIVATIONS))
def test_to_torch_activations(torch, activation):
    layer = deconv3d.Conv3DTranspose(3, 2, strides=2, activation=activation, dtype="float64",
                                     data_format="channels_first")
    x = 2 * np.random.default_rng(5).standard_normal((2, 2, 3, 3, 3))
    layer.build(x.shape)
    module = layer_to_torch(layer)
    assert relative_error(torch_output(module, x), layer(x)) < 1e-7
