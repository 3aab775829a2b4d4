"""Loading Conv3DTranspose layers from Keras files (deconv3d.keras_io).

The committed fixtures in tests/data (written by tests/data/make_fixtures.py)
come with the outputs Keras's own layers gave, so every loading path is
checked against Keras even where Keras is not installed.  Where Keras is
installed, fresh files are also written and compared with the live layers.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import deconv3d
from deconv3d.keras_io import (KerasFileContents, KerasLayerEntry, layer_from_keras_file,
                                  load_keras, read_keras_file, read_keras_weights, select_layer)

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
# Every test here needs h5py, except the one that checks the error without it.
WITHOUT_H5PY = {"test_missing_h5py_names_the_extra"}

FUNCTIONAL_LAYERS = ["up", "up_cf"]
NESTED_LAYERS = ["up", "block/up", "block/deep/last"]
TF_KERAS_LAYERS = ["up", "block/inner"]


def have_h5py():
    try:
        import h5py  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(autouse=True)
def h5py_required(request):
    if request.function.__name__ not in WITHOUT_H5PY and not have_h5py():
        pytest.skip("h5py is not installed")


def data(name):
    return os.path.join(DATA, name)


def read_bytes(name):
    with open(data(name), "rb") as handle:
        return handle.read()


def archive_config(name):
    with zipfile.ZipFile(data(name)) as archive:
        return json.loads(archive.read("config.json"))


def tf_keras_json():
    with open(data("tf_keras_model.json"), encoding="utf-8") as handle:
        return handle.read()


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def check_against_expected(layers, expected_file):
    expected = np.load(data(expected_file))
    for path, layer in layers.items():
        key = path.replace("/", "__")
        out = layer(expected[f"input__{key}"])
        reference = expected[f"output__{key}"]
        assert out.dtype == reference.dtype, path
        tolerance = 1e-12 if reference.dtype == np.float64 else 1e-5
        assert relative_error(out, reference) < tolerance, path


# ---------------------------------------------------------------------- every format
CASES = [
    ("functional.keras", None, "functional_expected.npz", FUNCTIONAL_LAYERS, "keras"),
    ("nested.keras", None, "nested_expected.npz", NESTED_LAYERS, "keras"),
    ("single.keras", None, "single_expected.npz", ["only"], "keras"),
    ("nested_legacy.h5", None, "nested_expected.npz", NESTED_LAYERS, "legacy-h5"),
    ("tf_keras_model.h5", None, "tf_keras_expected.npz", TF_KERAS_LAYERS, "legacy-h5"),
    ("functional.weights.h5", lambda: archive_config("functional.keras"),
     "functional_expected.npz", FUNCTIONAL_LAYERS, "weights.h5"),
    ("nested.weights.h5", lambda: archive_config("nested.keras"), "nested_expected.npz",
     NESTED_LAYERS, "weights.h5"),
    ("tf_keras_weights.h5", tf_keras_json, "tf_keras_expected.npz", TF_KERAS_LAYERS,
     "legacy-weights-h5"),
]


@pytest.mark.parametrize("name, config, expected, paths, fmt", CASES,
                         ids=[case[0] for case in CASES])
def test_loaded_layers_give_keras_outputs(name, config, expected, paths, fmt):
    layers = load_keras(data(name), config=config() if config else None)
    assert list(layers) == paths
    assert all(isinstance(layer, deconv3d.Conv3DTranspose) and layer.built
               for layer in layers.values())
    check_against_expected(layers, expected)
    assert read_keras_file(data(name), config() if config else None).format == fmt


@pytest.mark.parametrize("name, config, expected, paths, fmt", CASES,
                         ids=[case[0] for case in CASES])
def test_each_layer_alone(name, config, expected, paths, fmt):
    for path in paths:
        layer = layer_from_keras_file(data(name), name=path, config=config() if config else None)
        check_against_expected({path: layer}, expected)


def test_configs_survive_loading():
    layers = load_keras(data("functional.keras"))
    up, up_cf = layers["up"], layers["up_cf"]
    assert (up.name, up.strides, up.output_padding, up.activation.name) == (
        "up", (2, 2, 2), (1, 0, 1), "relu")
    assert (up_cf.data_format, up_cf.padding, up_cf.strides) == (
        "channels_first", "same", (1, 2, 1))
    assert up.get_build_config() == {"input_shape": [None, 3, 3, 3, 2]}
    nested = load_keras(data("nested.keras"))
    assert nested["block/up"].use_bias is False and nested["block/up"].bias is None
    assert nested["block/up"].dilation_rate == (2, 2, 2)
    assert nested["block/deep/last"].dtype == "float64"
    assert nested["block/deep/last"].kernel.dtype == np.float64


def test_layer_configs_match_the_file():
    # what inspect shows is the config Keras wrote, untouched
    contents = read_keras_file(data("functional.keras"))
    stored = {entry["config"]["name"]: entry["config"]
              for entry in archive_config("functional.keras")["config"]["layers"]}
    for entry in contents.layers:
        assert entry.config == stored[entry.name]


def test_layout_facts_of_keras3_files():
    contents = read_keras_file(data("nested.keras"))
    assert contents.keras_version and contents.keras_version.startswith("3.")
    assert [e.location for e in contents.layers] == [
        "/layers/conv3d_transpose/vars",
        "/layers/sequential/layers/conv3d_transpose/vars",
        "/layers/sequential/layers/functional/layers/conv3d_transpose/vars"]
    assert contents.other_layers == {"block": "Sequential", "block/mix": "Conv3D",
                                     "block/deep": "Functional"}
    functional = read_keras_file(data("functional.keras"))
    assert [e.location for e in functional.layers] == [
        "/layers/conv3d_transpose/vars", "/layers/conv3d_transpose_1/vars"]


def test_legacy_files_locations():
    contents = read_keras_file(data("nested_legacy.h5"))
    assert [e.location for e in contents.layers] == [
        "/model_weights/up", "/model_weights/block", "/model_weights/block"]
    keras2 = read_keras_file(data("tf_keras_model.h5"))
    assert keras2.keras_version.startswith("2.")


def test_weights_only_files_are_keyed_by_layer_path():
    weights = read_keras_weights(data("nested.weights.h5"))
    assert list(weights) == NESTED_LAYERS
    full = load_keras(data("nested.keras"))
    for path, arrays in weights.items():
        assert len(arrays) == len(full[path].weights)
        for stored, loaded in zip(arrays, full[path].weights):
            np.testing.assert_array_equal(stored, loaded)
    contents = read_keras_file(data("nested.weights.h5"))
    assert not contents.has_config and all(e.config is None for e in contents.layers)


def test_legacy_weights_only_candidates_include_conv3d_layers():
    # a Keras 2 weights file does not say which 5-D kernels are transposed convolutions
    contents = read_keras_file(data("tf_keras_weights.h5"))
    assert [e.path for e in contents.layers] == ["up", "mix", "block/inner"]


def test_weights_only_file_with_one_layer_config():
    expected = np.load(data("functional_expected.npz"))
    layer = layer_from_keras_file(
        data("functional.weights.h5"), name="up",
        config={"strides": 2, "output_padding": [1, 0, 1], "activation": "relu"})
    assert (layer.name, layer.filters, layer.kernel_size, layer.use_bias) == (
        "up", 3, (2, 2, 2), True)
    out = layer(expected["input__up"])
    assert relative_error(out, expected["output__up"]) < 1e-5


def test_weights_only_file_with_a_serialised_layer_config_and_json_text():
    layers = archive_config("functional.keras")["config"]["layers"]
    stored = {e["config"]["name"]: e for e in layers}
    wrapped = {"class_name": "Conv3DTranspose", "config": stored["up_cf"]["config"]}
    for config in (wrapped, json.dumps(stored["up_cf"]["config"])):
        layer = layer_from_keras_file(data("functional.weights.h5"), name="up_cf", config=config)
        check_against_expected({"up_cf": layer}, "functional_expected.npz")


def test_weights_only_defaults_need_an_explicit_empty_config():
    layer = layer_from_keras_file(data("nested.weights.h5"), name="block/up", config={})
    assert (layer.strides, layer.padding, layer.dilation_rate) == ((1, 1, 1), "valid", (1, 1, 1))
    assert layer.use_bias is False


def test_model_get_config_form_is_accepted():
    inner = archive_config("functional.keras")["config"]   # model.get_config()
    layers = load_keras(data("functional.weights.h5"), config=inner)
    check_against_expected(layers, "functional_expected.npz")


# ---------------------------------------------------------------------- choosing a layer
def test_name_may_be_omitted_for_a_single_layer():
    layer = layer_from_keras_file(data("single.keras"))
    assert layer.name == "only"


def test_bare_name_and_path_lookup():
    nested = data("nested.keras")
    assert layer_from_keras_file(nested, name="up").kernel.shape == (3, 3, 3, 2, 2)  # top level
    assert layer_from_keras_file(nested, name="block/up").kernel.shape == (2, 2, 2, 2, 2)
    assert layer_from_keras_file(nested, name="last").dtype == "float64"


def test_several_layers_need_a_name():
    with pytest.raises(ValueError, match=r"2 Conv3DTranspose layers \('up', 'up_cf'\)"):
        layer_from_keras_file(data("functional.keras"))


def test_unknown_name_lists_the_layers():
    with pytest.raises(ValueError) as info:
        layer_from_keras_file(data("nested.keras"), name="nope")
    message = str(info.value)
    assert "no layer named 'nope'" in message and "nested.keras" in message
    for path in NESTED_LAYERS:
        assert repr(path) in message


def test_layer_of_another_type_is_refused():
    with pytest.raises(ValueError, match=r"'mix' .* is not a Conv3DTranspose .*Conv3D"):
        layer_from_keras_file(data("functional.keras"), name="mix")
    with pytest.raises(ValueError, match="'block/deep' is a Functional"):
        layer_from_keras_file(data("nested.keras"), name="deep")


def test_ambiguous_bare_name():
    kernel = np.zeros((1, 1, 1, 1, 1), np.float32)
    entries = tuple(KerasLayerEntry(path, "up", None, (kernel,), "/x") for path in ("a/up", "b/up"))
    contents = KerasFileContents("f.keras", "keras", True, entries)
    with pytest.raises(ValueError, match=r"several Conv3DTranspose layers named 'up' \('a/up', "
                                         r"'b/up'\)"):
        select_layer(contents, "up")
    assert select_layer(contents, "b/up") is entries[1]


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="`name`"):
        layer_from_keras_file(data("single.keras"), name=3)


# ---------------------------------------------------------------------- bad files
def test_missing_file(tmp_path):
    missing = tmp_path / "absent.keras"
    with pytest.raises(FileNotFoundError, match="absent.keras"):
        load_keras(missing)


def test_path_must_be_a_path():
    with pytest.raises(TypeError, match="`path`"):
        load_keras(42)


def test_directory_is_not_a_keras_file(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        load_keras(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, not a model\n", b"\x00" * 4096])
def test_not_a_keras_file(tmp_path, content):
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="model.keras is not a Keras file"):
        load_keras(path)


def test_hdf5_file_that_is_not_keras():
    with pytest.raises(ValueError, match=r"not_keras.h5 is an HDF5 file but not a Keras model "
                                         r"or weights file .*data"):
        load_keras(data("not_keras.h5"))


def test_truncated_archive():
    with pytest.raises(ValueError, match="truncated.keras is a corrupt or truncated .keras "
                                         "archive"):
        load_keras(data("truncated.keras"))


def test_corrupt_archive_member(tmp_path):
    raw = bytearray(read_bytes("functional.keras"))
    with zipfile.ZipFile(data("functional.keras")) as archive:
        info = archive.getinfo("model.weights.h5")
    # flip bytes inside the stored HDF5 member: its CRC no longer matches
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    raw[start:start + 16] = bytes(255 - b for b in raw[start:start + 16])
    path = tmp_path / "corrupt.keras"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt.keras is a corrupt or truncated"):
        load_keras(path)


def test_truncated_hdf5(tmp_path):
    raw = read_bytes("nested_legacy.h5")
    path = tmp_path / "cut.h5"
    path.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match="cut.h5 is a corrupt or truncated HDF5 file"):
        load_keras(path)


def test_zip_that_is_not_a_keras_archive(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match="arrays.npz is a zip file but not a .keras archive"):
        load_keras(path)


def test_archive_without_weights(tmp_path):
    path = tmp_path / "noweights.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(archive_config("single.keras")))
    with pytest.raises(ValueError, match="noweights.keras: the .keras archive has no "
                                         "model.weights.h5"):
        load_keras(path)


def rewrite_archive(tmp_path, source, name, edit_config):
    """A copy of a fixture archive with an edited config.json."""
    config = archive_config(source)
    edit_config(config)
    path = tmp_path / name
    with zipfile.ZipFile(data(source)) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            payload = json.dumps(config) if item.filename == "config.json" else src.read(item)
            dst.writestr(item, payload)
    return path


def conv_configs(model_config):
    for entry in model_config["config"]["layers"]:
        if entry["class_name"] == "Conv3DTranspose":
            yield entry["config"]
        elif isinstance(entry["config"].get("layers"), list):
            yield from conv_configs(entry)


def test_mismatch_between_config_and_weights_loads_nothing(tmp_path):
    def edit(config):
        list(conv_configs(config))[2]["filters"] = 5      # the last of three layers
    path = rewrite_archive(tmp_path, "nested.keras", "bad.keras", edit)
    with pytest.raises(ValueError, match=r"bad.keras, layer 'block/deep/last': the stored kernel "
                                         r"has shape \(2, 2, 2, 2, 2\)"):
        load_keras(path)


def test_custom_activation_is_an_error_naming_the_layer(tmp_path):
    def edit(config):
        list(conv_configs(config))[0]["activation"] = {
            "module": "builtins", "class_name": "function", "config": "my_act",
            "registered_name": "function"}
    path = rewrite_archive(tmp_path, "functional.keras", "custom.keras", edit)
    with pytest.raises(ValueError, match=r"custom.keras, layer 'up': cannot build the layer from "
                                         r"its config: .*activation"):
        load_keras(path)


def test_unreadable_training_only_settings_are_dropped_with_a_warning(tmp_path):
    def edit(config):
        list(conv_configs(config))[0]["kernel_initializer"] = {
            "module": "mypackage", "class_name": "MyInit", "config": {},
            "registered_name": "mypackage>MyInit"}
    path = rewrite_archive(tmp_path, "functional.keras", "init.keras", edit)
    with pytest.warns(UserWarning, match="ignored training-only settings .*kernel_initializer"):
        layers = load_keras(path)
    check_against_expected(layers, "functional_expected.npz")


def test_weights_only_file_without_config():
    for call in (lambda: load_keras(data("functional.weights.h5")),
                 lambda: layer_from_keras_file(data("functional.weights.h5"), name="up"),
                 lambda: load_keras(data("tf_keras_weights.h5"))):
        with pytest.raises(ValueError, match="holds weights but no layer configs .* Pass "
                                             "`config`"):
            call()


def test_config_is_refused_for_files_with_their_own():
    for name in ("functional.keras", "nested_legacy.h5"):
        with pytest.raises(ValueError, match="holds its own config"):
            load_keras(data(name), config=archive_config("functional.keras"))
    with pytest.raises(ValueError, match="holds its own config"):
        layer_from_keras_file(data("single.keras"), config={"strides": 2})


def test_bad_config_arguments():
    with pytest.raises(TypeError, match="model_config"):
        read_keras_file(data("functional.weights.h5"), model_config=[1, 2])
    with pytest.raises(ValueError, match="not valid JSON"):
        load_keras(data("functional.weights.h5"), config="{nope")
    with pytest.raises(ValueError, match="not a model config"):
        load_keras(data("functional.weights.h5"), config={"strides": 2})


def test_model_config_that_does_not_match_the_weights():
    with pytest.raises(ValueError, match="no weights for nested model .block."):
        load_keras(data("functional.weights.h5"), config=archive_config("nested.keras"))


def test_missing_h5py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)     # `import h5py` now raises ImportError
    with pytest.raises(ImportError, match=r'h5py.*pip install "deconv3d\[keras\]"'):
        load_keras(data("functional.keras"))



# ---------------------------------------------------------------------- live Keras
def keras_output(layer, x):
    return np.asarray(layer(x))


@pytest.mark.parametrize("fixture", ["functional.keras", "nested.keras", "single.keras"])
def test_committed_fixtures_agree_with_live_keras(keras, fixture):
    model = keras.saving.load_model(data(fixture))
    ours = load_keras(data(fixture))
    rng = np.random.default_rng(7)
    for path, layer in ours.items():
        keras_layer = model
        for part in path.split("/"):
            keras_layer = keras_layer.get_layer(part)
        channels = layer.kernel.shape[4]
        shape = ((2, 4, 3, 5, channels) if layer.data_format == "channels_last"
                 else (2, channels, 4, 3, 5))
        x = rng.standard_normal(shape).astype(layer.compute_dtype)
        tolerance = 1e-12 if layer.compute_dtype == "float64" else 1e-5
        assert relative_error(layer(x), keras_output(keras_layer, x)) < tolerance, path


def build_live_model(keras):
    layers = keras.layers
    inner = keras.Sequential([
        keras.Input((None, None, None, 3)),
        layers.Conv3DTranspose(2, (2, 3, 1), strides=(1, 2, 3), padding="same",
                               output_padding=(0, 1, 2), activation="elu", name="t1"),
        layers.Conv3D(2, 1, name="c"),
    ], name="inner")
    inputs = keras.Input((2, None, None, 2))   # 2 channels first and last
    a = layers.Conv3DTranspose(3, 3, strides=2, name="t0")(inputs)
    b = inner(a)
    c = layers.Conv3DTranspose(4, 2, dilation_rate=(1, 2, 3), use_bias=False,
                               data_format="channels_first", name="t2")(inputs)
    model = keras.Model(inputs, [b, c], name="live")
    rng = np.random.default_rng(3)
    for layer in (model.get_layer("t0"), inner.get_layer("t1"), model.get_layer("t2")):
        layer.set_weights([rng.standard_normal(w.shape).astype(w.dtype)
                           for w in layer.get_weights()])
    return model, {"t0": model.get_layer("t0"), "inner/t1": inner.get_layer("t1"),
                   "t2": model.get_layer("t2")}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_files_written_now_by_keras(keras, tmp_path):
    model, keras_layers = build_live_model(keras)
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    model.save(tmp_path / "m.h5")
    config = json.loads(model.to_json())
    loaded = {"keras": load_keras(tmp_path / "m.keras"),
              "weights": load_keras(tmp_path / "m.weights.h5", config=config),
              "legacy": load_keras(tmp_path / "m.h5")}
    rng = np.random.default_rng(11)
    for how, layers in loaded.items():
        assert list(layers) == ["t0", "inner/t1", "t2"], how
        for path, layer in layers.items():
            channels = layer.kernel.shape[4]
            shape = ((2, 3, 4, 2, channels) if layer.data_format == "channels_last"
                     else (2, channels, 3, 4, 2))
            x = rng.standard_normal(shape).astype(np.float32)
            expected = keras_output(keras_layers[path], x)
            assert relative_error(layer(x), expected) < 1e-5, (how, path)


def test_from_keras_file_leaves_no_trace_of_a_failed_load(tmp_path):
    # the same file loads again after an error; nothing is cached between calls
    bad = tmp_path / "bad.keras"
    shutil.copy(data("truncated.keras"), bad)
    with pytest.raises(ValueError):
        load_keras(bad)
    shutil.copy(data("functional.keras"), bad)
    assert list(load_keras(bad)) == FUNCTIONAL_LAYERS


def test_in_memory_archive_reading_does_not_touch_the_file(tmp_path):
    path = tmp_path / "copy.keras"
    shutil.copy(data("functional.keras"), path)
    before = path.read_bytes()
    load_keras(path)
    assert path.read_bytes() == before


def test_files_without_name_attributes_map_by_class_order(tmp_path):
    # Keras 3.0 - 3.5 wrote no `name` attribute on the vars groups
    import h5py
    path = tmp_path / "old.weights.h5"
    shutil.copy(data("nested.weights.h5"), path)
    with h5py.File(path, "r+") as handle:
        def strip(_, item):
            if "name" in item.attrs:
                del item.attrs["name"]
        handle.visititems(strip)
    layers = load_keras(path, config=archive_config("nested.keras"))
    check_against_expected(layers, "nested_expected.npz")
    # without a config, the layers are named by their HDF5 groups
    assert list(read_keras_weights(path)) == [
        "conv3d_transpose", "sequential/conv3d_transpose",
        "sequential/functional/conv3d_transpose"]


def test_loading_never_imports_a_framework(tmp_path):
    code = """
import sys, json, zipfile
import deconv3d
from deconv3d.keras_io import load_keras, read_keras_file
data = sys.argv[1]
for name in ("functional.keras", "nested.keras", "nested_legacy.h5", "tf_keras_model.h5",
             "single.keras", "tf_keras_weights.h5", "nested.weights.h5"):
    read_keras_file(data + "/" + name)
load_keras(data + "/nested.keras")
load_keras(data + "/tf_keras_model.h5")
loaded = sorted(m for m in ("keras", "tensorflow", "torch", "jax", "tf_keras")
                if m in sys.modules)
print(loaded)
sys.exit(1 if loaded else 0)
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(deconv3d.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code, DATA], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
