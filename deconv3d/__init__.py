"""deconv3d: Keras-exact Conv3DTranspose for NumPy arrays, on a Cython/OpenMP core."""

from ._version import __version__
from .layer import Conv3DTranspose

# Keras exports the same class under its long name too.
Convolution3DTranspose = Conv3DTranspose

__all__ = ["Conv3DTranspose", "Convolution3DTranspose", "__version__"]
