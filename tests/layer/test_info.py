"""deconv3d.show_config() reports how the installed core was built."""

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
    assert facts["micro_kernel"] in ("avx512f+avx2+fma", "avx2+fma", "generic")
    # the record written at build time travels with the extension (wheel or in-place build)
    assert facts["compiler"] != "unknown"
    assert facts["numpy_build"] != "unknown"
    if facts["openmp_compiled"]:
        assert facts["link_args"] or facts["compile_args"]
