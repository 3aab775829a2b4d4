"""A ``.keras`` archive (a zip) read as data.

Nothing is extracted and only the members Keras writes are read.  Each is first
held against what the archive declares about it: its name, its size (a bounded
one for the JSON members), its compression ratio, and where its bytes lie, so
a zip bomb or a lying directory is refused before anything is expanded.  The
weights member is never copied into memory: h5py reads it in place.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections import Counter

from ._hdf5 import MAX_EXPANSION

# Far beyond any real config.json (a thousand-layer model writes a few MB), and small
# enough that refusing one that is not JSON costs well under 100 MB.
CONFIG_LIMIT = 32 << 20
METADATA_LIMIT = 1 << 20
# Members this small are read whatever their compression ratio.
_SMALL_MEMBER = 1 << 20
_CHUNK = 1 << 20
# A compressed weights member up to this size is expanded in memory, larger ones on disk.
_SPOOL_IN_MEMORY = 16 << 20
_LOCAL_HEADER = struct.Struct("<4s22xHH")       # signature ... name length, extra length
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_SUPERBLOCK_BYTES = 64          # enough for the fixed part of every superblock version

# What zipfile raises on a damaged archive (RuntimeError: encrypted; NotImplementedError:
# an unknown compression method).
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError)


def member_names(archive: zipfile.ZipFile, path: str) -> list:
    """The member names, once each; ValueError for duplicates or names that leave the archive."""
    names = archive.namelist()
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise ValueError(f"{path}: the archive holds {len(names)} members but names "
                         f"{repeated[0]!r} more than once; a .keras archive names each "
                         f"member once (tampered archive?)")
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
            raise ValueError(f"{path}: the archive member {name!r} points outside the "
                             f"archive; a .keras archive never does (tampered archive?)")
    return names


def read_small(archive: zipfile.ZipFile, name: str, limit: int, path: str) -> bytes:
    """A JSON member's bytes, refused unread if it declares more than ``limit`` bytes."""
    info = _checked_info(archive, name, path, limit)
    with archive.open(info) as member:
        raw = member.read(info.file_size + 1)
    _check_real_size(info, len(raw), path)
    return raw


@contextlib.contextmanager
def open_weights(archive: zipfile.ZipFile, name: str, path: str):
    """A seekable binary file over the HDF5 member ``name``, for ``h5py.File``.

    A stored member (what Keras writes) is read in place from the archive, after
    one pass in chunks that checks its CRC and real size in constant memory.  A
    compressed one is expanded once, in that same pass, into a temporary file
    (in memory while small; zipfile would expand it again from the start at
    every backward seek h5py makes), up to the end the HDF5 superblock declares,
    so a member padded with gigabytes of zeros costs time but neither memory
    nor disk.
    """
    info = _checked_info(archive, name, path, None)
    with contextlib.ExitStack() as stack:
        copy = None
        if info.compress_type != zipfile.ZIP_STORED:
            copy = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY))
        with archive.open(info) as member:
            chunk = member.read(_SUPERBLOCK_BYTES)
            if not chunk.startswith(_HDF5_MAGIC):
                raise ValueError(f"{path}: {name} in the .keras archive is not an HDF5 file "
                                 f"(corrupt archive?)")
            wanted = _hdf5_end(chunk, info.file_size)
            size = 0
            while chunk:
                if copy is not None and size < wanted:
                    copy.write(chunk[:wanted - size])
                size += len(chunk)
                chunk = member.read(_CHUNK)
        _check_real_size(info, size, path)
        if copy is not None:
            copy.seek(0)
            yield copy
            return
        handle = stack.enter_context(open(path, "rb"))
        yield _Window(handle, _data_start(handle, info, path), info.file_size)


def _hdf5_end(head: bytes, size: int) -> int:
    """Where the HDF5 file starting with ``head`` says it ends (its superblock's end-of-file
    address), or ``size`` when the superblock is not one this reads (HDF5 judges it)."""
    version = head[8] if len(head) > 8 else None
    # superblock versions 0 and 1: the offset size is byte 13, the base address at 24 / 28
    # and the end-of-file address two addresses later; versions 2 and 3: byte 9, and 12
    layout = {0: (13, 24), 1: (13, 28), 2: (9, 12), 3: (9, 12)}.get(version)
    if layout is None or len(head) <= layout[0]:
        return size
    width = head[layout[0]]
    end_at = layout[1] + 2 * width
    if width not in (2, 4, 8) or len(head) < end_at + width:
        return size
    base = int.from_bytes(head[layout[1]:layout[1] + width], "little")
    end = int.from_bytes(head[end_at:end_at + width], "little")
    return min(size, base + end)


def _checked_info(archive: zipfile.ZipFile, name: str, path: str, limit):
    info = archive.getinfo(name)
    where = f"{path}: {name} in the .keras archive"
    if limit is not None and info.file_size > limit:
        raise ValueError(f"{where} declares {info.file_size} bytes, more than the {limit} any "
                         f"Keras model needs there (zip bomb?); refused without reading it")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise ValueError(f"{where} is stored uncompressed but declares {info.file_size} bytes "
                         f"in {info.compress_size}: the archive contradicts itself")
    if info.file_size > _SMALL_MEMBER and info.file_size > MAX_EXPANSION * info.compress_size:
        raise ValueError(f"{where} declares {info.file_size} bytes from {info.compress_size} "
                         f"compressed bytes, more than compression can expand to (zip bomb?); "
                         f"refused without reading it")
    archive_size = os.path.getsize(path)
    if info.header_offset + info.compress_size > archive_size:
        raise ValueError(f"{where} declares {info.compress_size} bytes at offset "
                         f"{info.header_offset}, past the end of the archive ({archive_size} "
                         f"bytes): truncated or corrupt archive")
    return info


def _check_real_size(info, size: int, path: str) -> None:
    if size != info.file_size:
        raise ValueError(f"{path}: {info.filename} in the .keras archive declares "
                         f"{info.file_size} bytes but holds {size}: the archive contradicts "
                         f"itself")


def _data_start(handle, info, path: str) -> int:
    """Where a stored member's bytes begin: after its local header, whose own name and
    extra lengths may differ from the central directory's."""
    handle.seek(info.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise ValueError(f"{path}: no local header for {info.filename} at offset "
                         f"{info.header_offset} (corrupt archive?)")
    _, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    if start + info.file_size > os.fstat(handle.fileno()).st_size:
        raise ValueError(f"{path}: {info.filename} runs past the end of the archive "
                         f"(truncated archive?)")
    return start


class _Window(io.RawIOBase):
    """Read-only view of ``size`` bytes of an open file, from ``start``."""

    def __init__(self, handle, start: int, size: int):
        super().__init__()
        self._handle, self._start, self._size, self._position = handle, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer) -> int:
        count = max(0, min(len(buffer), self._size - self._position))
        if count == 0:
            return 0
        self._handle.seek(self._start + self._position)
        got = self._handle.readinto(memoryview(buffer).cast("B")[:count])
        self._position += got
        return got
