"""Output lengths and crops of a transposed convolution: the single source of truth.

Everything here follows Keras 3 (``compute_conv_transpose_output_shape`` and the
padding conversion its JAX backend uses), one spatial axis at a time.  Pure
functions on Python ints; no NumPy.

Explicit per-axis ``(front, back)`` crops (a deconv3d extension, for layers
from torch and ONNX) may stand in for Keras's ``padding`` wherever it is taken.

Notation for one axis: input length ``n``, kernel size ``k``, stride ``s``,
dilation ``d``, output padding ``op`` (``None`` when not given).  The
transposed convolution scatters input ``i`` through tap ``t`` to the uncropped
position ``i*s + t*d``; the layer's output is the window
``[front_crop, front_crop + length)`` of that uncropped axis, where positions
past the uncropped end read as zero.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple, Union

# Keras's padding name, or explicit per-axis ``(front, back)`` crops (a deconv3d
# extension for torch and ONNX layers; a negative back crop appends zeros).
Padding = Union[str, Tuple[Tuple[int, int], ...]]


def effective_kernel(kernel_size: int, dilation: int) -> int:
    """Span of a dilated kernel: ``(k - 1) * d + 1``."""
    return (kernel_size - 1) * dilation + 1


def output_length(n: Optional[int], kernel_size: int, stride: int, padding: Padding,
                  output_padding: Optional[int], dilation: int) -> Optional[int]:
    """Length of one output axis, as a Keras layer returns it (``None`` stays ``None``)."""
    if n is None:
        return None
    k_eff = effective_kernel(kernel_size, dilation)
    if not isinstance(padding, str):        # explicit (front, back) crops of this axis
        # negative when the crops remove more than there is (the caller refuses that)
        length = full_length(n, kernel_size, stride, dilation) - sum(padding)
        return max(0, length) if n == 0 else length
    if n == 0:
        # Keras's formula assumes n >= 1.  What a Keras layer actually returns for an
        # empty axis is JAX's result: an empty stride-dilated input padded by the
        # total transpose padding, correlated with the kernel (nothing, if that is
        # shorter than the kernel).
        return max(0, _total_padding(k_eff, stride, padding, output_padding) - k_eff + 1)
    if padding == "valid":
        if output_padding is None:
            output_padding = max(k_eff, stride) - k_eff
        return (n - 1) * stride + k_eff + output_padding
    if output_padding is None:
        return n * stride
    return (n - 1) * stride + k_eff % 2 + output_padding


def front_crop(kernel_size: int, stride: int, padding: Padding,
               output_padding: Optional[int], dilation: int) -> int:
    """How many leading positions of the uncropped axis the output drops.

    Keras's JAX backend pads the stride-dilated input by ``k_eff - 1 - crop`` on
    the left; this is that rule solved for ``crop``.  It is never negative.
    """
    if not isinstance(padding, str):
        return padding[0]
    k_eff = effective_kernel(kernel_size, dilation)
    if padding == "valid":
        return 0
    total = _total_padding(k_eff, stride, padding, output_padding)
    left = min(total // 2 + total % 2, k_eff - 1)
    return k_eff - 1 - left


def back_crop(kernel_size: int, stride: int, padding: Padding,
              output_padding: Optional[int], dilation: int) -> int:
    """How many trailing positions of the uncropped axis the output drops.

    Negative means zeros appended past the uncropped end.  The same for every
    input length ``n >= 1`` (both lengths grow by ``stride`` per input element).
    """
    if not isinstance(padding, str):
        return padding[1]
    n = 1
    return (full_length(n, kernel_size, stride, dilation)
            - output_length(n, kernel_size, stride, padding, output_padding, dilation)
            - front_crop(kernel_size, stride, padding, output_padding, dilation))


def full_length(n: int, kernel_size: int, stride: int, dilation: int) -> int:
    """Length of the uncropped axis: every input position scattered through every tap."""
    return (n - 1) * stride + effective_kernel(kernel_size, dilation)


class AxisWindow(NamedTuple):
    """One output axis as a window ``[front_crop, front_crop + length)`` of the uncropped axis."""

    full_length: int
    front_crop: int
    length: int
    back_crop: int


def axis_window(n: int, kernel_size: int, stride: int, padding: Padding,
                output_padding: Optional[int], dilation: int) -> AxisWindow:
    """The window one Keras output axis takes from the uncropped axis (``n >= 1``)."""
    return AxisWindow(full_length(n, kernel_size, stride, dilation),
                      front_crop(kernel_size, stride, padding, output_padding, dilation),
                      output_length(n, kernel_size, stride, padding, output_padding, dilation),
                      back_crop(kernel_size, stride, padding, output_padding, dilation))


def torch_padding(kernel_size: int, stride: int, padding: Padding,
                  output_padding: Optional[int], dilation: int) -> Tuple[int, int, int]:
    """``(padding, output_padding, back_trim)`` giving one Keras axis with torch's ConvTranspose.

    torch crops ``padding`` at both ends of the uncropped axis and gives back
    ``output_padding`` positions at the end.  Keras's ``'same'`` may crop one
    more position at the back than at the front, which torch cannot express:
    ``back_trim`` positions must then be dropped from torch's output.
    """
    front = front_crop(kernel_size, stride, padding, output_padding, dilation)
    back = back_crop(kernel_size, stride, padding, output_padding, dilation)
    if back <= front:
        return front, front - back, 0
    return front, 0, back - front


def keras_padding_for_crops(crops, kernel_size: Sequence[int], strides: Sequence[int],
                            dilation_rate: Sequence[int]):
    """Keras ``(padding, output_padding)`` cutting exactly these per-axis crops, or None."""
    if max(strides) > 1 and max(dilation_rate) > 1:
        return None                 # Keras refuses the pair
    for mode in ("valid", "same"):
        options = [[op for op in (None, *range(s)) if (front_crop(k, s, mode, op, d),
                                                       back_crop(k, s, mode, op, d)) == tuple(c)]
                   for c, k, s, d in zip(crops, kernel_size, strides, dilation_rate)]
        if all(None in axis for axis in options):
            return mode, None
        if all(any(op is not None for op in axis) for axis in options):
            return mode, tuple(next(op for op in axis if op is not None) for axis in options)
    return None


def _total_padding(k_eff: int, stride: int, padding: str, output_padding: Optional[int]) -> int:
    """Zeros Keras's JAX backend adds around the stride-dilated input, both ends together."""
    if padding == "valid":
        if output_padding is None:
            output_padding = max(k_eff, stride) - k_eff
        return 2 * (k_eff - 1) + output_padding
    if output_padding is None:
        return stride + k_eff - 2
    return k_eff + k_eff % 2 - 2 + output_padding


