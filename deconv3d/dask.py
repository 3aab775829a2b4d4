"""Conv3DTranspose on dask arrays: a lazy dask array, computed exactly, block by block.

``layer(x)`` with a ``dask.array.Array`` ``x`` (or :func:`conv3d_transpose`)
returns a lazy ``dask.array.Array`` equal to the NumPy call on the whole
array.  No tiles are blended: each output block is the layer's output window
computed by the core from exactly the input slice it reads
(:func:`deconv3d.shapes.input_window`), so chunking changes nothing but the
summation order of a few voxels.

How the output is cut: the batch axis like the input; each spatial axis in
``stride`` times the input chunks (:func:`deconv3d.shapes.output_chunks`), or
as asked with ``chunks=``; the channel axis in one chunk (every output voxel
sums over all input channels, and softmax-like activations act over all
filters).  The graph is built by hand: an output block depends on the part of
every input block its slice touches (the whole block, or a task slicing off the
rows it reads), whatever their sizes, so uneven chunks, 1-voxel chunks and
chunks smaller than the halo need no rechunking, and a cluster moves only halos.

dask is an optional dependency (``pip install "deconv3d[dask]"``): it is
imported inside the functions that need it, so that ``import deconv3d``
never pays for it and works without it.
"""

from __future__ import annotations

import copy
import itertools
import operator
import sys
from typing import Optional

import numpy as np

from . import _threads, shapes



