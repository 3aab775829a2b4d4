"""deconv3d inside Keras: an accelerated ``Conv3DTranspose`` and ``accelerate(model)``.

This subpackage imports Keras (and so its backend) at import time, because
everything in it is a Keras object.  ``import deconv3d`` never imports it, so
users of the NumPy layer do not pay for, or need, Keras.

>>> import deconv3d.keras
>>> model = deconv3d.keras.accelerate(keras.saving.load_model("unet.keras"))
>>> y = model.predict(x)                       # Conv3DTranspose layers run on deconv3d
"""

from .accelerate import accelerate, custom_objects, load_model
from .layer import Conv3DTranspose

# Keras exports the same class under its long name too.
Convolution3DTranspose = Conv3DTranspose

__all__ = ["Conv3DTranspose", "Convolution3DTranspose", "accelerate", "custom_objects",
           "load_model"]
