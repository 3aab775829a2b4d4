"""Test setup: Keras (when installed) runs on JAX's CPU backend with float64 enabled.

These variables must be set before Keras or JAX is imported anywhere.  Keras
also reads (and, if missing, writes) keras.json at import, so it gets a private
KERAS_HOME instead of the user's.
"""

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="deconv3d-keras-home-")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def keras():
    """The keras module on the JAX backend, or a skip when it is not installed."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip(f"Keras parity tests need the JAX backend, not {keras.backend.backend()}")
    return keras


@pytest.fixture(autouse=True)
def private_keras_home(tmp_path, monkeypatch):
    """Each test sees an empty KERAS_HOME, so keras.json defaults never leak between tests."""
    home = tmp_path / "keras-home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home