def is_dask_array(obj) -> bool:
    """True for a ``dask.array.Array`` (without importing dask when nobody has)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(obj, module.Array)


def conv3d_transpose(x, layer, num_threads: Optional[int] = None, chunks=None):
    """Apply a :class:`deconv3d.Conv3DTranspose` to a dask array, lazily.

    Parameters
    ----------
    x : dask.array.Array
        Rank 5, in the layer's ``data_format``; known chunk sizes.  Channels
        may be split into several chunks.
    layer : deconv3d.Conv3DTranspose
        Built on ``x.shape`` if it is not built yet.  The graph keeps a
        snapshot: later ``set_weights`` calls do not change this result.
    num_threads : int, optional
        OpenMP threads per block.  Default 1: dask's scheduler already runs
        one block per worker thread (threaded scheduler, or each thread of a
        distributed worker), so one OpenMP thread per block fills the cores
        without oversubscribing them.  Give more when a worker has more cores
        than threads (the synchronous scheduler, or a one-thread worker on a
        larger machine).  ``layer.num_threads`` is not used here, for that reason.
    chunks : int, tuple or dict, optional
        Output chunk lengths of the three spatial axes, in dask's notation
        (e.g. ``128`` or ``(128, 128, 64)``).  Default: ``stride`` times the
        input chunks.  With a softmax-like activation (or a callable) in
        ``channels_first``, the last axis is kept in one chunk, as those act on
        the whole last axis.

    Returns
    -------
    dask.array.Array
        The layer's output, lazily: same shape, dtype and values as
        ``layer(x.compute())``.
    """
    import dask.array as da            # optional extra: deconv3d[dask]
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph  # optional extra: deconv3d[dask]

    _check_input(x, layer)
    if not layer.built:
        layer.build(x.shape)
    channels_first = layer.data_format == "channels_first"
    channel_axis = 1 if channels_first else 4
    spatial_axes = (2, 3, 4) if channels_first else (1, 2, 3)
    in_channels = layer.kernel.shape[4]
    if x.shape[channel_axis] != in_channels:
        raise ValueError(f"Input 0 of layer '{layer.name}' is incompatible with the layer: "
                         f"expected axis {channel_axis} of input shape to have value "
                         f"{in_channels}, but received input with shape {x.shape}")
    threads = 1 if num_threads is None else _threads.validate(num_threads)
    frozen = _Frozen(copy.copy(layer))   # shares the weight state as it is now (immutable)
    plan = shapes.plan_axes([x.shape[a] for a in spatial_axes], layer.kernel_size,
                            layer.strides, shapes.layer_padding(layer), layer.output_padding,
                            layer.dilation_rate)

    # spatial output chunks, then what each output chunk reads
    whole_last_axis = channels_first and layer.activation.apply is not None
    lengths = [p.output_length for p in plan]
    if chunks is None:
        out_chunks = [shapes.output_chunks(x.chunks[a], p.output_length, p.stride)
                      for a, p in zip(spatial_axes, plan)]
    else:
        out_chunks = list(da.core.normalize_chunks(chunks, tuple(lengths), dtype=x.dtype))
    if whole_last_axis:
        out_chunks[2] = (lengths[2],)
    reads = [[_reads(start, stop, x.chunks[a], p)
              for start, stop in _bounds(out_chunks[i])]
             for i, (a, p) in enumerate(zip(spatial_axes, plan))]

    dtype = _output_dtype(frozen.layer, in_channels, channels_first)
    halves_last = layer.activation.name == "glu"
    filters = layer.filters // 2 if (halves_last and not channels_first) else layer.filters
    if halves_last and channels_first:
        if lengths[2] % 2:
            raise ValueError(f"activation 'glu' splits the last axis in two halves, but it "
                             f"has odd length {lengths[2]}")
        out_chunks[2] = (lengths[2] // 2,)
    spatial = [tuple(c) for c in out_chunks]
    out = ((x.chunks[0], (filters,), *spatial) if channels_first
           else (x.chunks[0], *spatial, (filters,)))
    channel_blocks = [(b, slice(None)) for b in range(len(x.chunks[channel_axis]))]

    name = "conv3d_transpose-" + tokenize(x.name, _layer_token(layer), threads,
                                          tuple(map(tuple, out_chunks)))
    layer_key = name + "-layer"
    graph = {layer_key: frozen}
    for nb in range(len(x.chunks[0])):
        for jd, jh, jw in itertools.product(*(range(len(r)) for r in reads)):
            axis_reads = (reads[0][jd], reads[1][jh], reads[2][jw])
            axis_pieces = [r[0] for r in axis_reads]
            levels = ([channel_blocks] + axis_pieces if channels_first
                      else axis_pieces + [channel_blocks])
            pieces = _piece_keys(x, nb, levels, graph, name + "-piece")
            crops = tuple(r[1] for r in axis_reads)
            sizes = tuple(r[2] for r in axis_reads)
            key = (name, nb, 0, jd, jh, jw) if channels_first else (name, nb, jd, jh, jw, 0)
            shape = tuple(out[axis][index] for axis, index in enumerate(key[1:]))
            graph[key] = (_compute_block, layer_key, pieces, crops, sizes, threads, shape)
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=[x])
    return da.Array(hlg, name, out, meta=np.empty((0,) * 5, dtype=dtype))


def _check_input(x, layer) -> None:
    """The checks the NumPy call makes, on what a lazy array already tells."""
    if x.ndim != 5:
        raise ValueError(f"Input 0 of layer '{layer.name}' is incompatible with the layer: "
                         f"expected ndim=5, found ndim={x.ndim}. Full shape received: "
                         f"{x.shape}")
    if any(np.isnan(c) for axis in x.chunks for c in axis):
        raise ValueError(f"Layer '{layer.name}' needs the chunk sizes of its dask input; "
                         f"call x.compute_chunk_sizes() first")
    kind = x.dtype.kind
    if kind not in "fiub":
        error = ValueError if kind in "US" else TypeError
        raise error(f"Layer '{layer.name}' expects a real numeric input array; got "
                    f"`inputs` of dtype {x.dtype}")
    compute = layer.dtype_policy.compute_dtype
    if kind == "f" and not layer.autocast and x.dtype != compute:
        raise TypeError(f"Layer '{layer.name}' has autocast=False and compute dtype "
                        f"{compute}, but `inputs` has dtype {x.dtype}")


def _bounds(chunks):
    """(start, stop) of each chunk."""
    stops = list(itertools.accumulate(chunks))
    return zip([0] + stops[:-1], stops)


def _reads(start, stop, input_chunks, axis):
    """For output chunk [start, stop) of one axis: the input pieces it reads, its crop, length.

    The pieces are ``(block index, slice within that block)``; there is always
    at least one (an empty slice when the window reads nothing), so that every
    output block has an input block to take shapes and dtype from.
    """
    first, end, crop = shapes.input_window(start, stop, axis.input_length, axis.kernel_size,
                                           axis.stride, axis.dilation, axis.front_crop)
    pieces = []
    for index, (lo, hi) in enumerate(_bounds(input_chunks)):
        if lo < end and hi > first:
            pieces.append((index, slice(max(first, lo) - lo, min(end, hi) - lo)))
    if not pieces:
        index = max(0, min(len(input_chunks) - 1,
                           sum(1 for _, hi in _bounds(input_chunks) if hi <= first)))
        pieces.append((index, slice(0, 0)))
    return pieces, crop, stop - start


def _piece_keys(x, nb, levels, graph, piece_name, chosen=()):
    """Keys of the input pieces an output block reads, nested one list per non-batch axis
    (as np.block reads them).

    A piece that is a whole input block is that block's key; part of one is a task of its
    own that slices it (added to ``graph``, shared by the output blocks reading the same
    rows), so that a cluster ships a neighbour's halo rows, not the whole neighbour.
    """
    if len(chosen) < len(levels):
        return [_piece_keys(x, nb, levels, graph, piece_name, chosen + (piece,))
                for piece in levels[len(chosen)]]
    block = (x.name, nb, *(index for index, _ in chosen))
    bounds = [cut.indices(x.chunks[axis][index])[:2]
              for axis, (index, cut) in enumerate(chosen, start=1)]
    if all(start == 0 and stop == x.chunks[axis][index]
           for axis, ((index, _), (start, stop)) in enumerate(zip(chosen, bounds), start=1)):
        return block
    key = (piece_name, *block[1:], *itertools.chain.from_iterable(bounds))
    graph.setdefault(key, (operator.getitem, block,
                           (slice(None), *(slice(*b) for b in bounds))))
    return key


def _compute_block(frozen, pieces, crops, lengths, threads, shape):
    """Task: gather the input slice from its pieces, compute the output block."""
    layer = frozen.layer
    x = pieces
    while isinstance(x, list) and len(x) == 1:
        x = x[0]
    if isinstance(x, list):
        x = np.block(pieces)           # one copy of exactly the slice the block reads
    y = layer._compute_window(x, crops, lengths, threads)
    if y.shape != shape:
        # only a user's activation callable can do this; dask would silently misplace it
        raise ValueError(f"Layer '{layer.name}': the activation returned a block of shape "
                         f"{y.shape} for an output block of shape {shape}; on dask arrays, an "
                         f"activation callable must keep the shape")
    return y


class _Frozen:
    """A snapshot of a built layer that pickles (its packed kernel does not).

    It is one node of the graph, so a distributed scheduler ships it once per
    worker, where unpickling packs the kernel again.
    """

    __slots__ = ("layer",)

    def __init__(self, layer):
        self.layer = layer

    def __reduce__(self):
        bare = copy.copy(self.layer)
        kernel, bias = bare._state[:2]
        bare._state, bare.built = None, False
        return _thaw, (bare, kernel, bias)


def _thaw(bare, kernel, bias):
    bare._install(kernel, bias)
    bare.built = True
    return _Frozen(bare)


def _output_dtype(layer, in_channels, channels_first):
    """The output dtype, from a call on one voxel (activation callables may change it)."""
    shape = (1, in_channels, 1, 1, 1) if channels_first else (1, 1, 1, 1, in_channels)
    probe = np.zeros(shape, dtype=layer.dtype_policy.compute_dtype)
    # two outputs along the last axis in channels_first, so that glu has halves to split
    lengths = (1, 1, 2) if channels_first else (1, 1, 1)
    return layer._compute_window(probe, (0, 0, 0), lengths, 1).dtype


def _layer_token(layer):
    """What identifies a layer's function: its config, weights and activation."""
    from dask.base import tokenize  # optional extra: deconv3d[dask]
    return tokenize(layer.get_config(), layer.get_weights(), layer.activation.original,
                    layer.activation.name)
