"""Running deconv3d inside each Keras backend's graph, with gradients through Keras's op.

Each ``*_forward`` function returns the layer's output computed by deconv3d,
or None when deconv3d cannot serve this call and Keras's own op must run.
``stock`` is always the same function written with Keras ops, of ``(x,
*weights)``: the backends differentiate it, so gradients are exactly Keras's,
while the forward value comes from deconv3d.

Backend modules are imported inside the functions: only the active backend is
installed, or loaded, in a given process.
"""

from __future__ import annotations

import numpy as np


def jax_forward(x, weights, host, stock):
    """JAX: a host callback that also works under ``jit``, with a JVP from ``stock``.

    Forward- and reverse-mode derivatives both come from ``stock``'s JVP
    (reverse mode transposes it), so ``jax.grad`` through an accelerated layer
    is Keras's gradient.
    """
    import jax   # only the backend Keras runs on is imported

    if jax.default_backend() != "cpu" or not _jax_on_cpu(x):
        return None
    spec = jax.eval_shape(stock, x, *weights)

    def callback(x, *weights):
        return host(np.asarray(x), *(np.asarray(w) for w in weights), dtype=spec.dtype)

    @jax.custom_jvp
    def fast(x, *weights):
        # "sequential": a vmapped call runs the callback once per element, which is
        # always right (deconv3d needs rank-5 inputs, not batched ones)
        return jax.pure_callback(callback, spec, x, *weights, vmap_method="sequential")

    @fast.defjvp
    def fast_jvp(primals, tangents):
        return fast(*primals), jax.jvp(stock, primals, tangents)[1]

    return fast(x, *weights)


def _jax_on_cpu(x):
    import jax   # only the backend Keras runs on is imported

    if isinstance(x, jax.core.Tracer):
        return True           # traced under jit: placed on the default backend, checked above
    return all(device.platform == "cpu" for device in x.devices())


def tensorflow_forward(x, weights, host, stock, output_shape):
    """TensorFlow: ``tf.numpy_function`` (eager or inside ``tf.function``), with a custom gradient.

    The gradient re-runs ``stock`` under a tape, so training through an
    accelerated layer gets Keras's gradient (at Keras's speed).
    """
    import tensorflow as tf   # only the backend Keras runs on is imported

    if _tf_elsewhere_than_cpu(x):
        return None
    dtype = x.dtype

    @tf.custom_gradient
    def fast(x, *weights):
        y = tf.numpy_function(
            lambda *arrays: host(*arrays, dtype=dtype.as_numpy_dtype),
            [x, *weights], Tout=dtype, stateful=False, name="deconv3d_conv3d_transpose")
        y.set_shape(output_shape)

        def grad(dy):
            with tf.GradientTape() as tape:
                tape.watch([x, *weights])
                reference = stock(x, *weights)
            return tape.gradient(reference, [x, *weights], output_gradients=dy)

        return y, grad

    return fast(x, *weights)


def _tf_elsewhere_than_cpu(x):
    """True when TF would not run this op on the CPU, or cannot run Python here (XLA)."""
    import tensorflow as tf   # only the backend Keras runs on is imported

    if tf.executing_eagerly():
        return "CPU" not in (x.device or "CPU")
    if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
        return True          # graph placement is decided later: leave the choice to TF
    try:   # XLA (jit_compile=True) cannot compile a Python function
        from tensorflow.python.ops import control_flow_util
        return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
    except (ImportError, AttributeError):
        return False


def torch_forward(x, weights, host):
    """PyTorch: eager CPU tensors, only when autograd is not recording.

    When a gradient may be needed the caller runs Keras's op instead, so
    autograd sees the stock graph and the gradient is Keras's.
    """
    import torch   # only the backend Keras runs on is imported

    tensors = (x, *weights)
    if any(t.device.type != "cpu" for t in tensors):
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None
    arrays = [t.detach().numpy() for t in tensors]       # no copy for CPU tensors
    return torch.from_numpy(host(*arrays, dtype=arrays[0].dtype))
