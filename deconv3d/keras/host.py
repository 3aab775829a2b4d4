"""The NumPy side of an accelerated layer: deconv3d computing one Keras layer's forward pass.

A backend hands over plain host arrays (input, kernel, bias) from inside its
graph; :class:`HostConv` returns the output array.  Nothing here imports Keras
or a backend, so the same object serves JAX callbacks, TensorFlow's
``numpy_function`` and eager PyTorch.
"""

from __future__ import annotations

import numbers

import numpy as np

import deconv3d

# The constructor arguments that fix what the layer computes; the rest of a Keras config
# (initializers, regularizers, constraints) only matters for training.
_STRUCTURE = ("filters", "kernel_size", "strides", "padding", "output_padding",
              "data_format", "dilation_rate", "use_bias")


def check_num_threads(value):
    """Validate a thread count before it reaches a callback, where errors read badly."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"num_threads must be a positive int or None, got {value!r}")
    return int(value)


class HostConv:
    """deconv3d's Conv3DTranspose for the weights a backend passes in.

    Parameters
    ----------
    config : dict
        The Keras layer's ``get_config()``; only the arguments that decide the
        forward pass are read.
    compute_dtype : {"float16", "float32", "float64"}
        The dtype Keras computes in (deconv3d computes float16 in float32 and
        rounds the output, as its float16 policies do).
    activation : str or None
        A Keras activation name for deconv3d to apply (element-wise ones run
        fused in its core), or None when the backend applies the activation.
    num_threads : int or None
        Threads for deconv3d's core; None uses its default policy.

    Notes
    -----
    The weights arrive as arguments on every call (so that a jitted function
    sees the values it was given, not a stale copy), and packing a kernel costs
    a pass over it: the packed layer is kept with a copy of the weights it was
    packed from and reused while the new ones compare equal, which costs one
    read of the kernel.  The (weights, layer) pair is replaced as a whole, so
    concurrent calls never pair one call's weights with another's layer.
    """

    def __init__(self, config, compute_dtype, activation=None, num_threads=None):
        self._arguments = {key: config[key] for key in _STRUCTURE if key in config}
        self._arguments.update(name=config.get("name"), dtype=compute_dtype,
                               activation=activation, kernel_initializer="zeros",
                               bias_initializer="zeros")
        self.num_threads = check_num_threads(num_threads)
        self._entry = None        # (kernel copy, bias copy or None, deconv3d layer)
        self.calls = 0            # how many forward passes deconv3d computed (for tests)

    def __call__(self, x, kernel, bias=None, dtype=None):
        """The layer's output for host arrays ``x``, ``kernel`` and ``bias``.

        Parameters
        ----------
        x : numpy.ndarray
            Rank-5 input in the layer's data format.
        kernel : numpy.ndarray
            ``(kd, kh, kw, filters, in_channels)``.
        bias : numpy.ndarray or None
        dtype : numpy dtype, optional
            The dtype the caller promised its graph (the result is cast to it).

        Returns
        -------
        numpy.ndarray
            C-contiguous output.
        """
        layer = self._layer_for(x.shape, kernel, bias)
        self.calls += 1
        out = layer(x, num_threads=self.num_threads)
        return np.ascontiguousarray(out, dtype=dtype)

    def _layer_for(self, shape, kernel, bias):
        entry = self._entry
        if (entry is not None and entry[0].shape == kernel.shape
                and np.array_equal(entry[0], kernel)
                and (bias is None or np.array_equal(entry[1], bias))):
            return entry[2]
        layer = deconv3d.Conv3DTranspose(**self._arguments)
        layer.build(shape)
        layer.set_weights([kernel] if bias is None else [kernel, bias])
        self._entry = (np.array(kernel), None if bias is None else np.array(bias), layer)
        return layer
