"""HDF5 access shared by both Keras layouts: the h5py import, attribute text, and
reading a file's contents as data only.

A file is checked before anything in it is read: links that leave the file
(external links) are refused, as are soft links, which Keras never writes.  A
dataset is read only after its declared shape and size are checked against
what the file can really hold, so a few bytes on disk cannot ask for gigabytes.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence

import numpy as np

from ._model_config import declared_kernel

INSTALL_HINT = 'pip install "deconv3d[keras]"'

# Any dataset this small may be read whatever it declares (fill values, compact layout).
SMALL_DATASET_BYTES = 1 << 20
# Deflate, the only compression Keras files meet, expands at most ~1032x; more is a lie.
MAX_EXPANSION = 1100
# HDF5 filters that are built into HDF5 or h5py: anything else would load a plugin.
KNOWN_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit",
                 6: "scaleoffset", 32000: "lzf"}
# What h5py raises on a damaged file besides OSError: a missing object (KeyError), a
# structure HDF5 cannot follow (RuntimeError, RecursionError among them).
UNREADABLE = (OSError, KeyError, RuntimeError, EOFError)
# weight_names / layer_names lists and JSON attributes, far beyond any real model
MAX_ATTRIBUTE_ITEMS = 1 << 20


def h5py():
    """The h5py module, or an ImportError that says how to install it."""
    try:
        import h5py  # here, not at the top: optional, and only needed to read files
    except ImportError as error:
        raise ImportError(f"Reading Keras files needs h5py, which is not installed; install "
                          f"it with: {INSTALL_HINT}") from error
    return h5py


def text(value) -> str:
    """An HDF5 attribute (bytes, a 0-d array or a str) as a str."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return text(value[()])
    return str(value)


def text_list(value) -> List[str]:
    """An HDF5 attribute holding a list of names, as a list of str."""
    if value is None:
        return []
    return [text(v) for v in np.asarray(value).ravel() if not isinstance(v, float)]


def check_links(handle, path: str) -> None:
    """ValueError if any link in the file is not a plain (hard) link inside it."""
    h5py_module = h5py()
    hard = h5py_module.h5l.TYPE_HARD
    kinds = {getattr(h5py_module.h5l, "TYPE_SOFT", None): "a soft link",
             getattr(h5py_module.h5l, "TYPE_EXTERNAL", None): "a link to another file"}
    found = []

    def visit(name, info):
        if info.type != hard:
            found.append((name.decode("utf-8", "replace") if isinstance(name, bytes) else name,
                          kinds.get(info.type, "a user-defined link")))
            return 1       # stop: one is enough to refuse
        return None

    handle.id.links.visit(visit, info=True)
    if found:
        name, kind = found[0]
        raise ValueError(f"{path}: /{name} is {kind}; a Keras file holds only plain groups "
                         f"and datasets, and nothing outside the file is read")


def attribute(obj, name: str, location: str, path: str):
    """An attribute's value, after checking it declares no more than a few million items."""
    h5py_module = h5py()
    attr_id = h5py_module.h5a.open(obj.id, name.encode("utf-8"))
    count = int(np.prod(attr_id.shape, dtype=np.int64)) if attr_id.shape else 1
    if count > MAX_ATTRIBUTE_ITEMS:
        raise ValueError(f"{path}: the attribute {name!r} of {location} declares {count} "
                         f"items, more than any Keras file holds (corrupt or hostile file?)")
    return obj.attrs[name]


def read_weights(entries, path: str) -> tuple:
    """``entries`` (whose ``weights`` are still h5py datasets) with their weights read.

    Called once the whole file has been walked, so a file that lacks a layer says
    so before any weights are judged.  Each dataset is checked against its
    layer's config first: a kernel of another shape is refused unread.
    """
    read = []
    for entry in entries:
        declared = declared_kernel(entry.config)
        expected = ((declared + (None,), (declared[3],)) if declared
                    else ((None,) * 5, (None,)))
        labels = ("kernel", "bias") + ("weight",) * len(entry.weights)
        arrays = tuple(read_dataset(dataset, f"{path}, layer {entry.path!r}", label, shape)
                       for dataset, label, shape in zip(entry.weights, labels,
                                                        expected + (None,) * len(entry.weights)))
        read.append(dataclasses.replace(entry, weights=arrays))
    return tuple(read)


def read_dataset(dataset, source: str, label: str,
                 expected: Optional[Sequence[Optional[int]]] = None) -> np.ndarray:
    """A dataset's values, read only once it is known to be plain numbers of a sane size.

    ``expected`` gives the shape the layer config implies (None for a free axis); a
    dataset declared with another shape is refused before any of it is read.
    """
    if not isinstance(dataset, h5py().Dataset):
        raise ValueError(f"{source}: the stored {label} is not a dataset (corrupt file?)")
    where = f"{source}: the stored {label} ({dataset.name})"
    if dataset.shape is None:
        raise ValueError(f"{where} holds no values (an empty dataspace)")
    shape = tuple(int(n) for n in dataset.shape)
    if expected is not None and (len(shape) != len(expected) or any(
            e is not None and e != n for e, n in zip(expected, shape))):
        if all(e is None for e in expected):
            raise ValueError(f"{source}: the stored {label} has shape {shape} "
                             f"({dataset.name}), not the {len(expected)}-D array a "
                             f"Conv3DTranspose stores")
        shown = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{source}: the stored {label} has shape {shape} ({dataset.name}), "
                         f"which does not match the layer config (expected {shown}); the file "
                         f"contradicts itself")
    if dataset.dtype.kind not in "fiub" or dataset.dtype.itemsize > 8:
        raise ValueError(f"{where} holds {dataset.dtype} values, not numbers")
    plist = dataset.id.get_create_plist()
    if plist.get_external_count() or plist.get_layout() == getattr(h5py().h5d, "VIRTUAL", -1):
        raise ValueError(f"{where} keeps its data in other files; only data inside the "
                         f"file named is read")
    _check_filters(plist, where)
    _check_size(dataset, where)
    return np.asarray(dataset[()])


def _check_filters(plist, where: str) -> None:
    for index in range(plist.get_nfilters()):
        filter_id = int(plist.get_filter(index)[0])
        if filter_id not in KNOWN_FILTERS:
            raise ValueError(f"{where} needs HDF5 filter {filter_id}, which is not built into "
                             f"HDF5 or h5py (filters it may use: "
                             f"{', '.join(sorted(KNOWN_FILTERS.values()))})")


def _check_size(dataset, where: str) -> None:
    """ValueError if the declared data could not be inside the file it comes from."""
    declared = int(np.prod(dataset.shape, dtype=np.int64)) * dataset.dtype.itemsize
    if declared <= SMALL_DATASET_BYTES:
        return
    file_size = int(dataset.file.id.get_filesize())
    if dataset.chunks is None:
        offset = dataset.id.get_offset()
        if offset is None:
            raise ValueError(f"{where} declares {declared} bytes of data but stores none "
                             f"(corrupt or hostile file?)")
        if offset + declared > file_size:
            raise ValueError(f"{where} declares {declared} bytes of data at offset {offset}, "
                             f"past the end of the file ({file_size} bytes): truncated or "
                             f"corrupt file")
        return
    stored = min(int(dataset.id.get_storage_size()), file_size)
    if declared > MAX_EXPANSION * stored:
        raise ValueError(f"{where} declares {declared} bytes of data from {stored} stored "
                         f"bytes, more than compression can expand to (corrupt or hostile "
                         f"file?)")