def layer_padding(layer) -> Padding:
    """What decides a layer's output window: its explicit crops, else its Keras padding."""
    crops = getattr(layer, "crops", None)
    return layer.padding if crops is None else crops


def layer_front_crops(layer) -> Tuple[int, int, int]:
    """Where a layer's output starts on each uncropped axis (whatever the input length)."""
    padding = layer_padding(layer)
    output_padding = layer.output_padding or (None,) * 3
    return tuple(front_crop(k, s, axis_padding(padding, axis), op, d)  # type: ignore[return-value]
                 for axis, (k, s, op, d) in enumerate(zip(
                     layer.kernel_size, layer.strides, output_padding, layer.dilation_rate)))


def axis_padding(padding: Padding, axis: int):
    """The padding of one axis: Keras's name (the same for all axes) or its crop pair."""
    return padding if isinstance(padding, str) else padding[axis]


class AxisPlan(NamedTuple):
    """Everything the core needs to know about one spatial axis."""

    input_length: int
    output_length: int
    kernel_size: int
    stride: int
    dilation: int
    front_crop: int


def plan_axes(spatial_shape: Sequence[int], kernel_size: Sequence[int],
              strides: Sequence[int], padding: Padding,
              output_padding: Optional[Sequence[int]],
              dilation_rate: Sequence[int]) -> Tuple[AxisPlan, ...]:
    """Per-axis plan for a concrete (fully known) input spatial shape."""
    plans = []
    for axis, n in enumerate(spatial_shape):
        op = None if output_padding is None else output_padding[axis]
        k, s, d = kernel_size[axis], strides[axis], dilation_rate[axis]
        pad = axis_padding(padding, axis)
        plans.append(AxisPlan(n, output_length(n, k, s, pad, op, d), k, s, d,
                              front_crop(k, s, pad, op, d)))
    return tuple(plans)


