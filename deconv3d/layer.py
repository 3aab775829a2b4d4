"""``Conv3DTranspose``: the Keras 3 layer, for NumPy arrays, on the compiled core.

The layer owns the parameter state and every check; the core
(``deconv3d._core``) computes on arrays the layer has already made safe.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
import warnings
from typing import List, Optional, Sequence

import numpy as np

from . import _core, activations, arguments, buffers, config, initializers, regularizers, shapes
from .serialization import serialize

_LAYER_NAME = "conv3d_transpose"
_name_counts = {}
_name_lock = threading.Lock()


class _CallCounter:
    """Counts calls running right now, so that concurrent calls share the cores.

    A call without an explicit thread count gets OpenMP's default divided by the
    number of calls in flight (at least one): eight Python threads calling at
    once on two cores then run one OpenMP thread each instead of sixteen.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._running = 0

    def __enter__(self):
        with self._lock:
            self._running += 1
            return self._running

    def __exit__(self, *exc_info):
        with self._lock:
            self._running -= 1


_calls = _CallCounter()

# More OpenMP threads than this only fail (the runtime cannot create them) or thrash.
MAX_THREADS = 1024
# The core has one branch of work per stride phase (product of the strides).
MAX_PHASES = 1 << 16

# Below this many multiply-adds a call runs on one thread unless told otherwise: a second
# thread costs more than it saves.  Measured on 2 cores: two threads start to pay at about
# 2e6 multiply-adds (~30 us of arithmetic), and from 5e5 already when the kernel equals
# the stride (one matrix product, with no tile tables to build).
_SERIAL_BELOW = 2_000_000
_SERIAL_BELOW_KERNEL_IS_STRIDE = 500_000


