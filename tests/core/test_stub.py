"""deconv3d/_core.pyi describes the compiled module exactly (mypy's stubtest)."""

import subprocess
import sys

import pytest


def test_core_stub_matches_the_module(tmp_path):
    pytest.importorskip("mypy.stubtest")
    # run from an empty folder: mypy keeps its cache there, and a source checkout's
    # deconv3d/ folder cannot shadow the installed package
    result = subprocess.run([sys.executable, "-m", "mypy.stubtest", "deconv3d._core"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
