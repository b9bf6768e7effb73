"""The bounded zip container of ``.ernn`` files; it knows nothing of models.

Entries, all stored uncompressed::

    manifest.json       canonical JSON (see :mod:`edgernn.format.boundedjson`)
    manifest.sha256     64 hex digits: SHA-256 of the manifest.json bytes
    manifest.sig        optional Ed25519 signature of that hash (:mod:`edgernn.format.signing`)
    arrays/<key>.npy    one array per key of the manifest's array table, .npy format 1.0

An array table maps each key to ``{"shape": [int, ...], "dtype": "float32" |
"int8" | "int16" | "int32", "sha256": <hex of the raw C-order bytes>}``.

Reading is bounded before anything is read: :class:`Archive` checks the zip
directory first (every entry stored, unencrypted, listed once, its local
header agreeing with the central directory, entries not overlapping, the total
size under :attr:`Limits.max_total_bytes`), so memory never exceeds the file's
size. The manifest is verified against its hash (and signature) before it is
parsed, then parsed with bounded depth, numbers and strings. Each array is
checked against its table entry (shape multiplied in Python integers, the
``.npy`` header, the entry size) before it is allocated, then read once,
straight into its final numpy array, hashed on the way. Every problem is a
:class:`~edgernn.ModelFormatError` naming the file and the entry or field.

Writing (:func:`write`) is atomic (:mod:`edgernn.format.atomic`) and deterministic.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError
from . import boundedjson
from .atomic import atomic_write
from .zipdir import Entry, read_directory

__all__ = ["Archive", "Contents", "Limits", "DTYPES", "array_meta", "read", "write",
           "MANIFEST", "MANIFEST_HASH", "MANIFEST_SIG"]

MANIFEST, MANIFEST_HASH, MANIFEST_SIG = "manifest.json", "manifest.sha256", "manifest.sig"
DTYPES = {"float32": np.dtype("<f4"), "int8": np.dtype("i1"), "int16": np.dtype("<i2"),
          "int32": np.dtype("<i4")}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds on what reading an archive may cost; the defaults suit any RNN a Pi runs."""

    max_total_bytes: int = (1 << 31) - 1   # sum of all entry sizes
    max_entries: int = 10_000
    max_manifest_bytes: int = 4 << 20
    max_ndim: int = 8
    max_json_depth: int = 32
    max_json_string: int = 1 << 16


_DEFAULT = Limits()


def _key_ok(key) -> bool:
    if not isinstance(key, str) or not 0 < len(key.encode("utf-8", "replace")) <= 200:
        return False
    if any(c in key for c in "\\\0") or not key.isprintable():
        return False
    return all(part not in ("", ".", "..") for part in key.split("/"))


def _dtype_name(dtype: np.dtype) -> str:
    name = next((k for k, v in DTYPES.items() if v == dtype), None)
    if name is None:
        raise ModelFormatError(f"array dtype {dtype} cannot be stored; expected one of "
                               f"{sorted(DTYPES)}")
    return name


def array_meta(arr: np.ndarray) -> dict:
    """The array-table entry of ``arr`` (shape, dtype name, SHA-256 of its C-order bytes)."""
    arr = np.asarray(arr, order="C")
    return {"shape": [int(d) for d in arr.shape], "dtype": _dtype_name(arr.dtype),
            "sha256": hashlib.sha256(memoryview(arr.reshape(-1).view(np.uint8))).hexdigest()}


