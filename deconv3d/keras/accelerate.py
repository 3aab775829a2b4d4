"""``accelerate(model)``: every stock Conv3DTranspose of a Keras model runs on deconv3d."""

from __future__ import annotations

import keras

from .host import check_num_threads
from .layer import Conv3DTranspose


def accelerate(model, num_threads=None):
    """Make every ``keras.layers.Conv3DTranspose`` in ``model`` an accelerated one, in place.

    Each stock layer becomes a :class:`deconv3d.keras.Conv3DTranspose`
    (nested models and layers inside custom layers included) keeping its own
    variables, so the trained weights are shared, not copied, and the model
    stays the same object.  Subclasses of the stock layer are left alone (they
    may compute something else).  Saving the model afterwards writes an
    ordinary Keras model: the layers are saved as the stock class.

    Parameters
    ----------
    model : keras.Model or keras.layers.Layer
    num_threads : int, optional
        Threads for deconv3d's core in every accelerated layer; None uses
        deconv3d's default.

    Returns
    -------
    The same ``model``.

    Notes
    -----
    Compiled predict/train/evaluate functions are discarded so that the next
    call traces the accelerated layers.  To keep a stock copy for comparison,
    clone it first: ``keras.models.clone_model(model)`` followed by
    ``set_weights(model.get_weights())``.
    """
    num_threads = check_num_threads(num_threads)
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"accelerate expects a Keras model or layer, got "
                        f"{type(model).__name__}")
    # _flatten_layers walks nested models and sub-layers held by custom layers alike
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if type(layer) is keras.layers.Conv3DTranspose:
            # same instance (variables, name, graph position); only the class changes,
            # and the subclass adds no state that __init__ would have set
            layer.__class__ = Conv3DTranspose
        if type(layer) is Conv3DTranspose and num_threads is not None:
            layer.num_threads = num_threads
        if isinstance(layer, keras.Model):
            # traced functions hold the stock computation
            for attribute in ("predict_function", "train_function", "test_function"):
                if hasattr(layer, attribute):
                    setattr(layer, attribute, None)
    return model


def load_model(filepath, num_threads=None, **kwargs):
    """``keras.saving.load_model`` followed by :func:`accelerate`.

    Parameters
    ----------
    filepath : str or os.PathLike
        A ``.keras`` (or legacy ``.h5``) model file.
    num_threads : int, optional
        See :func:`accelerate`.
    **kwargs
        Passed to ``keras.saving.load_model`` (``custom_objects``, ``compile``,
        ``safe_mode``).
    """
    return accelerate(keras.saving.load_model(filepath, **kwargs), num_threads=num_threads)


# For ``custom_objects=``: the names a legacy .h5 file, or a config written by another
# class registration, uses for the layer.
custom_objects = {"Conv3DTranspose": Conv3DTranspose, "Convolution3DTranspose": Conv3DTranspose}
