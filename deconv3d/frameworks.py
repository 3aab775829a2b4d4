"""Conv3DTranspose layers from (and to) live Keras layers and PyTorch modules.

Keras is never imported (a live layer is read through its own methods), and
PyTorch only inside the functions that need it: it is an optional, heavy
dependency, and the caller who converts already has it.

PyTorch's ``ConvTranspose3d`` and Keras's ``Conv3DTranspose`` compute the same
uncropped transposed convolution (a scatter with the kernel unflipped); they
differ in which window of it they return.  Per axis, with input length ``n``,
kernel ``k``, stride ``s``, dilation ``d``, ``K = (k - 1) * d + 1`` and the
uncropped length ``N = (n - 1) * s + K``:

* torch, ``padding=p``, ``output_padding=op``: the window starts at ``p`` and
  has length ``N - 2p + op`` (it crops ``p`` in front and ``p - op`` at the
  back, a negative crop meaning zeros appended);
* Keras ``'valid'``: starts at 0, length ``N + output_padding`` (``None`` means
  ``max(K, s) - K``);
* Keras ``'same'``: crops ``T // 2`` in front and ``T - T // 2`` at the back
  (the odd element at the back), where ``T = K - s`` without output padding and
  ``T = K - K % 2 - output_padding`` with it; ``T < 0`` appends zeros.

So a torch module has an exact Keras equivalent when, on every axis, its crops
are one of the Keras pairs above with a single ``padding`` for all axes, and
``output_padding < stride`` (Keras's rule; torch allows ``< max(stride,
dilation)``).  In particular ``padding=0`` always maps to ``'valid'`` when
``output_padding < stride``, and ``padding=p > 0`` needs ``output_padding=0``
and a ``'same'`` crop of ``p`` on both sides.  A torch module with
``padding > 0`` *and* ``output_padding > 0`` on one axis (for example the
common ``kernel_size=3, stride=2, padding=1, output_padding=1``) crops more
in front than at the back, which no Keras padding does; nor does Keras allow
``strides > 1`` together with ``dilation_rate > 1``.  Such modules become
layers with explicit ``crops`` (``(padding, padding - output_padding)`` per
axis), a deconv3d extension, so every ``groups=1``, ``padding_mode='zeros'``
module converts; grouped convolutions are not supported.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from . import shapes
from .convert import layer_from_config_and_weights
from .keras_io import CLASS_NAMES
from .layer import Conv3DTranspose

_TORCH_DTYPES = {"torch.float32": "float32", "torch.float64": "float64",
                 "torch.float16": "float16"}

# Keras activation name -> a function making the equivalent torch module (element-wise ones)
_TORCH_ACTIVATIONS = {
    "relu": lambda nn: nn.ReLU(),
    "relu6": lambda nn: nn.ReLU6(),
    "sigmoid": lambda nn: nn.Sigmoid(),
    "tanh": lambda nn: nn.Tanh(),
    "softplus": lambda nn: nn.Softplus(),
    "softsign": lambda nn: nn.Softsign(),
    "selu": lambda nn: nn.SELU(),
    "elu": lambda nn: nn.ELU(),
    "silu": lambda nn: nn.SiLU(),
    "gelu": lambda nn: nn.GELU(),
    "mish": lambda nn: nn.Mish(),
    "leaky_relu": lambda nn: nn.LeakyReLU(0.2),     # Keras 3's default negative_slope
    "hard_sigmoid": lambda nn: nn.Hardsigmoid(),
    "hard_silu": lambda nn: nn.Hardswish(),
    "log_sigmoid": lambda nn: nn.LogSigmoid(),
    "tanh_shrink": lambda nn: nn.Tanhshrink(),
}


# ---------------------------------------------------------------------- Keras
def layer_from_keras_layer(layer) -> Conv3DTranspose:
    """A :class:`deconv3d.Conv3DTranspose` equal to a live Keras ``Conv3DTranspose``.

    Works with Keras 3 on any backend and with tf.keras / Keras 2 layers; only
    ``layer.get_config()`` and ``layer.get_weights()`` are used.

    Parameters
    ----------
    layer : keras.layers.Conv3DTranspose
        A built layer (one that has been called, or built, so it has weights).

    Returns
    -------
    deconv3d.Conv3DTranspose
        A new, built layer with a copy of the weights; ``result(x)`` equals
        ``layer(x)`` for NumPy ``x``.

    Raises
    ------
    TypeError
        ``layer`` is not a Conv3DTranspose layer.
    ValueError
        The layer is not built yet, or its config has no deconv3d equivalent.
    """
    class_name = type(layer).__name__
    if class_name not in CLASS_NAMES or not (hasattr(layer, "get_config")
                                             and hasattr(layer, "get_weights")):
        raise TypeError(f"`layer` must be a keras.layers.Conv3DTranspose, got "
                        f"{type(layer).__module__}.{class_name}")
    name = getattr(layer, "name", class_name)
    weights = [np.asarray(w) for w in layer.get_weights()]
    if not weights:
        raise ValueError(f"Keras layer {name!r} has no weights yet: build it first (call it on "
                         f"an input), or use deconv3d.Conv3DTranspose.from_config("
                         f"layer.get_config()) for an unbuilt layer")
    config = layer.get_config()
    return layer_from_config_and_weights(config, weights, f"Keras layer {name!r}")


# ---------------------------------------------------------------------- PyTorch -> deconv3d
def _keras_window(mode: str, output_padding, k: int, s: int, d: int) -> Tuple[int, int]:
    """(front crop, output length - uncropped length) of one Keras axis (any n >= 1)."""
    front = shapes.front_crop(k, s, mode, output_padding, d)
    return front, -front - shapes.back_crop(k, s, mode, output_padding, d)


def _axis_options(mode: str, k: int, s: int, p: int, op: int, d: int) -> list:
    """Keras output_padding values (None first) reproducing torch's window on one axis."""
    target = (p, op - 2 * p)
    return [o for o in [None, *range(s)] if _keras_window(mode, o, k, s, d) == target]


