"""The ``apply`` and ``inspect`` commands (deconv3d.cli)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import deconv3d
from deconv3d import cli

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


pytestmark = pytest.mark.skipif(importlib.util.find_spec("h5py") is None,
                                reason="h5py is not installed")


def data(name):
    return os.path.join(DATA, name)


def run(*argv):
    """Parse and run like ``python -m deconv3d`` does."""
    return cli.main([str(a) for a in argv])


def expected(name, path):
    arrays = np.load(data(name))
    key = path.replace("/", "__")
    return arrays[f"input__{key}"], arrays[f"output__{key}"]


def close(actual, reference, tolerance=1e-5):
    assert actual.shape == reference.shape and actual.dtype == reference.dtype
    scale = max(float(np.abs(reference).max()), 1e-30)
    return float(np.abs(actual.astype(np.float64) - reference).max()) / scale < tolerance


# ---------------------------------------------------------------------- inspect
def test_inspect_lists_layers_and_configs(capsys):
    assert run("inspect", data("nested.keras")) == 0
    out = capsys.readouterr().out
    assert "Keras 3 .keras archive" in out and "3 Conv3DTranspose layers" in out
    for path in ("  up\n", "  block/up\n", "  block/deep/last\n"):
        assert path in out
    assert "dilation_rate=(2, 2, 2)" in out and "activation='tanh'" in out
    assert "dtype=float64" in out
    assert "kernel (2, 2, 2, 2, 2), no bias" in out
    assert "other layers: block (Sequential), block/mix (Conv3D), block/deep (Functional)" in out


def test_inspect_json(capsys):
    assert run("inspect", data("functional.keras"), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "keras" and report["has_config"] is True
    assert [layer["path"] for layer in report["layers"]] == ["up", "up_cf"]
    assert report["layers"][1]["config"]["data_format"] == "channels_first"
    assert report["layers"][0]["kernel_shape"] == [2, 2, 2, 3, 2]


def test_inspect_weights_only_file(capsys):
    assert run("inspect", data("tf_keras_weights.h5")) == 0
    out = capsys.readouterr().out
    assert "legacy Keras 2 HDF5 weights file" in out
    assert "Conv3D layers look the same" in out
    assert "config: none in the file" in out


@pytest.mark.parametrize("name, message", [
    ("absent.keras", "No such Keras file"),
    ("not_keras.h5", "not a Keras model or weights file"),
    ("truncated.keras", "corrupt or truncated"),
])
def test_inspect_errors(capsys, name, message):
    assert run("inspect", data(name)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("deconv3d inspect: error: ") and message in captured.err


# ---------------------------------------------------------------------- apply
def test_apply_npy_to_npy(tmp_path, capsys):
    x, reference = expected("functional_expected.npz", "up_cf")
    np.save(tmp_path / "in.npy", x)
    assert run("apply", data("functional.keras"), "--layer", "up_cf", "--input",
               tmp_path / "in.npy", "--output", tmp_path / "out.npy", "--threads", "1") == 0
    assert close(np.load(tmp_path / "out.npy"), reference)
    assert "wrote" in capsys.readouterr().err


def test_apply_npz_with_key_to_npz(tmp_path):
    x, reference = expected("nested_expected.npz", "block/deep/last")
    np.savez(tmp_path / "in.npz", other=np.zeros(3), volume=x)
    assert run("apply", data("nested_legacy.h5"), "--layer", "block/deep/last", "-i",
               tmp_path / "in.npz", "--key", "volume", "-o", tmp_path / "out.npz", "-q") == 0
    with np.load(tmp_path / "out.npz") as result:
        assert list(result.files) == ["output"]
        assert close(result["output"], reference, 1e-12)


def test_apply_single_layer_needs_no_name(tmp_path):
    x, reference = expected("single_expected.npz", "only")
    np.save(tmp_path / "in.npy", x)
    assert run("apply", data("single.keras"), "-i", tmp_path / "in.npy",
               "-o", tmp_path / "out.npy", "-q") == 0
    assert close(np.load(tmp_path / "out.npy"), reference)


def test_apply_converts_the_data_format(tmp_path):
    x, reference = expected("functional_expected.npz", "up")    # a channels_last layer
    np.save(tmp_path / "in.npy", x.transpose(0, 4, 1, 2, 3))
    assert run("apply", data("functional.keras"), "--layer", "up", "-i", tmp_path / "in.npy",
               "-o", tmp_path / "out.npy", "--data-format", "channels_first", "-q") == 0
    out = np.load(tmp_path / "out.npy")
    assert close(out.transpose(0, 2, 3, 4, 1), reference)


def test_apply_in_chunks_prints_progress(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_PROGRESS_EVERY", 0.0)
    x, _ = expected("functional_expected.npz", "up")
    batch = np.concatenate([x * (i + 1) for i in range(5)])
    np.save(tmp_path / "in.npy", batch)
    layer = deconv3d.keras_io.layer_from_keras_file(data("functional.keras"), "up")
    assert run("apply", data("functional.keras"), "--layer", "up", "-i", tmp_path / "in.npy",
               "-o", tmp_path / "out.npy", "--chunk", "2") == 0
    err = capsys.readouterr().err
    assert "5 samples in 3 chunks of up to 2" in err
    for line in ("2/5 samples (40%)", "4/5 samples (80%)", "5/5 samples (100%)"):
        assert line in err
    assert close(np.load(tmp_path / "out.npy"), layer(batch))


def test_apply_automatic_chunks_on_long_inputs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_CHUNK_WORK", 1.0)     # every sample is "long"
    x, reference = expected("functional_expected.npz", "up")
    np.save(tmp_path / "in.npy", np.concatenate([x, x, x]))
    assert run("apply", data("functional.keras"), "--layer", "up", "-i", tmp_path / "in.npy",
               "-o", tmp_path / "out.npy") == 0
    assert "3 samples in 3 chunks of up to 1" in capsys.readouterr().err
    out = np.load(tmp_path / "out.npy")
    assert all(close(out[i:i + 1], reference) for i in range(3))


def test_apply_quiet_prints_nothing(tmp_path, capsys):
    x, _ = expected("functional_expected.npz", "up")
    np.save(tmp_path / "in.npy", np.concatenate([x] * 3))
    assert run("apply", data("functional.keras"), "--layer", "up", "-i", tmp_path / "in.npy",
               "-o", tmp_path / "out.npy", "--chunk", "1", "-q") == 0
    assert capsys.readouterr().err == ""


def test_apply_weights_only_with_config_text_or_file(tmp_path):
    x, reference = expected("functional_expected.npz", "up")
    np.save(tmp_path / "in.npy", x)
    config = {"strides": 2, "output_padding": [1, 0, 1], "activation": "relu"}
    (tmp_path / "layer.json").write_text(json.dumps(config))
    for argument in (json.dumps(config), tmp_path / "layer.json"):
        assert run("apply", data("functional.weights.h5"), "--layer", "up", "--config",
                   argument, "-i", tmp_path / "in.npy", "-o", tmp_path / "out.npy", "-q") == 0
        assert close(np.load(tmp_path / "out.npy"), reference)
        os.remove(tmp_path / "out.npy")


def test_apply_weights_only_with_a_model_json(tmp_path):
    x, reference = expected("tf_keras_expected.npz", "block/inner")
    np.save(tmp_path / "in.npy", x)
    assert run("apply", data("tf_keras_weights.h5"), "--layer", "inner", "--config",
               data("tf_keras_model.json"), "-i", tmp_path / "in.npy",
               "-o", tmp_path / "out.npy", "-q") == 0
    assert close(np.load(tmp_path / "out.npy"), reference)


APPLY_ERRORS = [
    (["--layer", "nope"], "no layer named 'nope'"),
    (["--layer", "mix"], "is not a Conv3DTranspose"),
    ([], "2 Conv3DTranspose layers ('up', 'up_cf')"),
    (["--layer", "up", "--data-format", "channels_first"], "has 3 channels, but layer 'up' "
                                                           "expects 2"),
    (["--layer", "up", "--threads", "0"], "--threads must be a positive integer"),
    (["--layer", "up", "--chunk", "0"], "--chunk must be a positive integer"),
    (["--layer", "up", "--key", "x"], "--key is only for .npz inputs"),
]


@pytest.mark.parametrize("extra, message", APPLY_ERRORS, ids=range(len(APPLY_ERRORS)))
def test_apply_errors_write_nothing(tmp_path, capsys, extra, message):
    work = tmp_path / "work"
    work.mkdir()
    x, _ = expected("functional_expected.npz", "up")
    np.save(work / "in.npy", x)
    assert run("apply", data("functional.keras"), "-i", work / "in.npy",
               "-o", work / "out.npy", *extra) == 1
    err = capsys.readouterr().err
    assert err.startswith("deconv3d apply: error: ") and message in err
    assert sorted(os.listdir(work)) == ["in.npy"]     # no output, no temporary file


@pytest.mark.parametrize("model, inputs, output, message", [
    ("functional.keras", "absent.npy", "out.npy", "--input: no such file"),
    ("functional.keras", "in.txt", "out.npy", "expected a .npy or .npz file"),
    ("functional.keras", "in.npy", "out.csv", "out.csv': expected a .npy or .npz file"),
    ("truncated.keras", "in.npy", "out.npy", "corrupt or truncated"),
    ("functional.weights.h5", "in.npy", "out.npy", "Pass `config` (--config)"),
    ("absent.keras", "in.npy", "out.npy", "No such Keras file"),
])
def test_apply_file_errors(tmp_path, capsys, model, inputs, output, message):
    np.save(tmp_path / "in.npy", np.zeros((1, 2, 2, 2, 2), np.float32))
    (tmp_path / "in.txt").write_text("1 2 3")
    assert run("apply", data(model), "--layer", "up", "-i", tmp_path / inputs,
               "-o", tmp_path / output) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / output).exists()


def test_apply_npz_needs_a_key_when_ambiguous(tmp_path, capsys):
    np.savez(tmp_path / "in.npz", a=np.zeros(1), b=np.zeros(1))
    assert run("apply", data("single.keras"), "-i", tmp_path / "in.npz",
               "-o", tmp_path / "out.npy") == 1
    assert "holds 2 arrays (a, b); choose one with --key" in capsys.readouterr().err


def test_apply_wrong_rank(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.zeros((2, 3, 3, 3)))
    assert run("apply", data("single.keras"), "-i", tmp_path / "in.npy",
               "-o", tmp_path / "out.npy") == 1
    assert "needs a 5-D array" in capsys.readouterr().err


def test_apply_function_returns_the_shape(tmp_path):
    x, reference = expected("single_expected.npz", "only")
    np.save(tmp_path / "in.npy", x)
    shape = cli.apply_model(data("single.keras"), tmp_path / "in.npy",
                                   tmp_path / "out.npy")
    assert shape == reference.shape


# ---------------------------------------------------------------------- as a program
def subprocess_env():
    root = os.path.dirname(os.path.dirname(os.path.abspath(deconv3d.__file__)))
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=root if not path else root + os.pathsep + path)


def test_commands_run_in_a_fresh_interpreter(tmp_path):
    x, reference = expected("functional_expected.npz", "up")
    np.save(tmp_path / "in.npy", x)
    code = "import sys; from deconv3d.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "apply", data("functional.keras"),
                             "--layer", "up", "-i", "in.npy", "-o", "out.npy"],
                            cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert close(np.load(tmp_path / "out.npy"), reference)


def test_python_m_deconv3d(tmp_path):
    # from a neutral directory, so that the package (not the source folder) is imported
    result = subprocess.run([sys.executable, "-m", "deconv3d", "inspect",
                             data("functional.keras")], cwd=tmp_path, env=subprocess_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "2 Conv3DTranspose layers" in result.stdout
    x, reference = expected("functional_expected.npz", "up_cf")
    np.save(tmp_path / "in.npy", x)
    result = subprocess.run([sys.executable, "-m", "deconv3d", "apply", data("functional.keras"),
                             "--layer", "up_cf", "--input", "in.npy", "--output", "out.npz"],
                            cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "out.npz") as out:
        assert close(out["output"], reference)
