"""The command line: ``python -m deconv3d demo``."""

import subprocess
import sys

from deconv3d.cli import main


def test_demo_prints_shape_time_and_difference(capsys):
    assert main(["demo", "--repeats", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "(4, 20, 16, 24, 32)" in out
    assert "ms per call" in out
    assert "from the NumPy reference" in out


def test_demo_runs_as_a_module(tmp_path):
    # from a neutral directory, so the installed package is the one imported
    result = subprocess.run([sys.executable, "-m", "deconv3d", "demo", "--repeats", "1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "(4, 20, 16, 24, 32)" in result.stdout


def test_unknown_command_is_a_usage_error(capsys):
    import pytest
    with pytest.raises(SystemExit) as exit_info:
        main(["nope"])
    assert exit_info.value.code == 2