class Archive:
    """An open ``.ernn`` archive whose zip directory has been checked whole.

    Parameters
    ----------
    path : str or Path
    limits : Limits

    Raises
    ------
    ModelFormatError
        Any problem of the zip directory (:func:`edgernn.format.zipdir.read_directory`);
        OSError (FileNotFoundError, ...) when the file cannot be opened.

    Attributes (after :meth:`read_manifest`)
    ---------------------------------------
    manifest_sha256 : str      hex SHA-256 of the manifest.json bytes
    hash_stored : bool         the archive has manifest.sha256 (format 2.0 files)
    signed_by : str or None    hex SHA-256 of the public key whose signature verified
    signature : dict or None   the manifest.sig document, verified or not
    """

    def __init__(self, path, limits: Limits | None = None):
        self.path, self.limits = str(path), limits or _DEFAULT
        self.manifest_sha256 = None
        self.hash_stored = False
        self.signed_by = self.signature = None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(21, "Is a directory", self.path)
            if not stat.S_ISREG(st.st_mode):
                raise self._fail("not a regular file")
            if hasattr(os, "set_blocking"):
                os.set_blocking(fd, True)
            self._fh = os.fdopen(fd, "rb", buffering=0)
        except BaseException:
            os.close(fd)
            raise
        try:
            self.entries = read_directory(self._fh, self.path, st.st_size, self.limits.max_entries,
                                          self.limits.max_total_bytes)
        except BaseException:
            self._fh.close()
            raise

    def _fail(self, msg: str) -> ModelFormatError:
        return ModelFormatError(f"{self.path}: {msg}")

    def close(self) -> None:
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- reading -------------------------------------------------------------
    def _readinto(self, entry: Entry, view: memoryview, pos: int, crc: int, sha=None) -> int:
        """Read ``len(view)`` bytes of ``entry`` from byte ``pos`` into ``view``."""
        self._fh.seek(entry.offset + pos)
        done, n_all = 0, len(view)
        while done < n_all:
            n = self._fh.readinto(view[done:done + _CHUNK])
            if not n:
                raise self._fail(f"entry {entry.name!r} is truncated")
            chunk = view[done:done + n]
            crc = zlib.crc32(chunk, crc)
            if sha is not None:
                sha.update(chunk)
            done += n
        return crc

    def read_bytes(self, name: str, cap: int) -> bytes:
        """A small entry's bytes (at most ``cap``), CRC-checked."""
        entry = self.entries.get(name)
        if entry is None:
            raise self._fail(f"no {name} in the archive")
        if entry.size > cap:
            raise self._fail(f"entry {name!r} is {entry.size} bytes, more than the {cap} "
                             f"allowed")
        buf = bytearray(entry.size)
        crc = self._readinto(entry, memoryview(buf), 0, 0)
        if crc != entry.crc:
            raise self._fail(f"entry {name!r} is corrupt (CRC-32 mismatch)")
        return bytes(buf)

    def _json(self, name: str, cap: int):
        raw = self.read_bytes(name, cap)
        try:
            return raw, boundedjson.loads(raw, max_bytes=cap, max_depth=self.limits.max_json_depth,
                                          max_string=self.limits.max_json_string)
        except boundedjson.JSONLimitError as exc:
            raise self._fail(f"{name}: {exc}") from None

    def read_manifest(self, require_signature: bool = False, public_key=None) -> dict:
        """The manifest, verified against its hash and signature before it is parsed.

        Parameters
        ----------
        require_signature : bool
            Refuse an archive without a ``manifest.sig`` that verifies with ``public_key``.
        public_key : key, PEM, raw bytes or path, optional
            Verify the signature when the archive has one (required with
            ``require_signature``).
        """
        if require_signature and public_key is None:
            raise ValueError("require_signature=True needs public_key")
        if public_key is not None:
            from . import signing

            signing.public_key_bytes(public_key)  # a bad key fails first, whatever the file
        if MANIFEST not in self.entries:
            raise self._fail("no manifest.json in the archive")
        raw = self.read_bytes(MANIFEST, self.limits.max_manifest_bytes)
        digest = hashlib.sha256(raw).digest()
        self.manifest_sha256 = digest.hex()
        if MANIFEST_HASH in self.entries:
            stored = self.read_bytes(MANIFEST_HASH, 65).decode("ascii", "replace").rstrip("\n")
            if not _HEX64.fullmatch(stored):
                raise self._fail(f"manifest.sha256: expected 64 lowercase hex digits, got "
                                 f"{stored[:80]!r}")
            if stored != digest.hex():
                raise self._fail(f"manifest.json does not match manifest.sha256 (recorded "
                                 f"{stored[:12]}..., actual {digest.hex()[:12]}...): the "
                                 f"manifest was edited or corrupted")
            self.hash_stored = True
        if MANIFEST_SIG in self.entries:
            if not self.hash_stored:
                raise self._fail("manifest.sig without manifest.sha256")
            from . import signing

            _, self.signature = self._json(MANIFEST_SIG, 4096)
            try:
                signing.check_document(self.signature)
                if public_key is not None:
                    self.signed_by = signing.verify(self.signature, digest, public_key)
            except ModelFormatError as exc:
                raise self._fail(str(exc)) from None
        elif require_signature:
            raise self._fail("the file is not signed (no manifest.sig) and a signature is "
                             "required")
        _, man = self._json(MANIFEST, self.limits.max_manifest_bytes)
        if not isinstance(man, dict):
            raise self._fail(f"manifest.json: expected an object, got {type(man).__name__}")
        if self.hash_stored and boundedjson.canonical(man) != raw:
            raise self._fail("manifest.json is not in canonical form (sorted keys, no whitespace, "
                             "ASCII), so its hash is not the canonical manifest's")
        return man

    def read_array(self, key: str, meta) -> np.ndarray:
        """Read ``arrays/<key>.npy`` once into a new array after checking it against ``meta``."""
        where = f"arrays[{key!r}]"
        shape, dtype, nbytes = self._meta(where, meta)
        entry = self.entries.get(f"arrays/{key}.npy")
        if entry is None:
            raise self._fail(f"array {key!r} is listed in the manifest but "
                             f"'arrays/{key}.npy' is missing")
        if entry.size < 10:
            raise self._fail(f"entry {entry.name!r}: {entry.size} bytes, too short for .npy")
        head = bytearray(10)
        crc = self._readinto(entry, memoryview(head), 0, 0)
        magic, (major, minor), hlen = bytes(head[:6]), head[6:8], head[8] | head[9] << 8
        if magic != b"\x93NUMPY" or (major, minor) != (1, 0):
            raise self._fail(f"entry {entry.name!r}: expected a .npy 1.0 header, got "
                             f"{bytes(head[:8])!r}")
        if 10 + hlen + nbytes != entry.size:
            raise self._fail(f"entry {entry.name!r}: {entry.size} bytes, but {where} "
                             f"{dtype.name}{list(shape)} needs {nbytes} data bytes after a "
                             f"{hlen}-byte header")
        header = bytearray(hlen)
        crc = self._readinto(entry, memoryview(header), 10, crc)
        try:
            buf = io.BytesIO(bytes(head) + bytes(header))
            np.lib.format.read_magic(buf)
            hshape, fortran, hdtype = np.lib.format.read_array_header_1_0(buf)
        except Exception as exc:  # numpy's header parser raises tokenize/ast errors too
            raise self._fail(f"entry {entry.name!r}: bad .npy header ({type(exc).__name__})") \
                from None
        if hdtype.hasobject or hdtype != dtype or fortran or tuple(hshape) != shape:
            raise self._fail(f"entry {entry.name!r}: {where} says {dtype.name}{list(shape)}, "
                             f"the .npy header says {hdtype}{list(hshape)}"
                             f"{' in Fortran order' if fortran else ''}")
        arr = np.empty(shape, dtype)
        sha = hashlib.sha256()
        view = memoryview(arr.reshape(-1).view(np.uint8))
        crc = self._readinto(entry, view, 10 + hlen, crc, sha)
        if crc != entry.crc:
            raise self._fail(f"entry {entry.name!r} is corrupt (CRC-32 mismatch)")
        if sha.hexdigest() != meta["sha256"]:
            raise self._fail(f"array {key!r}: SHA-256 mismatch (manifest {meta['sha256'][:12]}"
                             f"..., data {sha.hexdigest()[:12]}...): the file was altered or "
                             f"corrupted")
        return arr

    def _meta(self, where: str, meta) -> tuple:
        if not isinstance(meta, dict):
            raise self._fail(f"{where}: expected an object, got {type(meta).__name__}")
        for field in ("shape", "dtype", "sha256"):
            if field not in meta:
                raise self._fail(f"{where} lacks {field!r}")
        shape, name, sha = meta["shape"], meta["dtype"], meta["sha256"]
        if not isinstance(shape, list) or len(shape) > self.limits.max_ndim or not all(
                type(d) is int and d >= 0 for d in shape):
            raise self._fail(f"{where}.shape: expected a list of at most "
                             f"{self.limits.max_ndim} sizes >= 0, got {shape!r:.80}")
        if not isinstance(name, str) or name not in DTYPES:
            raise self._fail(f"{where}.dtype: expected one of {sorted(DTYPES)}, got {name!r:.40}")
        if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
            raise self._fail(f"{where}.sha256: expected 64 lowercase hex digits, got {sha!r:.80}")
        dtype = DTYPES[name]
        nbytes = dtype.itemsize
        for d in shape:  # Python integers: no wrap-around; capped as it grows
            nbytes *= d
            if nbytes > self.limits.max_total_bytes:
                raise self._fail(f"{where}.shape {shape}: {name} array larger than the "
                                 f"{self.limits.max_total_bytes} bytes allowed")
        return tuple(shape), dtype, nbytes

    def read_arrays(self, table) -> dict:
        """Every array of ``table`` ({key: meta}); the archive must hold nothing else."""
        if not isinstance(table, dict):
            raise self._fail(f"array table: expected an object, got {type(table).__name__}")
        for key in table:
            if not _key_ok(key):
                raise self._fail(f"array name {key!r:.80} is not a safe entry name")
        listed = {f"arrays/{k}.npy" for k in table} | {MANIFEST, MANIFEST_HASH, MANIFEST_SIG}
        extra = sorted(set(self.entries) - listed)
        if extra:
            raise self._fail(f"unexpected entries in the archive: {extra[:5]}")
        return {key: self.read_array(key, meta) for key, meta in table.items()}