def _unique_name(base: str) -> str:
    # Keras names layers conv3d_transpose, conv3d_transpose_1, ... per process.
    with _name_lock:
        count = _name_counts.get(base, 0)
        _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def _physical_memory_bytes() -> Optional[int]:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _check_allocation(shape, itemsize: int, what: str) -> None:
    """Refuse, before allocating, an array that cannot exist or cannot fit in memory."""
    count = math.prod(shape)
    nbytes = count * itemsize
    limit = _physical_memory_bytes()
    # an empty array whose other axes are absurd still breaks index arithmetic
    if (count >= 2 ** 62 or math.prod(max(int(n), 1) for n in shape) * itemsize >= 2 ** 60
            or (limit is not None and nbytes > limit)):
        raise ValueError(f"The {what} would have shape {tuple(shape)} ({nbytes / 2**30:.1f} GiB), "
                         f"more than this machine's memory"
                         f"{f' ({limit / 2**30:.1f} GiB)' if limit else ''}")


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
                 **kwargs):
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
            name = _unique_name(_LAYER_NAME)
        arguments.validate_name(name)
        self.name = name
        self.trainable = arguments.validate_trainable(trainable)
        self.dtype_policy = config.dtype_policy(dtype)
        self.autocast = _truth(autocast, "autocast")
        self.activity_regularizer = regularizers.get_regularizer(activity_regularizer,
                                                                 "activity_regularizer")

        # Then BaseConvTranspose, in its order.
        self.filters = filters
        self.kernel_size = arguments.standardize_tuple(kernel_size, "kernel_size")
        self.strides = arguments.standardize_tuple(strides, "strides")
        self.dilation_rate = arguments.standardize_tuple(dilation_rate, "dilation_rate")
        self.padding = arguments.standardize_padding(padding)
        self.output_padding = arguments.standardize_output_padding(output_padding)
        self.data_format = arguments.standardize_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        _truth(use_bias, "use_bias")
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
        arguments.validate_strides_and_dilation(self.strides, self.dilation_rate,
                                                self.output_padding)
        self.num_threads = num_threads

        self.built = False
        self._build_input_shape = None
        # (kernel, bias, packed kernel, core bias) replaced as one tuple, so that a
        # concurrent call never sees a mix of old and new weights
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
        self._num_threads = _validate_threads(value)

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
        arrays = [self._as_weight(value, ref.shape, label)
                  for value, ref, label in zip(weights, current, ("kernel", "bias"))]
        self._install(arrays[0], arrays[1] if len(arrays) > 1 else None)

    def _as_weight(self, value, shape, label) -> np.ndarray:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise ValueError(f"Layer {self.name}: the {label} weight cannot be read as an "
                             f"array: {error}") from None
        if array.dtype.kind not in "fiubc":
            raise ValueError(f"Layer {self.name}: the {label} weight must be numeric, got an "
                             f"array of dtype {array.dtype}")
        if array.shape != tuple(shape):
            raise ValueError(f"Layer {self.name} weight shape {tuple(shape)} is not compatible "
                             f"with provided weight shape {array.shape}.")
        return array

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
        packed = _core.PackedKernel(kernel, self.strides, self.dilation_rate, core)
        core_bias = None
        if bias is not None:
            # the micro-kernels read whole blocks of filters: pad the bias to match
            core_bias = np.zeros(packed.filter_blocks * packed.nr, dtype=core)
            core_bias[:bias.size] = bias
        self._state = (kernel, bias, packed, core_bias)

    # ------------------------------------------------------------------ build
    def build(self, input_shape) -> None:
        """Create the weights for inputs of this shape (only the channel count matters)."""
        shape = _as_shape(input_shape, "input_shape")
        channels = shape[-1] if self.data_format == "channels_last" else shape[1]
        if channels is None:
            raise ValueError("The channel dimension of the inputs to Conv3DTranspose should be "
                             f"defined. Received: input_shape={tuple(shape)}")
        kernel_shape = self.kernel_size + (self.filters, channels)
        itemsize = self.dtype_policy.variable_dtype.itemsize
        _check_allocation(kernel_shape, itemsize, "kernel")
        # the bias, and the packed kernel (filters padded to a block, at least one channel)
        _check_allocation((self.filters,), itemsize, "bias")
        _check_allocation(self.kernel_size + (self.filters + 16, max(channels, 1)), 8,
                          "packed kernel")
        rng = np.random.default_rng()
        variable = self.dtype_policy.variable_dtype
        kernel = _initial_values(self.kernel_initializer, kernel_shape, variable, rng,
                                 "kernel_initializer")
        bias = (_initial_values(self.bias_initializer, (self.filters,), variable, rng,
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
        shape = _as_shape(input_shape, "input_shape")
        return shapes.conv_transpose_output_shape(
            shape, self.filters, self.kernel_size, self.strides, self.padding,
            self.output_padding, self.dilation_rate, self.data_format)

    # ------------------------------------------------------------------ call
    def __call__(self, inputs, num_threads=None) -> np.ndarray:
        """Apply the layer to a rank-5 array-like; builds the layer on first use."""
        from . import dask as chunked    # a dask array gives a lazy dask array (deconv3d.dask)
        if chunked.is_dask_array(inputs):
            return chunked.conv3d_transpose(inputs, self, num_threads=num_threads)
        x = self._as_input(inputs)
        if not self.built:
            self.build(x.shape)
        kernel, _, packed, core_bias = self._state
        channel_axis = 4 if self.data_format == "channels_last" else 1
        if x.shape[channel_axis] != kernel.shape[4]:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"expected axis {channel_axis} of input shape to have value "
                             f"{kernel.shape[4]}, but received input with shape {x.shape}")
        threads = _validate_threads(num_threads) if num_threads is not None else self.num_threads
        with _calls as running:
            if threads is None:
                threads = max(1, _core.default_thread_count() // running)
                serial_below = (_SERIAL_BELOW_KERNEL_IS_STRIDE
                                if self.kernel_size == self.strides else _SERIAL_BELOW)
                if self._multiply_adds(x.shape) < serial_below:
                    threads = 1
            return self._compute(x, packed, core_bias, threads)

    def _multiply_adds(self, input_shape) -> int:
        """Multiply-adds of a call: every input value meets every tap and filter."""
        return math.prod(input_shape) * self.filters * math.prod(self.kernel_size)

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

    def _compute(self, x, packed, core_bias, threads, window=None) -> np.ndarray:
        policy = self.dtype_policy
        core = policy.core_dtype
        channels_first = self.data_format == "channels_first"
        spatial = x.shape[2:] if channels_first else x.shape[1:4]
        plan = shapes.plan_axes(spatial, self.kernel_size, self.strides, self.padding,
                                self.output_padding, self.dilation_rate)
        if window is not None:   # (crops, lengths): one output block, see _compute_window
            plan = [a._replace(front_crop=c, output_length=n) for a, c, n in zip(plan, *window)]
        lengths = [axis.output_length for axis in plan]
        out_shape = (x.shape[0], *lengths, self.filters)
        _check_allocation(out_shape, core.itemsize, "output")
        core_shape = (x.shape[0], *x.shape[2:], x.shape[1]) if channels_first else x.shape
        _check_allocation(core_shape, core.itemsize, "input (as the core reads it)")
        with np.errstate(over="ignore", invalid="ignore"):   # 1e300 -> inf, as Keras casts
            if channels_first:
                # the core reads channels-last: one blocked, parallel transpose
                source = buffers.empty(core_shape, core)
                _core.to_channels_last(np.require(x, dtype=core, requirements=["A"]), source,
                                       threads)
            else:
                source = np.require(x, dtype=core, requirements=["C", "A"])
        out = buffers.empty(out_shape, core)
        _core.conv3d_transpose(source, packed, core_bias, out,
                               tuple(a.front_crop for a in plan), self.activation.core_code,
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
        """One output block of a built layer, from the input slice it reads.

        Per spatial axis, the block is ``lengths`` outputs starting at position
        ``crops`` of the uncropped transposed convolution of ``x``
        (:func:`deconv3d.shapes.input_window` gives the slice and the crop).
        For :mod:`deconv3d.dask`, which has checked everything else already.
        """
        _, _, packed, core_bias = self._state
        return self._compute(self._as_input(x), packed, core_bias, num_threads,
                             window=(crops, lengths))

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
        return cfg

    @classmethod
    def from_config(cls, config_dict: dict) -> "Conv3DTranspose":
        """Rebuild a layer from ``get_config()`` output, ours or Keras's (3.x, or tf.keras 2)."""
        if not isinstance(config_dict, dict):
            raise TypeError(f"from_config expects a dict, got {type(config_dict).__name__}")
        cfg = dict(config_dict)
        # Keras 2 (tf.keras) writes keys Keras 3 has no use for.
        groups = cfg.pop("groups", 1)
        if groups != 1:
            raise TypeError(f"Error when deserializing class 'Conv3DTranspose': the config has "
                            f"groups={groups!r}, and grouped transposed convolutions are not "
                            f"supported")
        for key in ("batch_input_shape", "batch_size", "implementation", "dynamic"):
            cfg.pop(key, None)
        try:
            return cls(**cfg)
        except (ValueError, TypeError) as error:
            # Keras reports any failure to rebuild a layer from its config as a TypeError
            raise TypeError(f"Error when deserializing class 'Conv3DTranspose' using "
                            f"config={config_dict}.\n\nException encountered: {error}") from error

    # ------------------------------------------------------------------ other frameworks
    @classmethod
    def from_keras_file(cls, path, name=None, config=None) -> "Conv3DTranspose":
        """A built layer with the config and weights of a layer in a Keras file.

        Reads ``.keras`` archives, ``.weights.h5`` files and legacy ``.h5``
        files without importing Keras (needs h5py: ``pip install
        "deconv3d[keras]"``).  See :func:`deconv3d.keras_files.layer_from_keras_file`.

        Parameters
        ----------
        path : str or os.PathLike
        name : str, optional
            Layer name or path (``"decoder/up"``); optional when the file has
            exactly one Conv3DTranspose.
        config : dict or str, optional
            Only for weights-only files: the model config, or this layer's config.
        """
        from .keras_files import layer_from_keras_file  # imports this module
        return layer_from_keras_file(path, name=name, config=config)

    @classmethod
    def from_keras_layer(cls, layer) -> "Conv3DTranspose":
        """A built copy of a live Keras ``Conv3DTranspose`` (any backend, or tf.keras)."""
        from .frameworks import layer_from_keras_layer
        return layer_from_keras_layer(layer)

    @classmethod
    def from_torch(cls, module, name=None) -> "Conv3DTranspose":
        """An exactly equivalent channels_first layer for a ``torch.nn.ConvTranspose3d``.

        Raises ValueError when no Keras layer computes the same (see
        :mod:`deconv3d.frameworks`).
        """
        from .frameworks import layer_from_torch
        return layer_from_torch(module, name=name)

    def to_torch(self):
        """A torch module (channels-first) computing what this built layer computes."""
        from .frameworks import layer_to_torch
        return layer_to_torch(self)

    def count_params(self) -> int:
        return sum(w.size for w in self.weights)

    def __repr__(self) -> str:
        return (f"<deconv3d.Conv3DTranspose name={self.name!r} filters={self.filters} "
                f"kernel_size={self.kernel_size} strides={self.strides} "
                f"padding={self.padding!r} data_format={self.data_format!r} "
                f"built={self.built}>")


def _truth(value, name: str) -> bool:
    """Python truthiness, with an error naming the argument when there is none."""
    try:
        return bool(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"`{name}` must be True or False, got {value!r}: {error}") from None


def _validate_threads(value) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"num_threads must be a positive int or None, got {value!r}")
    if not 1 <= value <= MAX_THREADS:
        raise ValueError(f"num_threads must be an int from 1 to {MAX_THREADS} or None, "
                         f"got {value!r}")
    return int(value)


def _as_shape(input_shape, name: str) -> tuple:
    """A rank-5 shape of ints and Nones."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"`{name}` must be a tuple of 5 dimensions, got {input_shape!r}") from None
    if len(shape) != 5:
        raise ValueError(f"Conv3DTranspose expects rank-5 inputs; got `{name}`={shape!r}")
    dims = []
    for dim in shape:
        if dim is None:
            dims.append(None)
        elif isinstance(dim, numbers.Integral) and not isinstance(dim, bool) and dim >= 0:
            dims.append(int(dim))
        else:
            raise ValueError(f"`{name}` dimensions must be non-negative ints or None; "
                             f"got {shape!r}")
    return tuple(dims)


def _initial_values(initializer, shape, dtype, rng, argument: str) -> np.ndarray:
    # Keras falls back to glorot_uniform when a float weight has no initializer.
    if initializer is None:
        initializer = initializers.get("glorot_uniform")
    try:
        if isinstance(initializer, initializers.Initializer):
            return initializer(shape, dtype, rng)
        values = np.asarray(initializer(shape, dtype=dtype))
    except (ValueError, TypeError, IndexError) as error:
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"`{argument}` could not initialise a weight of shape {tuple(shape)}: "
                   f"{error}") from None
    if values.shape != tuple(shape):
        raise ValueError(f"`{argument}` returned shape {values.shape}, expected {tuple(shape)}")
    return values
