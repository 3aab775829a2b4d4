"""Hostile Keras files for tests, made cheaply: zip archives written byte by byte (so
they may lie), zip bombs that stay small on disk, HDF5 files that contradict themselves.

The zip writer is independent of :mod:`zipfile` on purpose: zipfile refuses to
write most of what these tests need (duplicate names, sizes that lie).
"""

import os
import struct
import zipfile
import zlib

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def data(name):
    return os.path.join(DATA, name)


def fixture_members(name="functional.keras"):
    """{member name: bytes} of a committed, valid .keras fixture."""
    with zipfile.ZipFile(data(name)) as archive:
        return {item: archive.read(item) for item in archive.namelist()}


# ---------------------------------------------------------------------- CRC-32 of long inputs
def _gf2_times(matrix, vector):
    total = 0
    for row in matrix:
        if not vector:
            break
        if vector & 1:
            total ^= row
        vector >>= 1
    return total


def _gf2_square(matrix):
    return [_gf2_times(matrix, row) for row in matrix]


def crc32_combine(crc1, crc2, length2):
    """CRC-32 of A + B from crc(A), crc(B) and len(B) (zlib's crc32_combine, in GF(2))."""
    if length2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]      # one zero bit
    even = _gf2_square(odd)                                 # two zero bits
    odd = _gf2_square(even)                                 # four zero bits
    while True:
        even = _gf2_square(odd)
        if length2 & 1:
            crc1 = _gf2_times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _gf2_square(even)
        if length2 & 1:
            crc1 = _gf2_times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return crc1 ^ crc2


def repeated_crc32(block, count):
    """CRC-32 of ``block * count`` by doubling, without building it."""
    crc, length = 0, 0
    piece_crc, piece_length = zlib.crc32(block), len(block)
    while count:
        if count & 1:
            crc = crc32_combine(crc, piece_crc, piece_length)
            length += piece_length
        piece_crc = crc32_combine(piece_crc, piece_crc, piece_length)
        piece_length *= 2
        count >>= 1
    return crc


# ---------------------------------------------------------------------- members
def stored(name, payload, size=None, crc=None):
    """An uncompressed member; ``size``/``crc`` may lie about ``payload``."""
    return {"name": name, "method": zipfile.ZIP_STORED, "data": payload,
            "size": len(payload) if size is None else size,
            "crc": zlib.crc32(payload) if crc is None else crc}


def deflated(name, payload, size=None, crc=None):
    """A deflated member; ``size``/``crc`` may lie about ``payload``."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return {"name": name, "method": zipfile.ZIP_DEFLATED,
            "data": packer.compress(payload) + packer.flush(),
            "size": len(payload) if size is None else size,
            "crc": zlib.crc32(payload) if crc is None else crc}


def deflated_repeats(name, block, count, prefix=b""):
    """A deflated member that expands to ``prefix + block * count``, made from one
    compressed copy of ``block``.

    A full flush empties the compressor's history, so every copy of the block
    compresses to the same bytes, which can simply be repeated.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH) if prefix else b""
    piece = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    return {"name": name, "method": zipfile.ZIP_DEFLATED,
            "data": start + piece * count + packer.flush(zlib.Z_FINISH),
            "size": len(prefix) + len(block) * count,
            "crc": crc32_combine(zlib.crc32(prefix), repeated_crc32(block, count),
                                 len(block) * count)}


def write_zip(path, members):
    """Write ``members`` as a zip archive, trusting every declared field (zip64 sizes
    when a member declares 4 GiB or more)."""
    central = []
    with open(path, "wb") as handle:
        for member in members:
            name = member["name"].encode("utf-8")
            offset = handle.tell()
            size, packed = member["size"], len(member["data"])
            big = size >= 0xFFFFFFFF or packed >= 0xFFFFFFFF
            extra = struct.pack("<HHQQ", 1, 16, size, packed) if big else b""
            local_extra = extra + member.get("local_extra", b"")
            shown_size, shown_packed = (0xFFFFFFFF, 0xFFFFFFFF) if big else (size, packed)
            version = 45 if big else 20
            handle.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", version, 0,
                                     member["method"], 0, 0x21, member["crc"], shown_packed,
                                     shown_size, len(name), len(local_extra)) + name + local_extra)
            handle.write(member["data"])
            central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", version, version,
                                       0, member["method"], 0, 0x21, member["crc"],
                                       shown_packed, shown_size, len(name), len(extra), 0, 0,
                                       0, 0, offset) + name + extra)
        start = handle.tell()
        directory = b"".join(central)
        handle.write(directory)
        handle.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central),
                                 len(central), len(directory), start, 0))
    return path


def keras_archive(path, replace=(), extra=()):
    """functional.keras, stored as Keras stores it, with members replaced or added."""
    members = {name: stored(name, payload) for name, payload in fixture_members().items()}
    for member in replace:
        members[member["name"]] = member
    return write_zip(path, list(members.values()) + list(extra))
