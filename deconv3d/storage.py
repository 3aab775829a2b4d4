"""Apply a layer from an array on disk to an array on disk, block by block.

Sources and destinations are zarr arrays (``.zarr``) and ``.npy`` files
(read and written through memory maps), so neither the input nor the output
ever has to fit in memory.  The output is computed by :mod:`deconv3d.dask`
and each block is written where it belongs as soon as it is ready, by
whichever process computed it: dask's threaded scheduler in this process, a
local ``dask.distributed`` cluster, or a remote one.

The output is written to a temporary sibling of the destination and renamed
into place only when every block has been written, so an interrupted or
failed run never leaves a destination that looks complete; the temporary
copy is removed on failure (a killed process leaves it, under a name that
says it is partial).

dask, distributed and zarr are optional (``pip install "deconv3d[dask]"``),
imported inside the functions that use them.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from typing import Callable, Optional

import numpy as np

from . import dask as chunked

# Input blocks read from .npy files: this many voxels along each spatial axis
# (64^3 float32 voxels x 32 channels = 32 MiB, and stride^3 times that out).
DEFAULT_BLOCK = 64


def apply_to_storage(layer, source, destination, *, key: Optional[str] = None,
                     data_format: Optional[str] = None, block: int = DEFAULT_BLOCK,
                     scheduler: Optional[str] = None, workers: Optional[int] = None,
                     num_threads: Optional[int] = None,
                     progress: Optional[Callable[[int, int], None]] = None) -> tuple:
    """Apply ``layer`` to the array in ``source`` and save the result in ``destination``.

    Parameters
    ----------
    layer : deconv3d.Conv3DTranspose
        Built, or built on the source's shape.
    source : str, os.PathLike or array
        A ``.zarr`` array (or group, with ``key``), a ``.npy`` file, or an
        array object (zarr array, NumPy array or memory map, dask array).
    destination : str or os.PathLike
        ``.zarr`` or ``.npy``; replaced if it exists (a directory that is not a
        zarr store is refused).
    key : str, optional
        The array inside a zarr group.
    data_format : {"channels_last", "channels_first"}, optional
        Layout of the source and destination arrays; default: the layer's.
    block : int, default 64
        Input block edge (spatial voxels per axis) for sources that have no
        chunks of their own (``.npy``, NumPy arrays); zarr sources keep their
        chunks.  Output blocks are ``stride`` times larger.
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``"tcp://host:8786"``)
        to run on.
    workers : int, optional
        Without ``scheduler``: start a local ``dask.distributed`` cluster of
        this many single-threaded worker processes (on 127.0.0.1) for this
        call.  Neither given: dask's threaded scheduler in this process.
    num_threads : int, optional
        OpenMP threads per block (see :func:`deconv3d.dask.conv3d_transpose`).
    progress : callable, optional
        ``progress(done, total)`` after each output block is written (and once
        with ``done == 0`` before the first).

    Returns
    -------
    tuple
        The shape of the saved output.
    """
    try:
        import dask.array as da        # optional extra: deconv3d[dask]
        import zarr  # noqa: F401
    except ImportError as error:
        raise ImportError(f"applying a layer block by block needs dask and zarr "
                          f"(pip install \"deconv3d[dask]\"): {error}") from None

    destination = os.fspath(destination)
    kind = _kind(destination, "destination")
    if block is None or isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"block must be a positive int, got {block!r}")
    if os.path.isdir(destination) and not _looks_like_zarr(destination):
        raise ValueError(f"destination {destination!r} is a directory that is not a zarr "
                         f"store; refusing to replace it")
    layout = data_format or layer.data_format
    x = _open_source(source, key, block, 1 if layout == "channels_first" else 4)
    if x.ndim != 5:
        raise ValueError(f"the source has shape {x.shape}; Conv3DTranspose needs a 5-D array "
                         f"(batch, 3 spatial axes, channels) or (batch, channels, 3 spatial "
                         f"axes)")
    swap = layout != layer.data_format
    if swap:
        x = to_format(x, layout, layer.data_format)
    if not layer.built:
        layer.build(x.shape)
    spatial = (2, 3, 4) if layer.data_format == "channels_first" else (1, 2, 3)
    # regular output chunks (a chunked store needs them): stride x the first input chunk
    x = x.rechunk({0: max(1, x.chunks[0][0])})
    out_chunks = tuple(s * max(1, x.chunks[a][0]) for s, a in zip(layer.strides, spatial))
    y = chunked.conv3d_transpose(x, layer, num_threads=num_threads, chunks=out_chunks)
    if swap:
        y = to_format(y, layer.data_format, layout)

    temporary = _temporary_sibling(destination)
    try:
        target = _create(kind, temporary, y.shape, y.dtype, [c[0] for c in y.chunks])
        written = da.map_blocks(_write_block, y, target=target, dtype=np.int8,
                                chunks=tuple((1,) * len(c) for c in y.chunks),
                                meta=np.empty((0,) * 5, dtype=np.int8))
        _run(written, scheduler, workers, progress)
        _replace(temporary, destination)
    except BaseException:
        _remove(temporary)
        raise
    return tuple(y.shape)


# ---------------------------------------------------------------------- sources
def _kind(path: str, what: str) -> str:
    lowered = path.rstrip("/\\").lower()
    for suffix in (".zarr", ".npy"):
        if lowered.endswith(suffix):
            return suffix
    raise ValueError(f"{what} {path!r}: expected a .zarr store or a .npy file")


def _looks_like_zarr(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, name))
               for name in ("zarr.json", ".zarray", ".zgroup"))


def _open_source(source, key, block, channel_axis):
    """The source as a dask array (zarr keeps its chunks, the rest gets ``block``)."""
    import dask.array as da  # optional extra: deconv3d[dask]

    if chunked.is_dask_array(source):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        kind = _kind(path, "source")
        if not os.path.exists(path):
            raise FileNotFoundError(f"source: no such file or directory: {path!r}")
        if kind == ".npy":
            if key is not None:
                raise ValueError(f"key is only for zarr groups; {path} is a .npy file")
            source = _Npy(path)
        else:
            return da.from_zarr(_open_zarr(path, key))
    elif type(source).__module__.startswith("zarr"):
        return da.from_zarr(source)
    if getattr(source, "ndim", None) != 5:
        array = source if hasattr(source, "ndim") else np.asarray(source)
        return da.from_array(array)     # the caller reports the rank
    # batch 1, `block` spatial voxels, channels whole (every output voxel reads them all)
    chunks = tuple(n if axis == channel_axis else 1 if axis == 0 else min(block, max(1, n))
                   for axis, n in enumerate(source.shape))
    return da.from_array(source, chunks=chunks, lock=False, asarray=True,
                         meta=np.empty((0,) * 5, dtype=source.dtype))


def _open_zarr(path, key):
    import zarr  # optional extra: deconv3d[dask]

    node = zarr.open(path, mode="r")
    if isinstance(node, zarr.Array):
        if key is not None:
            raise ValueError(f"{path} is a zarr array, not a group; drop the key")
        return node
    return node[choose_array(path, sorted(name for name, _ in node.arrays()), key, "a key")]


def choose_array(path, names, key, how: str) -> str:
    """The name of the array to read from a container of several (zarr group, .npz).

    ``key`` when given and present, else the only array there is; ``how`` says in the
    error how a user names one (e.g. ``"--key"``).

    Raises
    ------
    ValueError
        ``key`` is not among ``names``, or it is None and there is not exactly one.
    """
    if key is None:
        if len(names) != 1:
            raise ValueError(f"{path} holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                             f"choose one with {how}")
        return names[0]
    if key not in names:
        raise ValueError(f"{path} has no array {key!r}; it holds: "
                         f"{', '.join(names) or 'nothing'}")
    return key


class _Npy:
    """A .npy file that dask reads slice by slice; it pickles as its path.

    Each read maps the file, copies the slice and unmaps it, so a block costs
    memory only while it is in use, in whichever process reads it.
    """

    def __init__(self, path):
        self.path = os.path.abspath(path)
        try:
            header = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise ValueError(f"source: cannot read {path}: {error}") from None
        self.shape, self.dtype, self.ndim = header.shape, header.dtype, header.ndim
        del header

    def __getitem__(self, index):
        mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return np.array(mapped[index])


def to_format(array, source: str, target: str):
    """A view of a rank-5 array in another data format ("channels_last"/"channels_first")."""
    if source == target:
        return array
    if source == "channels_last":
        return array.transpose(0, 4, 1, 2, 3)
    return array.transpose(0, 2, 3, 4, 1)


# ---------------------------------------------------------------------- destinations
def _temporary_sibling(destination: str) -> str:
    head, tail = os.path.split(os.path.abspath(destination.rstrip("/\\")))
    return os.path.join(head, f".{tail}.partial-{uuid.uuid4().hex[:12]}")


def _create(kind, path, shape, dtype, chunks):
    """An empty destination at ``path``, and a picklable writer for it."""
    if kind == ".npy":
        mapped = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
        del mapped                      # the file now has its header and its full size
        return _NpyTarget(path)
    import zarr  # optional extra: deconv3d[dask]

    zarr.create_array(store=path, shape=tuple(shape), chunks=tuple(max(1, c) for c in chunks),
                      dtype=dtype, fill_value=0, zarr_format=3)
    return _ZarrTarget(path)


class _NpyTarget:
    """Writes a block into a .npy file through a memory map (pickles as its path)."""

    def __init__(self, path):
        self.path = path

    def write(self, region, values):
        mapped = np.load(self.path, mmap_mode="r+", allow_pickle=False)
        mapped[region] = values
        # no flush: unmapping leaves the pages to the page cache, seen by every process
        # and written back by the kernel, instead of waiting for the disk block by block


class _ZarrTarget:
    """Writes a block into a zarr array whose chunks it matches (pickles as its path)."""

    def __init__(self, path):
        self.path = path

    def write(self, region, values):
        import zarr  # optional extra: deconv3d[dask]

        zarr.open_array(self.path, mode="r+")[region] = values


def _write_block(block, target=None, block_info=None):
    location = block_info[0]["array-location"]
    target.write(tuple(slice(lo, hi) for lo, hi in location), block)
    return np.ones((1,) * block.ndim, dtype=np.int8)


def _replace(temporary: str, destination: str) -> None:
    """Move the finished output into place, replacing what was there."""
    destination = destination.rstrip("/\\") or destination
    if os.path.isdir(destination):
        # a directory cannot be replaced in one rename: move it aside first
        old = _temporary_sibling(destination).replace(".partial-", ".old-")
        os.rename(destination, old)
        os.rename(temporary, destination)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(temporary, destination)


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


# ---------------------------------------------------------------------- running
def _run(written, scheduler, workers, progress) -> None:
    """Compute ``written`` (one tiny block per output block), reporting progress."""
    total = written.npartitions
    if scheduler is None and workers is None:
        if progress is not None:
            progress(0, total)
        _run_threaded(written, total, progress)
        return
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    # optional extra: deconv3d[dask]
    from distributed import Client, LocalCluster, as_completed, futures_of

    cluster = None
    if scheduler is None:
        # single-threaded workers: each block then runs the core on one thread; every
        # server (scheduler, workers, the scheduler's HTTP endpoint) on this machine only
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0")
        scheduler = cluster
    try:
        with Client(scheduler, set_as_default=False) as client:
            if progress is not None:
                progress(0, total)
            futures = futures_of(client.persist(written))
            for done, future in enumerate(as_completed(futures, loop=client.loop), 1):
                if future.status != "finished":
                    future.result()      # raises the block's error here
                if progress is not None:
                    progress(done, total)
            del futures
    finally:
        if cluster is not None:
            cluster.close()


def _run_threaded(written, total, progress) -> None:
    from dask.callbacks import Callback  # optional extra: deconv3d[dask]

    name = written.name
    done = [0]

    def posttask(key, result, dsk, state, worker_id):
        if isinstance(key, tuple) and key[0] == name:
            done[0] += 1
            progress(done[0], total)

    with Callback(posttask=posttask if progress is not None else None):
        written.compute(scheduler="threads")


class ProgressBar:
    """``progress(done, total)`` as a text bar on a stream, at most about once a second.

    Parameters
    ----------
    stream : file-like, default sys.stderr
    every : float, default 1.0
        Seconds between lines; the first and the last are always written.
    """

    def __init__(self, stream=None, every: float = 1.0, width: int = 30):
        self.stream = stream if stream is not None else sys.stderr
        self.every, self.width = every, width
        self.start = self.last = None

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.start is None:
            self.start = now
        if 0 < done < total and now - self.last < self.every:
            return
        self.last = now
        fraction = done / total if total else 1.0
        filled = int(self.width * fraction)
        elapsed = now - self.start
        left = f", ~{elapsed / done * (total - done):.1f} s left" if 0 < done < total else ""
        print(f"apply: [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} blocks "
              f"({100 * fraction:.0f}%), {elapsed:.1f} s{left}", file=self.stream, flush=True)
