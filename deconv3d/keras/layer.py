"""``deconv3d.keras.Conv3DTranspose``: Keras's layer, with deconv3d computing inference on CPU."""

from __future__ import annotations

import keras
from keras import ops

from . import backends
from .host import HostConv, check_num_threads

# The compute dtypes deconv3d has a path for (float16 is computed in float32 and
# rounded, as deconv3d's float16 policies do); bfloat16 and the rest stay with Keras.
_SERVED_DTYPES = ("float16", "float32", "float64")
# Activations computed by deconv3d; any other activation (a custom function, a
# layer) runs in the backend after deconv3d's linear output.
_FUSABLE = frozenset((
    "celu elu exponential gelu glu hard_shrink hard_sigmoid hard_silu hard_swish hard_tanh linear "
    "leaky_relu log_sigmoid log_softmax mish relu relu6 selu sigmoid silu soft_shrink "
    "softmax softplus softsign sparse_plus sparse_sigmoid sparsemax squareplus swish tanh "
    "tanh_shrink").split())


class Conv3DTranspose(keras.layers.Conv3DTranspose):
    """``keras.layers.Conv3DTranspose`` whose CPU forward pass runs deconv3d's core.

    The constructor, weights, config and saved files are those of the stock
    Keras layer (a saved model names the stock class, so it loads without
    deconv3d).  On CPU in float16/float32/float64, the forward pass runs
    deconv3d: on JAX through a host callback (also under ``jit``, as
    ``model.predict`` compiles it), on TensorFlow through ``tf.numpy_function``
    (also inside ``tf.function``), on PyTorch on CPU tensors.  Elsewhere (a
    GPU or TPU, bfloat16, XLA on TensorFlow) Keras's own op runs.

    Gradients are always Keras's: on JAX and TensorFlow the derivative rule
    differentiates Keras's op, and on PyTorch a call that autograd records runs
    Keras's op.

    Parameters
    ----------
    *args, **kwargs
        Those of ``keras.layers.Conv3DTranspose``.
    num_threads : int, optional
        Threads for deconv3d's core (not saved in the config).  None uses
        deconv3d's default: OpenMP's, or one thread for small calls.
    """

    def __init__(self, *args, num_threads=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_threads = check_num_threads(num_threads)

    # A layer turned into this class by ``accelerate`` never ran __init__.
    num_threads = None

    def call(self, inputs):
        activation = _fusable_name(self.activation)
        out = self._deconv3d_call(inputs, activation)
        if out is None:
            return super().call(inputs)
        if activation is None and self.activation is not None:
            out = self.activation(out)
        return out

    def _deconv3d_call(self, x, activation):
        """The output computed by deconv3d, or None where Keras's op must run."""
        if getattr(self, "quantization_mode", None) is not None:
            return None       # a quantized kernel is not a float kernel deconv3d could read
        name = keras.backend.backend()
        dtype = keras.backend.standardize_dtype(x.dtype)
        weights = [self.kernel.value] + ([self.bias.value] if self.use_bias else [])
        if (name not in ("jax", "tensorflow", "torch") or dtype not in _SERVED_DTYPES
                or any(keras.backend.standardize_dtype(w.dtype) != dtype for w in weights)):
            return None
        host = self._host(dtype, activation)

        def stock(x, kernel, bias=None):
            return _keras_forward(self, x, kernel, bias, activation)

        if name == "jax":
            return backends.jax_forward(x, weights, host, stock)
        if name == "tensorflow":
            import tensorflow as tf   # only on Keras's TensorFlow backend

            weights = [tf.convert_to_tensor(w) for w in weights]   # values, not variables
            shape = self.compute_output_shape(tuple(x.shape))
            return backends.tensorflow_forward(x, weights, host, stock, shape)
        return backends.torch_forward(x, weights, host)

    def _host(self, dtype, activation):
        # one HostConv per (dtype, activation): each keeps its own packed weights
        hosts = self.__dict__.get("_deconv3d_hosts")
        if hosts is None:
            hosts = {}
            # plain attribute on purpose: Keras's tracker must not wrap this cache
            object.__setattr__(self, "_deconv3d_hosts", hosts)
        key = (dtype, activation, self.num_threads)
        if key not in hosts:
            hosts[key] = HostConv(self.get_config(), dtype, activation, self.num_threads)
        return hosts[key]


def _keras_forward(layer, x, kernel, bias, activation):
    """The stock layer's forward pass as a function of its weights (for derivatives).

    The same computation as ``keras.layers.Conv3DTranspose.call``, with the
    activation included only when deconv3d applies it too.
    """
    y = ops.conv_transpose(x, kernel, strides=list(layer.strides), padding=layer.padding,
                           output_padding=layer.output_padding,
                           dilation_rate=layer.dilation_rate, data_format=layer.data_format)
    if bias is not None:
        shape = ((1, 1, 1, 1, layer.filters) if layer.data_format == "channels_last"
                 else (1, layer.filters, 1, 1, 1))
        y = ops.add(y, ops.reshape(bias, shape))
    if activation is not None:
        y = layer.activation(y)
    return y


def _fusable_name(activation):
    """The Keras name of a built-in activation deconv3d computes, else None."""
    name = getattr(activation, "__name__", None)
    if name not in _FUSABLE:
        return None
    # a user function may share a built-in's name: only Keras's own function qualifies
    return name if keras.activations.get(name) is activation else None


def _register_as_stock():
    """Make Keras write this class as ``keras.layers.Conv3DTranspose`` when saving.

    A saved accelerated model is then an ordinary Keras model: it loads where
    deconv3d is not installed (as the stock layer).  Keras maps classes to
    their public names in one table; this adds the class to the
    class-to-name direction only, so loading still yields the stock class.
    """
    from keras.src import api_export   # the table behind serialize_keras_object

    api_export.REGISTERED_OBJS_TO_NAMES[Conv3DTranspose] = "keras.layers.Conv3DTranspose"


_register_as_stock()
