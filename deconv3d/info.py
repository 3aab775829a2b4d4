"""``deconv3d.show_config()``: how this copy of deconv3d was built and how it will run."""

from __future__ import annotations

import json
import os
import platform
import sys

import numpy as np

from . import _core
from ._version import __version__


def _build_info() -> dict:
    path = os.path.join(os.path.dirname(__file__), "_build_info.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _openmp_runtime() -> str:
    """Which OpenMP library the process has loaded (Linux: read from /proc/self/maps)."""
    if not _core.openmp_enabled:
        return "none (serial build)"
    try:
        with open("/proc/self/maps", encoding="utf-8") as handle:
            maps = handle.read()
    except OSError:
        return "unknown"
    libraries = sorted({line.rsplit("/", 1)[-1] for line in maps.splitlines()
                        if any(name in line for name in ("libgomp", "libomp", "libiomp",
                                                         "vcomp"))})
    return ", ".join(libraries) if libraries else "unknown"


def _kernels() -> str:
    """Per dtype, the gemm kernel this CPU runs for each panel width and how many row
    kernels it has (after DECONV3D_KERNEL)."""
    parts = []
    for itemsize, dtype in ((4, "float32"), (8, "float64")):
        widths = _core.PANEL_WIDTHS[itemsize]
        gemm = [_core.find_kernel(itemsize, "gemm", nr) for nr in widths]
        rows = [nr for nr in widths for taps in (2, 3) for spacing in (1, 2)
                if _core.find_kernel(itemsize, "row", nr, taps, spacing)]
        parts.append(f"{dtype}: {' '.join(gemm)} + {len(rows)} row kernels")
    return "; ".join(parts)


def facts() -> dict:
    """The facts ``show_config`` prints, as a dict."""
    build = _build_info()
    return {
        "deconv3d": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "openmp_compiled": bool(_core.openmp_enabled),
        "openmp_version": _core.openmp_version,
        "openmp_runtime": _openmp_runtime(),
        "default_threads": _core.default_thread_count(),
        "micro_kernel": _core.micro_kernel,
        "kernels": _kernels(),
        "compiler": build.get("compiler_version", "unknown"),
        "compile_args": build.get("compile_args", []),
        "link_args": build.get("link_args", []),
        "numpy_build": build.get("numpy_build_version", "unknown"),
        "numpy_runtime": np.__version__,
        "cython": build.get("cython_version", "unknown"),
    }


def show_config() -> None:
    """Print version, OpenMP, threads, micro-kernel, compiler and NumPy facts."""
    for key, value in facts().items():
        if isinstance(value, list):
            value = " ".join(value) or "(none)"
        print(f"{key:16s} {value}")
