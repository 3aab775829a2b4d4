"""deconv3d.show_config() reports how the installed core was built."""

import os
import subprocess
import sys

import numpy as np

import deconv3d
from deconv3d import info


def test_show_config_prints_the_facts(capsys):
    deconv3d.show_config()
    out = capsys.readouterr().out
    for key in ("deconv3d", "openmp_compiled", "default_threads", "micro_kernel", "compiler",
                "numpy_build", "numpy_runtime"):
        assert key in out


def test_facts_are_consistent():
    facts = info.facts()
    assert facts["deconv3d"] == deconv3d.__version__
    assert facts["numpy_runtime"] == np.__version__
    assert facts["default_threads"] >= 1
    assert facts["micro_kernel"] in ("avx512f+avx2+fma", "avx2+fma", "neon", "generic")
    # the record written at build time travels with the extension (wheel or in-place build)
    assert facts["compiler"] != "unknown"
    assert facts["numpy_build"] != "unknown"
    if facts["openmp_compiled"]:
        assert facts["link_args"] or facts["compile_args"]


def test_kernels_named_are_those_of_the_chosen_isa(tmp_path):
    """DECONV3D_KERNEL=generic leaves only the portable gemm kernels, and no row kernels;
    otherwise the normal-width gemm kernel is of the ISA micro_kernel names first."""
    script = "from deconv3d import info; print(info.facts()['kernels'])"
    # from an empty folder, so a checkout's unbuilt deconv3d/ cannot shadow the installed one
    portable = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env={**os.environ, "DECONV3D_KERNEL": "generic"}, check=True,
                              cwd=tmp_path)
    for part in portable.stdout.strip().split("; "):
        names = part.split(": ")[1].split(" + ")[0].split()
        assert len(names) == 3 and all(n.endswith("_generic") for n in names), part
        assert part.endswith("+ 0 row kernels"), part
    facts = info.facts()
    isa = facts["micro_kernel"].split("+")[0]
    f32 = facts["kernels"].split("; ")[0]
    assert f32.startswith("float32: ") and f32.split()[2].endswith("_" + isa), f32
