"""What a call on inputs of one shape needs, checked and worked out once.

A layer meets the same input shape again and again (a model's layer in inference, a
dask array's blocks), so the checks and sums that depend only on the shape run on the
first call and are remembered until the weights change: repeated calls of small layers
then cost microseconds, not tens of them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from . import _checks, _threads, shapes

# input shapes a layer remembers (the most recent ones)
SHAPES_KEPT = 16


class CallShape(NamedTuple):
    """The geometry of calls on one input shape."""
    output_shape: tuple         # as the core writes it (channels-last)
    core_shape: tuple           # the input as the core reads it (channels-last)
    crops: tuple                # front crop per spatial axis
    serial: bool                # too small for a second thread to pay


def call_shape(layer, input_shape: tuple) -> CallShape:
    """Check `input_shape` against a built layer and work out its call geometry.

    Raises
    ------
    ValueError
        The channel count differs from the kernel's, or the output or the input as the
        core reads it would not fit in memory.
    """
    kernel = layer.kernel
    channel_axis = 4 if layer.data_format == "channels_last" else 1
    if input_shape[channel_axis] != kernel.shape[4]:
        raise ValueError(f"Input 0 of layer '{layer.name}' is incompatible with the layer: "
                         f"expected axis {channel_axis} of input shape to have value "
                         f"{kernel.shape[4]}, but received input with shape {input_shape}")
    itemsize = layer.dtype_policy.core_dtype.itemsize
    channels_first = layer.data_format == "channels_first"
    spatial = input_shape[2:] if channels_first else input_shape[1:4]
    axes = shapes.plan_axes(spatial, layer.kernel_size, layer.strides,
                            shapes.layer_padding(layer),
                            layer.output_padding, layer.dilation_rate)
    if min(axis.output_length for axis in axes) < 0:     # only explicit crops can do this
        raise ValueError(f"Layer '{layer.name}' crops {layer.crops} remove more than the "
                         f"transposed convolution of input shape {input_shape} gives")
    out_shape = (input_shape[0], *(axis.output_length for axis in axes), layer.filters)
    _checks.check_allocation(out_shape, itemsize, "output")
    core_shape = ((input_shape[0], *input_shape[2:], input_shape[1]) if channels_first
                  else tuple(input_shape))
    _checks.check_allocation(core_shape, itemsize, "input (as the core reads it)")
    # every input value meets every tap and filter
    multiply_adds = math.prod(input_shape) * layer.filters * math.prod(layer.kernel_size)
    serial_below = (_threads.SERIAL_BELOW_KERNEL_IS_STRIDE
                    if layer.kernel_size == layer.strides else _threads.SERIAL_BELOW)
    return CallShape(out_shape, core_shape, tuple(axis.front_crop for axis in axes),
                     multiply_adds < serial_below)


def remember(seen: dict, input_shape: tuple, call: CallShape) -> CallShape:
    """Keep `call` in a layer's bounded memory of shapes (`seen`), and return it."""
    if len(seen) >= SHAPES_KEPT:
        seen.clear()
    seen[input_shape] = call
    return call
