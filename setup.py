"""Build the compiled core (deconv3d._core) with OpenMP when the compiler has it.

Everything else about the package lives in pyproject.toml.  Set
DECONV3D_OPENMP=0 to force a serial build, or =1 to insist on OpenMP (the
build then fails instead of falling back).
"""

import glob
import json
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

BUILD_INFO = "_build_info.json"

OPENMP_PROBE = textwrap.dedent("""
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
""")


def openmp_flags(compiler):
    """(compile flags, link flags) that switch OpenMP on for this compiler."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang has no -fopenmp driver flag; libomp comes from the environment
        # (CPPFLAGS/LDFLAGS pointing at Homebrew or conda-forge libomp).
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def compiler_accepts(compiler, flags):
    """Compile an empty function with these flags, warnings as errors."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as handle:
            handle.write("int probe(void) { return 0; }\n")
        try:
            compiler.compile([source], output_dir=tmp, extra_postargs=flags + ["-Werror"])
        except Exception:  # any compiler failure means "not accepted"
            return False
    return True


def kernel_flags(compiler):
    """Flags for the micro-kernels on this target (never -march: they pick an ISA at run time).

    On aarch64, GCC's instruction scheduling before register allocation hoists the NEON
    kernels' input loads far enough to spill the sums they keep in registers (a third of
    their loads and stores go to the stack); without it each inner loop keeps its 24
    sums in registers.  Clang schedules after allocation and takes no such flag.
    """
    machine = platform.machine().lower()
    if compiler.compiler_type == "msvc" or machine not in ("aarch64", "arm64"):
        return []
    flags = ["-fno-schedule-insns"]
    return flags if compiler_accepts(compiler, flags) else []


def compiler_has_openmp(compiler, compile_flags, link_flags):
    """Compile and link a tiny OpenMP program with these flags."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as handle:
            handle.write(OPENMP_PROBE)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=compile_flags)
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=link_flags)
        except Exception:  # any compiler or linker failure means "no OpenMP"
            return False
    return True


class BuildExtWithOpenMP(build_ext):
    """build_ext that adds OpenMP flags when they work, and warns when they do not."""

    def build_extensions(self):
        choice = os.environ.get("DECONV3D_OPENMP", "auto").strip().lower()
        compile_flags, link_flags = openmp_flags(self.compiler)
        use_openmp = choice not in ("0", "false", "no", "off")
        if use_openmp and not compiler_has_openmp(self.compiler, compile_flags, link_flags):
            if choice in ("1", "true", "yes", "on"):
                raise RuntimeError("DECONV3D_OPENMP=1 but the compiler cannot build OpenMP code")
            warnings.warn("deconv3d: the C compiler has no usable OpenMP; building the core "
                          "serially (one thread)")
            use_openmp = False
        optimise = ["/O2"] if self.compiler.compiler_type == "msvc" else ["-O3"]
        for ext in self.extensions:
            ext.extra_compile_args = (optimise + kernel_flags(self.compiler)
                                      + (compile_flags if use_openmp else []))
            ext.extra_link_args = link_flags if use_openmp else []
        super().build_extensions()
        self.write_build_info(use_openmp)

    def write_build_info(self, use_openmp):
        """Record how the core was built, next to it, for deconv3d.show_config()."""
        ext = self.extensions[0]
        compiler = getattr(self.compiler, "compiler_so", None) or [self.compiler.compiler_type]
        info = {
            "compiler": compiler[0],
            "compiler_version": compiler_version(compiler[0]),
            "compile_args": list(ext.extra_compile_args),
            "link_args": list(ext.extra_link_args),
            "openmp_requested": use_openmp,
            "numpy_build_version": module_version("numpy"),
            "cython_version": module_version("Cython"),
            "python": sys.version.split()[0],
            "platform": sysconfig.get_platform(),
        }
        folder = os.path.join(self.build_lib, "deconv3d")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, BUILD_INFO), "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2)

    def copy_extensions_to_source(self):
        # in-place builds (and editable installs): the record goes next to the extension
        super().copy_extensions_to_source()
        source = os.path.join(self.build_lib, "deconv3d", BUILD_INFO)
        if os.path.exists(source):
            package_dir = self.get_finalized_command("build_py").get_package_dir("deconv3d")
            self.copy_file(source, os.path.join(package_dir, BUILD_INFO))


def compiler_version(executable):
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def module_version(name):
    try:
        return __import__(name).__version__
    except Exception:  # a missing or broken module only loses a line of show_config
        return "unknown"


def extensions():
    from Cython.Build import cythonize

    import numpy

    # the kernels are headers of the one translation unit (the sdist ships no .c files)
    depends = sorted(glob.glob(os.path.join("_ext", "*.pxd")) + glob.glob(os.path.join("_ext", "*.h"))
                     + glob.glob(os.path.join("_ext", "kernels", "*.h")))
    # the core reads arrays through NumPy's C API (O(1) checks and data pointers)
    core = Extension("deconv3d._core", ["_ext/_core.pyx"],
                     include_dirs=["_ext", numpy.get_include()],
                     define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                     depends=depends)
    return cythonize([core], include_path=["_ext"], language_level=3)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExtWithOpenMP})
