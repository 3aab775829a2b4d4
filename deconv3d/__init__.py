"""deconv3d: Keras-exact Conv3DTranspose for NumPy arrays, on a Cython/OpenMP core."""

from ._version import __version__

try:
    from . import _core  # noqa: F401  (the compiled extension)
except ImportError as error:  # pragma: no cover - only in an unbuilt source tree
    raise ImportError(
        "deconv3d's compiled core (deconv3d._core) is missing. This usually means Python "
        "imported the unbuilt source folder 'deconv3d/' of a checkout instead of the "
        "installed package: run from another directory (or use the `deconv3d` command), "
        "or build in place with `python -m pip install -e .`.") from error

from . import interop  # noqa: E402,F401  (adds the Keras-file and torch methods to the layer)
from .info import show_config  # noqa: E402
from .keras_io import load_keras, read_keras_file, read_keras_weights  # noqa: E402
from .layer import Conv3DTranspose  # noqa: E402
from .onnx_io import load_onnx  # noqa: E402

# Keras exports the same class under its long name too.
Convolution3DTranspose = Conv3DTranspose

__all__ = ["Conv3DTranspose", "Convolution3DTranspose", "load_keras", "load_onnx",
           "read_keras_file", "read_keras_weights", "show_config", "__version__"]
