"""The checked directory of a zip file whose entries are all stored uncompressed.

:func:`read_directory` reads the central directory (with :mod:`zipfile`) and
then each entry's local header, and returns where each entry's bytes are, or
raises :class:`~edgernn.ModelFormatError` when an entry is compressed,
encrypted, listed twice, overlapping another, running into the directory, or
when its local header disagrees with the central directory (name, method,
CRC, sizes), or when the entries or their total size exceed the caps. After it
returns, reading an entry costs exactly its listed size, and all entries
together fit in the file.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass

from ..errors import ModelFormatError

__all__ = ["Entry", "read_directory"]

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_ENCRYPTED = 0x41  # traditional (bit 0) or strong (bit 6) encryption


@dataclass(frozen=True)
class Entry:
    """One stored entry: its data starts at byte ``offset`` of the file."""

    name: str
    offset: int
    size: int
    crc: int


def read_directory(fh, path: str, file_size: int, max_entries: int,
                   max_total_bytes: int) -> dict[str, Entry]:
    """``{name: Entry}`` of the zip open as ``fh`` (binary, seekable), checked whole.

    Parameters
    ----------
    fh : binary file object positioned anywhere
    path : str              named in error messages
    file_size : int         of the file, in bytes
    max_entries, max_total_bytes : int
    """
    def fail(msg):
        return ModelFormatError(f"{path}: {msg}")

    try:
        zf = zipfile.ZipFile(fh)
        infos, cd_start = zf.infolist(), zf.start_dir
    except Exception as exc:  # zipfile raises many kinds on hostile input
        raise fail(f"not a readable .ernn file (a zip archive was expected): "
                   f"{type(exc).__name__}: {exc}") from None
    if len(infos) > max_entries:
        raise fail(f"{len(infos)} entries, more than the {max_entries} allowed")
    entries, total, last_end = {}, 0, 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        name = info.filename
        if name in entries:
            raise fail(f"entry {name!r} appears twice in the zip directory")
        if info.flag_bits & _ENCRYPTED:
            raise fail(f"entry {name!r} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED:
            raise fail(f"entry {name!r} is compressed (method {info.compress_type}); .ernn "
                       f"entries are stored uncompressed")
        if info.compress_size != info.file_size:
            raise fail(f"entry {name!r}: stored size {info.compress_size} differs from its "
                       f"size {info.file_size}")
        total += info.file_size
        if total > max_total_bytes:
            raise fail(f"entries total more than the {max_total_bytes} bytes allowed (entry "
                       f"{name!r} is {info.file_size} bytes)")
        if info.header_offset < last_end:
            raise fail(f"entry {name!r} overlaps the entry before it")
        entries[name] = entry = _local(fh, info, cd_start, fail)
        last_end = entry.offset + entry.size
    if total > file_size:
        raise fail(f"entries claim {total} bytes, the file has {file_size}")
    return entries


def _local(fh, info, cd_start: int, fail) -> Entry:
    name = info.filename
    fh.seek(info.header_offset)
    head = fh.read(_LOCAL.size)
    if len(head) != _LOCAL.size:
        raise fail(f"entry {name!r}: local header beyond the end of the file")
    sig, _, flags, method, _, _, crc, csize, usize, nlen, elen = _LOCAL.unpack(head)
    raw_name = fh.read(nlen)
    try:
        local_name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
    except UnicodeDecodeError:
        local_name = None
    if sig != b"PK\x03\x04" or local_name != name or method != info.compress_type \
            or (flags & _ENCRYPTED) != (info.flag_bits & _ENCRYPTED):
        raise fail(f"entry {name!r}: the local header disagrees with the zip directory "
                   f"(name {local_name!r}, method {method})")
    if not (flags & 0x8 and (crc, csize, usize) == (0, 0, 0)):  # 0x8: sizes follow the data
        if (csize, usize) == (0xFFFFFFFF, 0xFFFFFFFF):
            csize = usize = _zip64_size(fh.read(elen))
        if (crc, csize, usize) != (info.CRC, info.compress_size, info.file_size):
            raise fail(f"entry {name!r}: the local header says CRC {crc:#x}, {usize} bytes; "
                       f"the zip directory says CRC {info.CRC:#x}, {info.file_size} bytes")
    start = info.header_offset + _LOCAL.size + nlen + elen
    if start + info.file_size > cd_start:
        raise fail(f"entry {name!r} runs past the start of the zip directory")
    return Entry(name, start, info.file_size, info.CRC)


def _zip64_size(extra: bytes) -> int:
    i = 0
    while i + 4 <= len(extra):
        tag, n = struct.unpack_from("<HH", extra, i)
        if tag == 1 and n >= 16:
            usize, csize = struct.unpack_from("<QQ", extra, i + 4)
            return usize if usize == csize else -1
        i += 4 + n
    return -1
