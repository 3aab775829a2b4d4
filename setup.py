"""Build the compiled core (deconv3d._core) with OpenMP when the compiler has it.

Everything else about the package lives in pyproject.toml.  Set
DECONV3D_OPENMP=0 to force a serial build, or =1 to insist on OpenMP (the
build then fails instead of falling back).
"""

import os
import sys
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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
            ext.extra_compile_args = optimise + (compile_flags if use_openmp else [])
            ext.extra_link_args = link_flags if use_openmp else []
        super().build_extensions()


def extensions():
    from Cython.Build import cythonize

    core = Extension("deconv3d._core", ["_ext/_core.pyx"], include_dirs=["_ext"],
                     depends=["_ext/microkernels.h", "_ext/_openmp_helpers.pxd"])
    return cythonize([core], include_path=["_ext"], language_level=3)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExtWithOpenMP})