def keras_padding_for_torch(kernel_size: Sequence[int], stride: Sequence[int],
                            padding: Sequence[int], output_padding: Sequence[int],
                            dilation: Sequence[int]) -> Tuple[str, Optional[Tuple[int, ...]]]:
    """Keras ``(padding, output_padding)`` giving exactly torch's output window.

    Parameters
    ----------
    kernel_size, stride, padding, output_padding, dilation : sequence of 3 ints
        The ``torch.nn.ConvTranspose3d`` arguments, per axis.

    Returns
    -------
    padding : {"valid", "same"}
    output_padding : tuple of 3 ints or None
        None when Keras's default reproduces every axis.

    Raises
    ------
    ValueError
        No Keras setting crops the same window; the message says which axis and why.
    """
    k, s, p, op, d = (tuple(int(v) for v in arg) for arg in
                      (kernel_size, stride, padding, output_padding, dilation))
    if max(s) > 1 and max(d) > 1:
        raise ValueError(f"torch.nn.ConvTranspose3d(stride={s}, dilation={d}) has no Keras "
                         f"equivalent: Keras does not allow strides > 1 together with "
                         f"dilation_rate > 1")
    for mode in ("valid", "same"):
        options = [_axis_options(mode, k[a], s[a], p[a], op[a], d[a]) for a in range(3)]
        if all(None in axis for axis in options):
            return mode, None
        if all(any(o is not None for o in axis) for axis in options):
            return mode, tuple(next(o for o in axis if o is not None) for axis in options)
    raise ValueError(_no_equivalent_message(k, s, p, op, d))