@dataclass(frozen=True)
class Contents:
    """What :func:`read` returns: the checked manifest, its arrays, and how it was verified."""

    manifest: dict
    arrays: dict
    manifest_sha256: str
    hash_stored: bool
    signed_by: str | None


def read(path, table_key: str = "arrays", require_signature: bool = False, public_key=None,
         limits: Limits | None = None) -> Contents:
    """Read a whole archive: directory, manifest (hash, signature), every array of its table.

    ``table_key``: where the manifest keeps its array table (``manifest[table_key]``).
    See :meth:`Archive.read_manifest` for the signature options.
    """
    with Archive(path, limits) as ar:
        man = ar.read_manifest(require_signature=require_signature, public_key=public_key)
        if table_key not in man:
            raise ar._fail(f"manifest lacks {table_key!r}")
        arrays = ar.read_arrays(man[table_key])
        return Contents(man, arrays, ar.manifest_sha256, ar.hash_stored, ar.signed_by)


def write(path, manifest: dict, arrays: dict, signing_key=None) -> Path:
    """Write an archive atomically: ``manifest`` (canonical), its hash, ``arrays``.

    ``manifest`` must already hold the array table (:func:`array_meta` of each
    array) wherever its format keeps it. ``signing_key``: an Ed25519 private key
    (see :mod:`edgernn.format.signing`) to add ``manifest.sig``.

    Raises
    ------
    ModelFormatError
        When the manifest cannot be stored (non-finite number, beyond the limits)
        or an array name or dtype cannot.
    OSError
        Naming ``path``; the destination is then untouched.
    """
    try:
        raw = boundedjson.canonical(manifest)
        boundedjson.loads(raw, max_bytes=_DEFAULT.max_manifest_bytes,
                          max_depth=_DEFAULT.max_json_depth, max_string=_DEFAULT.max_json_string)
    except (ValueError, TypeError) as exc:
        raise ModelFormatError(f"{path}: the manifest cannot be stored: {exc}") from None
    digest = hashlib.sha256(raw).digest()
    entries = [(MANIFEST, raw), (MANIFEST_HASH, digest.hex().encode() + b"\n")]
    if signing_key is not None:
        from . import signing

        entries.append((MANIFEST_SIG, boundedjson.canonical(signing.sign(digest, signing_key))))
    for key, arr in arrays.items():
        if not _key_ok(key):
            raise ModelFormatError(f"array name {key!r} is not a safe entry name")
        _dtype_name(np.asarray(arr).dtype)

    def fill(fh) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
            for name, data in entries:
                zf.writestr(_info(name, len(data)), data)
            for key, arr in arrays.items():
                arr = np.asarray(arr, order="C")
                head = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    head, np.lib.format.header_data_from_array_1_0(arr))
                info = _info(f"arrays/{key}.npy", head.tell() + arr.nbytes)
                with zf.open(info, "w") as out:
                    out.write(head.getvalue())
                    out.write(memoryview(arr.reshape(-1).view(np.uint8)))

    return atomic_write(path, fill)


def _info(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.file_size = size
    return info
