"""``Conv3DTranspose``: the Keras 3 layer, for NumPy arrays, on the compiled core.

The layer owns the parameter state and every check; the core
(``deconv3d._core``) computes on arrays the layer has already made safe.
"""

from __future__ import annotations

import math
import warnings
from typing import List, Optional, Sequence

import numpy as np

from . import (_calls, _checks, _core, _threads, activations, arguments, buffers,
               initializers, keras_settings, regularizers, shapes)
from . import dask as chunked
from .serialization import serialize

# The core has one branch of work per stride phase (product of the strides).
MAX_PHASES = 1 << 16


class Conv3DTranspose:
    """3-D transposed convolution with the constructor, weights and outputs of Keras 3.

    ``deconv3d.Conv3DTranspose`` takes the arguments of
    ``keras.layers.Conv3DTranspose`` and computes the same function on NumPy
    arrays.  Weights use the Keras layout: kernel
    ``(kernel_d, kernel_h, kernel_w, filters, in_channels)`` and bias
    ``(filters,)``.

    Parameters
    ----------
    filters : int
        Number of output channels.
    kernel_size : int or tuple of 3 ints
    strides : int or tuple of 3 ints, default (1, 1, 1)
        Strides > 1 cannot be combined with ``dilation_rate`` > 1.
    padding : {"valid", "same"}, case-insensitive
    data_format : {"channels_last", "channels_first"} or None
        None reads ``image_data_format`` from ``$KERAS_HOME/keras.json`` or
        ``~/.keras/keras.json`` (default ``"channels_last"``).
    output_padding : int, tuple of 3 ints or None
        Extra length at the end of each axis; each must be < its stride.
    dilation_rate : int or tuple of 3 ints, default (1, 1, 1)
    activation : str, callable or None
        Any name ``keras.activations.get`` accepts, or a callable applied to
        the output array.
    use_bias : bool, default True
    kernel_initializer, bias_initializer : str, dict or callable
        Keras initializer names or configs, drawn with NumPy's generator (seeded
        when the initializer has a ``seed``).  A callable is called as
        ``init(shape, dtype)``.
    kernel_regularizer, bias_regularizer, activity_regularizer,
    kernel_constraint, bias_constraint : str, dict, callable or None
        Accepted and kept in the config so that Keras configs round-trip; they
        only matter for training, and inference never applies them.
    name : str, optional
    dtype : str or Keras dtype-policy dict, optional
        ``"float32"`` (default, or ``floatx`` from keras.json), ``"float64"``,
        ``"float16"`` or ``"mixed_float16"`` (float16 policies compute in
        float32 and round the output to float16).
    trainable : bool, default True
        Kept for Keras compatibility (decides which list ``weights`` go to).
    autocast : bool, default True
        As in Keras: floating inputs are cast to the compute dtype; with
        ``autocast=False`` a floating input of another dtype is a TypeError.
    num_threads : int, optional
        OpenMP threads for this layer's calls (not part of the Keras config).
        None uses OpenMP's default, which follows ``OMP_NUM_THREADS``.
    crops : 3 pairs (front, back) of ints, optional
        A deconv3d extension replacing ``padding``/``output_padding`` (layers from
        torch and ONNX): per axis, drop ``front`` leading and ``back`` trailing
        positions of the uncropped output (negative ``back``: zeros appended).
        Allows strides > 1 with dilations > 1; Keras cannot load such a config.

    Notes
    -----
    Bad arguments raise the exception class Keras raises, at construction.
    Differences from Keras, all deliberate: integer and boolean inputs are cast
    to the compute dtype (Keras raises), array-likes such as nested lists are
    accepted, ``padding`` given as a non-string is a TypeError (Keras fails
    later with AttributeError), the initializer string ``"constant"`` means
    ``Constant(0.0)`` (Keras fails with KeyError), bfloat16 policies are
    refused (NumPy has no bfloat16), and a float64 layer with ``tanh`` returns
    float64 (Keras returns float32).

    Thread safety: calls may run concurrently from several Python threads (the
    core releases the GIL and writes only its own output).  ``set_weights``
    swaps the weights atomically, so a concurrent call sees either the old or
    the new weights, never a mix.  A call without an explicit thread count uses
    OpenMP's default divided by the number of calls running at that moment, so
    concurrent callers do not oversubscribe the cores.  Changing constructor
    attributes while calls run is not supported.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid",
                 data_format=None, output_padding=None, dilation_rate=(1, 1, 1),
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 *, name=None, dtype=None, trainable=True, autocast=True, num_threads=None,
                 crops=None, **kwargs):
        # Keras's Layer.__init__ comes first: keyword arguments, name, dtype, trainable.
        input_shape = kwargs.pop("input_shape", None)
        input_dim = kwargs.pop("input_dim", None)
        if input_shape is not None or input_dim is not None:
            warnings.warn("Do not pass an `input_shape`/`input_dim` argument to a layer; "
                          "deconv3d builds the layer on its first call.", UserWarning,
                          stacklevel=2)
        if "rank" in kwargs:
            # Keras's BaseConvTranspose fixes rank=3 itself ("multiple values for rank")
            raise TypeError("Conv3DTranspose got an unexpected keyword argument `rank`; "
                            "its rank is always 3")
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to Conv3DTranspose: "
                             f"{kwargs}")
        if name is None:
            name = arguments.unique_name("conv3d_transpose")
        arguments.validate_name(name)
        self.name = name
        self.trainable = arguments.validate_trainable(trainable)
        self.dtype_policy = keras_settings.dtype_policy(dtype)
        self.autocast = _checks.truth(autocast, "autocast")
        self.activity_regularizer = regularizers.get_regularizer(activity_regularizer,
                                                                 "activity_regularizer")

        # Then BaseConvTranspose, in its order: Keras stores `filters` first and validates it
        # only after the other arguments, so a bad `filters` is reported after them.
        self.filters = filters
        self.kernel_size = arguments.standardize_tuple(kernel_size, "kernel_size")
        self.strides = arguments.standardize_tuple(strides, "strides")
        self.dilation_rate = arguments.standardize_tuple(dilation_rate, "dilation_rate")
        self.padding = arguments.standardize_padding(padding)
        self.output_padding = arguments.standardize_output_padding(output_padding)
        self.data_format = arguments.standardize_data_format(data_format)
        self.activation = activations.get(activation)
        # Keras keeps `use_bias` as given (get_config returns it unchanged); only check that
        # it has a truth value
        self.use_bias = use_bias
        _checks.truth(use_bias, "use_bias")
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.kernel_regularizer = regularizers.get_regularizer(kernel_regularizer,
                                                               "kernel_regularizer")
        self.bias_regularizer = regularizers.get_regularizer(bias_regularizer,
                                                             "bias_regularizer")
        self.kernel_constraint = regularizers.get_constraint(kernel_constraint,
                                                             "kernel_constraint")
        self.bias_constraint = regularizers.get_constraint(bias_constraint, "bias_constraint")
        self.filters = arguments.validate_filters(filters)
        self.crops = arguments.standardize_crops(crops, self.padding, self.output_padding)
        arguments.validate_strides_and_dilation(self.strides, self.dilation_rate,
                                                self.output_padding, self.crops)
        self.num_threads = num_threads

        self.built = False
        self._build_input_shape = None
        # (kernel, bias, packed kernel, {input shape: CallShape}) replaced as one tuple,
        # so that a concurrent call never sees a mix of old and new weights
        self._state = None

    # ------------------------------------------------------------------ dtypes
    @property
    def dtype(self) -> str:
        """The variable dtype name, as Keras's ``layer.dtype``."""
        return self.dtype_policy.variable_dtype.name

    @property
    def compute_dtype(self) -> str:
        return self.dtype_policy.compute_dtype.name

    @property
    def variable_dtype(self) -> str:
        return self.dtype_policy.variable_dtype.name

    @property
    def num_threads(self) -> Optional[int]:
        return self._num_threads

    @num_threads.setter
    def num_threads(self, value):
        self._num_threads = _threads.validate(value)

    # ------------------------------------------------------------------ weights
    @property
    def kernel(self) -> Optional[np.ndarray]:
        """The kernel, ``(kd, kh, kw, filters, in_channels)``, read-only (use set_weights)."""
        return None if self._state is None else self._state[0]

    @property
    def bias(self) -> Optional[np.ndarray]:
        """The bias ``(filters,)``, read-only, or None without ``use_bias``."""
        return None if self._state is None else self._state[1]

    @property
    def weights(self) -> List[np.ndarray]:
        if self._state is None:
            return []
        kernel, bias = self._state[:2]
        return [kernel] if bias is None else [kernel, bias]

    @property
    def trainable_weights(self) -> List[np.ndarray]:
        return self.weights if self.trainable else []

    @property
    def non_trainable_weights(self) -> List[np.ndarray]:
        return [] if self.trainable else self.weights

    def get_weights(self) -> List[np.ndarray]:
        """Copies of ``[kernel, bias]`` (``[kernel]`` without bias; ``[]`` before build)."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: Sequence) -> None:
        """Replace the weights; shapes must match exactly, values are cast to the variable dtype."""
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            # Keras fails on len() for objects without one (TypeError), else on the items
            error = ValueError if hasattr(weights, "__len__") else TypeError
            raise error(f"set_weights expects a list of arrays, got {type(weights).__name__}")
        current = self.weights
        if len(weights) != len(current):
            raise ValueError(f"You called `set_weights(weights)` on layer '{self.name}' with a "
                             f"weight list of length {len(weights)}, but the layer was "
                             f"expecting {len(current)} weights.")
        if not current:
            return
        arrays = [_checks.as_weight(value, ref.shape, label, self.name)
                  for value, ref, label in zip(weights, current, ("kernel", "bias"))]
        self._install(arrays[0], arrays[1] if len(arrays) > 1 else None)

    def _install(self, kernel, bias) -> None:
        """Store weights (read-only copies) and the kernel packed for the core."""
        variable = self.dtype_policy.variable_dtype
        kernel = np.array(kernel, dtype=variable, order="C", copy=True)
        kernel.flags.writeable = False
        if bias is not None:
            bias = np.array(bias, dtype=variable, copy=True)
            bias.flags.writeable = False
        core = self.dtype_policy.core_dtype
        if math.prod(self.strides) > MAX_PHASES:
            raise ValueError(f"strides={self.strides} split the output into "
                             f"{math.prod(self.strides)} phases; deconv3d supports at most "
                             f"{MAX_PHASES} (the product of the strides)")
        # origin: the core's tiles start where the whole output does (and its windows')
        packed = _core.PackedKernel(kernel, bias, self.strides, self.dilation_rate, core,
                                    shapes.layer_front_crops(self))
        self._state = (kernel, bias, packed, {})

    # ------------------------------------------------------------------ build
    def build(self, input_shape) -> None:
        """Create the weights for inputs of this shape (only the channel count matters)."""
        shape = _checks.as_shape(input_shape, "input_shape")
        channels = shape[-1] if self.data_format == "channels_last" else shape[1]
        if channels is None:
            raise ValueError("The channel dimension of the inputs to Conv3DTranspose should be "
                             f"defined. Received: input_shape={tuple(shape)}")
        kernel_shape = self.kernel_size + (self.filters, channels)
        itemsize = self.dtype_policy.variable_dtype.itemsize
        _checks.check_allocation(kernel_shape, itemsize, "kernel")
        # the bias, and the packed kernel (filters padded to a block, at least one channel)
        _checks.check_allocation((self.filters,), itemsize, "bias")
        _checks.check_allocation((_core.PackedKernel.nbytes_for(
            self.kernel_size, self.filters, channels, self.dtype_policy.core_dtype),), 1,
            "packed kernel (bytes)")
        rng = np.random.default_rng()
        variable = self.dtype_policy.variable_dtype
        kernel = initializers.initial_values(self.kernel_initializer, kernel_shape, variable, rng,
                                             "kernel_initializer")
        bias = (initializers.initial_values(self.bias_initializer, (self.filters,), variable, rng,
                                            "bias_initializer") if self.use_bias else None)
        self._install(kernel, bias)
        self._build_input_shape = tuple(shape)
        self.built = True

    def get_build_config(self) -> Optional[dict]:
        if self._build_input_shape is None:
            return None
        return {"input_shape": list(self._build_input_shape)}

    def build_from_config(self, build_config) -> None:
        if build_config and "input_shape" in build_config:
            self.build(build_config["input_shape"])

    # ------------------------------------------------------------------ shapes
    def compute_output_shape(self, input_shape) -> list:
        """Output shape as a list, like Keras; ``None`` dimensions stay ``None``."""
        shape = _checks.as_shape(input_shape, "input_shape")
        return shapes.conv_transpose_output_shape(
            shape, self.filters, self.kernel_size, self.strides, shapes.layer_padding(self),
            self.output_padding, self.dilation_rate, self.data_format)

    # ------------------------------------------------------------------ call
    def __call__(self, inputs, num_threads=None) -> np.ndarray:
        """Apply the layer to a rank-5 array-like; builds the layer on first use."""
        if chunked.is_dask_array(inputs):       # a lazy dask array in, one out (deconv3d.dask)
            return chunked.conv3d_transpose(inputs, self, num_threads=num_threads)
        x = self._as_input(inputs)
        if not self.built:
            self.build(x.shape)
        call = self._call_shape(x.shape)
        threads = _threads.validate(num_threads) if num_threads is not None else self.num_threads
        with _threads.calls as running:
            if threads is None:
                threads = 1 if call.serial else max(1, _core.default_thread_count() // running)
            return self._compute(x, self._state[2], call, threads)

    def _call_shape(self, input_shape) -> _calls.CallShape:
        """The checked geometry of calls on this input shape (remembered per weights)."""
        seen = self._state[3]
        call = seen.get(input_shape)
        if call is None:
            call = _calls.remember(seen, input_shape, _calls.call_shape(self, input_shape))
        return call

    def _core_plan(self, input_shape, num_threads=None):
        """The core's plan for calls on this input shape (`.explain()` tells what it
        does), with the thread count a lone call would use."""
        if not self.built:
            self.build(input_shape)
        call = self._call_shape(tuple(input_shape))
        threads = _threads.validate(num_threads) if num_threads is not None else self.num_threads
        if threads is None:
            threads = 1 if call.serial else _core.default_thread_count()
        return self._state[2].plan(call.core_shape, call.output_shape, call.crops,
                                   self.activation.core_code, threads)

    def _as_input(self, inputs) -> np.ndarray:
        if isinstance(inputs, np.ndarray):
            x = inputs
        else:
            try:
                x = np.asarray(inputs)
            except (ValueError, TypeError) as error:
                raise ValueError(f"Layer '{self.name}' could not read `inputs` as an array: "
                                 f"{error}") from None
        kind = x.dtype.kind
        if kind not in "fiub":
            # the classes Keras raises: strings (and None) cannot be converted to numbers
            # (ValueError); objects, complex and structured values are the wrong type
            error = ValueError if kind in "US" or inputs is None else TypeError
            raise error(f"Layer '{self.name}' expects a real numeric input array; got "
                        f"`inputs` of dtype {x.dtype}")
        if x.ndim != 5:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"expected ndim=5, found ndim={x.ndim}. Full shape received: "
                             f"{x.shape}")
        compute = self.dtype_policy.compute_dtype
        if kind == "f" and not self.autocast and x.dtype != compute:
            raise TypeError(f"Layer '{self.name}' has autocast=False and compute dtype "
                            f"{compute}, but `inputs` has dtype {x.dtype}")
        return x

    def _compute(self, x, packed, call, threads) -> np.ndarray:
        policy = self.dtype_policy
        core = policy.core_dtype
        channels_first = self.data_format == "channels_first"
        out_shape = call.output_shape
        if not channels_first and x.dtype == core and x.flags.c_contiguous and x.flags.aligned:
            source = x          # ready as it is: no copy, no errstate (small calls)
        else:
            with np.errstate(over="ignore", invalid="ignore"):   # 1e300 -> inf, as Keras casts
                if channels_first:
                    # the core reads channels-last: one blocked, parallel transpose
                    source = buffers.empty(call.core_shape, core)
                    _core.to_channels_last(np.require(x, dtype=core, requirements=["A"]),
                                           source, threads)
                else:
                    source = np.require(x, dtype=core, requirements=["C", "A"])
        out = buffers.empty(out_shape, core)
        _core.conv3d_transpose(source, packed, out, call.crops, self.activation.core_code,
                               threads)
        del source                  # back to the pool before the output is transposed
        if channels_first and policy.compute_dtype == core:
            result = buffers.empty((out_shape[0], out_shape[4], *out_shape[1:4]), core)
            _core.to_channels_first(out, result, threads)
            out = result
        elif channels_first or policy.compute_dtype != core:
            layout = out.transpose(0, 4, 1, 2, 3) if channels_first else out
            result = buffers.empty(layout.shape, policy.compute_dtype)
            with np.errstate(over="ignore", invalid="ignore"):
                np.copyto(result, layout, casting="unsafe")
            out = result
        if self.activation.apply is not None and (self.activation.name is None
                                                  or out.shape[-1] > 0):
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out = np.asarray(self.activation.apply(out))
        return out

    def _compute_window(self, x, crops, lengths, num_threads=1) -> np.ndarray:
        """Outputs ``[crops, crops + lengths)`` per axis of the uncropped transposed
        convolution of the input slice ``x`` (for :mod:`deconv3d.dask`, which finds the
        slice and the crops with :func:`deconv3d.shapes.input_window`)."""
        x = self._as_input(x)
        call = self._call_shape(x.shape)
        window = call._replace(output_shape=(x.shape[0], *lengths, self.filters),
                               crops=tuple(crops))
        _checks.check_allocation(window.output_shape, self.dtype_policy.core_dtype.itemsize,
                                 "output")
        return self._compute(x, self._state[2], window, num_threads)

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        """The layer's config, in the form (and key order) Keras 3 writes."""
        cfg = {"name": self.name, "trainable": self.trainable,
               "dtype": {"module": "keras", "class_name": "DTypePolicy",
                         "config": {"name": self.dtype_policy.name},
                         "registered_name": None}}
        if self.activity_regularizer is not None:
            cfg["activity_regularizer"] = serialize(self.activity_regularizer)
        cfg.update({
            "filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding, "output_padding": self.output_padding,
            "data_format": self.data_format, "dilation_rate": self.dilation_rate,
            "activation": self.activation.serialize(), "use_bias": self.use_bias,
            "kernel_initializer": serialize(self.kernel_initializer),
            "bias_initializer": serialize(self.bias_initializer),
            "kernel_regularizer": serialize(self.kernel_regularizer),
            "bias_regularizer": serialize(self.bias_regularizer),
            "activity_regularizer": serialize(self.activity_regularizer),
            "kernel_constraint": serialize(self.kernel_constraint),
            "bias_constraint": serialize(self.bias_constraint),
        })
        if self.crops is not None:      # not a Keras config any more: Keras refuses the key
            cfg["crops"] = [list(pair) for pair in self.crops]
        return cfg

    @classmethod
    def from_config(cls, config_dict: dict) -> "Conv3DTranspose":
        """Rebuild a layer from ``get_config()`` output, ours or Keras's (3.x, or tf.keras 2)."""
        cfg = arguments.keras2_config(config_dict)
        try:
            return cls(**cfg)
        except (ValueError, TypeError) as error:
            # Keras reports any failure to rebuild a layer from its config as a TypeError
            raise TypeError(f"Error when deserializing class 'Conv3DTranspose' using "
                            f"config={config_dict}.\n\nException encountered: {error}") from error

    # from_keras_file, from_keras_layer, from_torch and to_torch are defined in interop.py:
    # they build layers through convert.py, which imports this module.

    def count_params(self) -> int:
        return sum(w.size for w in self.weights)

    def __repr__(self) -> str:
        return (f"<deconv3d.Conv3DTranspose name={self.name!r} filters={self.filters} "
                f"kernel_size={self.kernel_size} strides={self.strides} "
                f"padding={shapes.layer_padding(self)!r} data_format={self.data_format!r} "
                f"built={self.built}>")
