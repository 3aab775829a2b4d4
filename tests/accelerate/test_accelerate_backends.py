"""deconv3d.keras on every installed Keras backend, each in its own process.

Keras picks its backend once per process, so ``backend_checks.py`` runs once
per backend (JAX, TensorFlow, PyTorch where installed) and each of its checks
becomes a test here.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS_SCRIPT = Path(__file__).with_name("backend_checks.py")
BACKENDS = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}

sys.path.insert(0, str(CHECKS_SCRIPT.parent))
import backend_checks  # noqa: E402  (only its check names: Keras is imported by the checks)

sys.path.pop(0)


@pytest.fixture(scope="session")
def backend_results(tmp_path_factory):
    """Run every check once per backend (lazily), keeping the results by backend."""
    cache = {}

    def results(backend):
        if importlib.util.find_spec(BACKENDS[backend]) is None or \
                importlib.util.find_spec("keras") is None:
            pytest.skip(f"Keras on {backend} is not installed")
        if backend not in cache:
            tmp = tmp_path_factory.mktemp(f"keras-{backend}")
            home = tmp / "keras-home"
            home.mkdir()
            env = dict(os.environ, KERAS_BACKEND=backend, KERAS_HOME=str(home),
                       JAX_PLATFORMS="cpu", JAX_ENABLE_X64="1", CUDA_VISIBLE_DEVICES="",
                       TF_CPP_MIN_LOG_LEVEL="2")
            out = tmp / "results.json"
            run = subprocess.run([sys.executable, str(CHECKS_SCRIPT), str(out)], env=env,
                                 cwd=str(tmp), capture_output=True, text=True, timeout=1800)
            if run.returncode != 0 or not out.exists():
                pytest.fail(f"the {backend} checks crashed:\n{run.stdout}\n{run.stderr}")
            cache[backend] = json.loads(out.read_text())
        return cache[backend]

    return results


@pytest.mark.parametrize("check", list(backend_checks.CHECKS))
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_backend(backend_results, backend, check):
    result = backend_results(backend)[check]
    if "skipped" in result:
        pytest.skip(f"a check of {result['skipped']}")
    assert result["ok"], result["error"]


def test_import_deconv3d_does_not_import_keras():
    code = ("import sys, deconv3d; "
            "assert not {'keras', 'jax', 'tensorflow', 'torch'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).parent))