def _no_equivalent_message(k, s, p, op, d) -> str:
    reasons, modes = [], {}
    for a, label in enumerate("DHW"):
        fits = [m for m in ("valid", "same") if _axis_options(m, k[a], s[a], p[a], op[a], d[a])]
        modes[label] = fits
        if fits:
            continue
        if p[a] > 0 and op[a] > 0:
            reasons.append(f"axis {label} crops {p[a]} in front and {p[a] - op[a]} at the back "
                           f"(padding={p[a]}, output_padding={op[a]}), but Keras never crops "
                           f"more in front than at the back")
        elif p[a] == 0:
            reasons.append(f"axis {label} has output_padding={op[a]} >= stride={s[a]}, which "
                           f"Keras does not allow")
        else:
            k_eff = shapes.effective_kernel(k[a], d[a])
            reasons.append(f"axis {label} crops {p[a]} on both sides, which no Keras 'same' "
                           f"crop gives for effective kernel {k_eff} and stride {s[a]} (Keras "
                           f"crops (K - s) // 2 = {max(0, (k_eff - s[a]) // 2)} in front and "
                           f"the odd element at the back)")
    if not reasons:
        needs = ", ".join(f"axis {label} needs {' or '.join(repr(m) for m in fits)}"
                          for label, fits in modes.items())
        reasons.append(f"{needs}, but Keras has one padding for all axes")
    return ("torch.nn.ConvTranspose3d(kernel_size={}, stride={}, padding={}, output_padding={}, "
            "dilation={}) has no exactly equivalent Keras Conv3DTranspose: {}. (from_torch gives "
            "it explicit per-axis crops instead: padding in front, padding - output_padding "
            "at the back.)".format(k, s, p, op, d, "; ".join(reasons)))


def _import_torch():
    try:
        import torch  # here, not at the top: PyTorch is optional and slow to import
    except ImportError:
        return None
    return torch


def layer_from_torch(module, name: Optional[str] = None) -> Conv3DTranspose:
    """A :class:`deconv3d.Conv3DTranspose` equal to a ``torch.nn.ConvTranspose3d``.

    The layer is ``channels_first``, so ``layer(x)`` equals
    ``module(torch.from_numpy(x)).numpy()`` for ``x`` of shape (N, C, D, H, W).
    The weight ``(in, out, kd, kh, kw)`` becomes the Keras kernel
    ``(kd, kh, kw, out, in)``.

    Parameters
    ----------
    module : torch.nn.ConvTranspose3d
    name : str, optional
        The layer's name (default: a fresh ``conv3d_transpose_<n>``).

    Returns
    -------
    deconv3d.Conv3DTranspose

    Raises
    ------
    TypeError
        ``module`` is not a ``torch.nn.ConvTranspose3d``.
    ValueError
        The module has no exact equivalent: ``groups > 1``, a ``padding_mode``
        other than ``'zeros'``, an uninitialised lazy module, or an unsupported
        dtype.  A module no Keras padding reproduces (see the module docstring)
        gives a layer with explicit ``crops``.
    """
    torch = _import_torch()
    if torch is None or not isinstance(module, torch.nn.ConvTranspose3d):
        raise TypeError(f"`module` must be a torch.nn.ConvTranspose3d, got "
                        f"{type(module).__module__}.{type(module).__name__}")
    label = f"torch.nn.ConvTranspose3d {name!r}" if name else "torch.nn.ConvTranspose3d"
    weight = module.weight
    if isinstance(weight, torch.nn.parameter.UninitializedParameter):
        raise ValueError(f"{label} is a lazy module without weights yet: call it on an input "
                         f"first")
    if module.groups != 1:
        raise ValueError(f"{label} has groups={module.groups}; grouped transposed "
                         f"convolutions have no deconv3d equivalent (groups must be 1)")
    if module.padding_mode != "zeros":
        raise ValueError(f"{label} has padding_mode={module.padding_mode!r}; only 'zeros' has "
                         f"an equivalent")
    if isinstance(module.padding, str):
        raise ValueError(f"{label} has padding={module.padding!r}; expected integers")
    k, s, p, op, d = (tuple(int(v) for v in arg) for arg in (
        module.kernel_size, module.stride, module.padding, module.output_padding,
        module.dilation))
    try:
        keras_padding, keras_output_padding = keras_padding_for_torch(k, s, p, op, d)
        crops = None
    except ValueError:
        # no Keras padding crops torch's window: give the layer torch's crops explicitly
        keras_padding, keras_output_padding = "valid", None
        crops = tuple((pa, pa - opa) for pa, opa in zip(p, op))
    dtype = _TORCH_DTYPES.get(str(weight.dtype))
    if dtype is None:
        raise ValueError(f"{label} has dtype {weight.dtype}; supported: "
                         f"{', '.join(_TORCH_DTYPES)}")
    kernel = weight.detach().cpu().numpy().transpose(2, 3, 4, 1, 0)
    weights = [kernel]
    if module.bias is not None:
        weights.append(module.bias.detach().cpu().numpy())
    config = {"filters": int(kernel.shape[3]), "kernel_size": k, "strides": s,
              "padding": keras_padding, "output_padding": keras_output_padding,
              "data_format": "channels_first", "dilation_rate": d,
              "use_bias": module.bias is not None, "dtype": dtype}
    if crops is not None:
        config["crops"] = crops
    if name is not None:
        config["name"] = name
    return layer_from_config_and_weights(config, weights, label)