def conv_transpose_output_shape(input_shape: Sequence[Optional[int]], filters: int,
                                kernel_size: Sequence[int], strides: Sequence[int],
                                padding: Padding, output_padding: Optional[Sequence[int]],
                                dilation_rate: Sequence[int], data_format: str) -> list:
    """Full output shape (a list, like Keras) for a rank-5 input shape; ``None`` allowed."""
    if data_format == "channels_last":
        spatial = input_shape[1:-1]
    else:
        spatial = input_shape[2:]
    lengths = []
    for axis, n in enumerate(spatial):
        op = None if output_padding is None else output_padding[axis]
        lengths.append(output_length(n, kernel_size[axis], strides[axis],
                                     axis_padding(padding, axis), op, dilation_rate[axis]))
    if data_format == "channels_last":
        return [input_shape[0]] + lengths + [filters]
    return [input_shape[0], filters] + lengths


# ---------------------------------------------------------------------- chunked arrays
# Output windows of one axis, for computing a layer's output block by block
# (deconv3d.dask): which inputs a window reads, and how the output is cut.

def input_window(start: int, stop: int, n: int, kernel_size: int, stride: int,
                 dilation: int, crop: int) -> Tuple[int, int, int]:
    """The inputs an output window reads, and its front crop relative to them.

    Output ``o`` sits at uncropped position ``o + crop``, which input ``i``
    reaches through tap ``t`` when ``o + crop = i*stride + t*dilation``.  The
    outputs ``[start, stop)`` therefore read inputs
    ``[ceil((start + crop - (k-1)*d) / s), floor((stop - 1 + crop) / s) + 1)``,
    clipped to ``[0, n)``.  The start is lowered where needed so that the
    window's own front crop is never negative (an input that reaches no output
    of the window changes nothing).

    Parameters
    ----------
    start, stop : int
        The output window, ``0 <= start <= stop``.
    n : int
        Input length of the axis.
    kernel_size, stride, dilation, crop : int
        The layer's kernel, stride and dilation on this axis, and its front
        crop (:func:`front_crop`).

    Returns
    -------
    (first, end, window_crop) : tuple of int
        The window equals the transposed convolution of inputs
        ``[first, end)`` cropped by ``window_crop`` at the front, with length
        ``stop - start``; ``first == end`` when it reads no input (it is then
        bias only).
    """
    reach = (kernel_size - 1) * dilation
    first = max(0, min(-(-(start + crop - reach) // stride), (start + crop) // stride, n))
    end = max(first, min(n, (stop - 1 + crop) // stride + 1))
    return first, end, start + crop - first * stride


def halo(kernel_size: int, stride: int, dilation: int, crop: int) -> Tuple[int, int]:
    """Inputs beyond an input chunk that its output chunk reads, before and after.

    For output chunks that are ``stride`` times the input chunks
    (:func:`output_chunks`), the output chunk of inputs ``[a, b)`` reads inputs
    ``[a - before, b + after)`` (clipped to the axis): ``before =
    floor(((k-1)*d - crop) / s)`` and ``after = ceil(crop / s)``.  Both are 0
    for the U-Net case kernel == stride without padding.
    """
    return ((kernel_size - 1) * dilation - crop) // stride, -(-crop // stride)


def output_chunks(input_chunks: Sequence[int], output_length: int,
                  stride: int) -> Tuple[int, ...]:
    """Output chunk lengths of one axis: ``stride`` times the input chunks.

    The last chunk takes whatever the output has beyond ``stride`` times the
    input (``valid`` padding, output padding), or gives up what it lacks; chunks
    left empty by that are dropped.  An empty output is one empty chunk.
    """
    cuts, edge = [], 0
    for length in input_chunks[:-1]:
        edge += length
        cut = min(edge * stride, output_length)
        if cut > (cuts[-1] if cuts else 0):
            cuts.append(cut)
    bounds = [0] + cuts + [output_length]
    chunks = tuple(b - a for a, b in zip(bounds, bounds[1:]) if b > a)
    return chunks or (0,)