# ---------------------------------------------------------------------- deconv3d -> PyTorch
def layer_to_torch(layer):
    """A PyTorch module computing what a built :class:`deconv3d.Conv3DTranspose` computes.

    The module works on channels-first tensors (N, C, D, H, W) whatever the
    layer's ``data_format``.  It is a ``torch.nn.ConvTranspose3d`` when one
    exists; a Keras ``'same'`` crop with the odd element at the back (``K - s``
    odd, e.g. ``kernel_size=3, strides=2``) has none, and then the result is
    ``torch.nn.Sequential(ConvTranspose3d, ZeroPad3d(negative back padding))``.
    An element-wise activation is appended as its torch module.

    Parameters
    ----------
    layer : deconv3d.Conv3DTranspose
        A built layer.

    Returns
    -------
    torch.nn.Module
        In the dtype of the layer's weights, on the CPU, in eval mode.

    Raises
    ------
    ImportError
        PyTorch is not installed.
    TypeError
        ``layer`` is not a deconv3d.Conv3DTranspose.
    ValueError
        The layer is not built, or its activation has no torch module here
        (softmax-like activations over the last axis, callables, ...), or its
        ``crops`` append more zeros than torch's ``output_padding`` can
        (``< max(stride, dilation)``).
    """
    if not isinstance(layer, Conv3DTranspose):
        raise TypeError(f"`layer` must be a deconv3d.Conv3DTranspose, got "
                        f"{type(layer).__name__}")
    if not layer.built:
        raise ValueError(f"Layer {layer.name!r} is not built: build it or set its weights first")
    activation = layer.activation.name
    if activation != "linear" and activation not in _TORCH_ACTIVATIONS:
        raise ValueError(f"Layer {layer.name!r} has activation "
                         f"{layer.activation.serialize()!r}, which has no torch module here; "
                         f"supported: linear, {', '.join(sorted(_TORCH_ACTIVATIONS))}")
    try:
        import torch  # here, not at the top: PyTorch is optional and slow to import
    except ImportError as error:
        raise ImportError("layer_to_torch needs PyTorch (pip install torch)") from error

    window = shapes.layer_padding(layer)
    padding, output_padding, back_crops = zip(*(
        shapes.torch_padding(layer.kernel_size[axis], layer.strides[axis],
                             shapes.axis_padding(window, axis),
                             None if layer.output_padding is None else layer.output_padding[axis],
                             layer.dilation_rate[axis])
        for axis in range(3)))
    for axis, (op, s, d) in enumerate(zip(output_padding, layer.strides, layer.dilation_rate)):
        if op >= max(s, d):
            # torch refuses it, and zeros padded after the module would miss the bias
            raise ValueError(f"Layer {layer.name!r} appends {op} positions past the uncropped "
                             f"output on axis {axis} (crops={layer.crops}), which torch's "
                             f"ConvTranspose3d cannot hold: it needs output_padding < "
                             f"max(stride, dilation) = {max(s, d)}")

    kernel = layer.kernel
    dtype = getattr(torch, kernel.dtype.name)
    conv = torch.nn.ConvTranspose3d(
        int(kernel.shape[4]), layer.filters, layer.kernel_size, stride=layer.strides,
        padding=padding, output_padding=output_padding, groups=1,
        bias=layer.use_bias, dilation=layer.dilation_rate, padding_mode="zeros", dtype=dtype)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2))))
        if layer.use_bias:
            conv.bias.copy_(torch.from_numpy(np.array(layer.bias)))
    parts = [conv]
    if any(back_crops):
        bd, bh, bw = back_crops
        parts.append(torch.nn.ZeroPad3d((0, -bw, 0, -bh, 0, -bd)))
    if activation != "linear":
        parts.append(_TORCH_ACTIVATIONS[activation](torch.nn))
    module = parts[0] if len(parts) == 1 else torch.nn.Sequential(*parts)
    return module.eval()
