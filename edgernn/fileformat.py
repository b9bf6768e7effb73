"""The ``.ernn`` model file: a zip of ``manifest.json`` and ``.npy`` arrays.

Layout (entries stored uncompressed)::

    manifest.json               format, version, model, graph, arrays, provenance
    arrays/<name>.npy           one array per weight, numpy format 1.0, no pickles

``manifest.json`` (format 2.0; the model and graph entries are described in
:mod:`edgernn.manifest`; files of format 1.0, written by edgernn 0.1, load too)::

    {"format": "edgernn", "format_version": "2.0",
     "producer": {"name": "edgernn", "version": "0.2.0"},
     "model": {...}, "graph": {...}, "quantization": null | {...},
     "arrays": {"gru1.weight_ih": {"shape": [72, 24], "dtype": "float32",
                                   "sha256": "<hex of the raw C-order bytes>"}, ...},
     "provenance": {"source": "onnx", "source_sha256": "...", ...}}

Loading never unpickles. Before any array is read, the entry's size is checked
against the manifest's shape and dtype (so a tampered size cannot make it
allocate without bound); each array's SHA-256 is verified; every layer is
rebuilt and its sizes compared with the manifest. Any problem raises
:class:`edgernn.ModelFormatError` naming it. A file whose major format version
is newer than :data:`FORMAT_VERSION` is refused with both versions named.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelFormatError
from .manifest import from_manifest, to_manifest

FORMAT = "edgernn"
FORMAT_VERSION = (2, 0)
MAX_MANIFEST_BYTES = 4 << 20
MAX_ARRAY_BYTES = 1 << 31
_DTYPES = {"float32": np.dtype("<f4"), "int8": np.dtype("i1"), "int32": np.dtype("<i4")}


def _version() -> str:
    from . import __version__

    return __version__


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` (conventionally ``*.ernn``); see module docstring."""
    content, arrays = to_manifest(model)
    meta = {}
    for key, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        meta[key] = {"shape": list(arr.shape), "dtype": arr.dtype.name,
                     "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    manifest = {
        "format": FORMAT,
        "format_version": f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}",
        "producer": {"name": "edgernn", "version": _version()},
        **content,
        "arrays": meta,
        "provenance": model.provenance,
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), version=(1, 0),
                                      allow_pickle=False)
            zf.writestr(f"arrays/{key}.npy", buf.getvalue())
    tmp.replace(path)


def _fail(path, msg) -> ModelFormatError:
    return ModelFormatError(f"{path}: {msg}")


def _need(obj, key, kind, path, where="manifest"):
    if not isinstance(obj, dict) or key not in obj:
        raise _fail(path, f"{where} lacks {key!r}")
    val = obj[key]
    if not isinstance(val, kind) or (kind is int and isinstance(val, bool)):
        raise _fail(path, f"{where}[{key!r}]: expected {getattr(kind, '__name__', kind)}, "
                          f"got {type(val).__name__}")
    return val


def read_manifest(path) -> dict:
    """The validated manifest of an ``.ernn`` file, without reading its arrays."""
    with _open(path) as zf:
        return _manifest(zf, path)


def _open(path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path, "r")
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            NotImplementedError) as exc:
        raise _fail(path, f"not a readable .ernn file (a zip archive was expected): {exc}") \
            from exc


def _read_entry(zf, info, path, limit) -> bytes:
    if info.file_size > limit:
        raise _fail(path, f"entry {info.filename!r} is {info.file_size} bytes, more than "
                          f"the {limit} allowed")
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError,
            RuntimeError) as exc:
        raise _fail(path, f"entry {info.filename!r} is corrupt: {exc}") from exc
    if len(data) != info.file_size:
        raise _fail(path, f"entry {info.filename!r}: expected {info.file_size} bytes, "
                          f"read {len(data)}")
    return data


def _manifest(zf, path) -> dict:
    try:
        info = zf.getinfo("manifest.json")
    except KeyError:
        raise _fail(path, "no manifest.json in the archive") from None
    raw = _read_entry(zf, info, path, MAX_MANIFEST_BYTES)
    try:
        man = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail(path, f"manifest.json is not valid JSON: {exc}") from exc
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        got = man.get("format") if isinstance(man, dict) else type(man).__name__
        raise _fail(path, f"manifest format: expected {FORMAT!r}, got {got!r}")
    ver = _need(man, "format_version", str, path)
    try:
        major, minor = (int(p) for p in ver.split("."))
    except ValueError:
        raise _fail(path, f"format_version: expected 'MAJOR.MINOR', got {ver!r}") from None
    if major > FORMAT_VERSION[0]:
        raise _fail(path, f"file format version {ver} is newer than this edgernn supports "
                          f"({FORMAT_VERSION[0]}.x); upgrade edgernn to load it")
    if major < 1:
        raise _fail(path, f"file format version {ver} is not supported")
    mdl = _need(man, "model", dict, path)
    for key in ("input_size", "output_size", "num_tokens"):
        _need(mdl, key, int, path, "model")
    if major == 1:
        _need(man, "layers", list, path)
    else:
        _need(man, "graph", dict, path)
    arrays = _need(man, "arrays", dict, path)
    for key, meta in arrays.items():
        shape = _need(meta, "shape", list, path, f"arrays[{key!r}]")
        if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31
                   for d in shape) or len(shape) > 4:
            raise _fail(path, f"arrays[{key!r}].shape: expected up to 4 sizes, got {shape!r}")
        dt = _need(meta, "dtype", str, path, f"arrays[{key!r}]")
        if dt not in _DTYPES:
            raise _fail(path, f"arrays[{key!r}].dtype: expected one of {sorted(_DTYPES)}, "
                              f"got {dt!r}")
        _need(meta, "sha256", str, path, f"arrays[{key!r}]")
    prov = man.get("provenance", {})
    if not isinstance(prov, dict):
        raise _fail(path, f"provenance: expected an object, got {type(prov).__name__}")
    return man


def _read_array(zf, key, meta, path) -> np.ndarray:
    name = f"arrays/{key}.npy"
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise _fail(path, f"array {key!r} is listed in the manifest but {name!r} is "
                          f"missing") from None
    dtype = _DTYPES[meta["dtype"]]
    shape = tuple(meta["shape"])
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise _fail(path, f"array {key!r} of shape {shape} is too large")
    data = _read_entry(zf, info, path, nbytes + 4096)
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        if version != (1, 0):
            raise ValueError(f"npy version {version}, expected (1, 0)")
        hshape, fortran, hdtype = np.lib.format.read_array_header_1_0(buf)
    except Exception as exc:  # numpy's header parser raises tokenize/ast errors too
        raise _fail(path, f"array {key!r}: bad .npy header: {exc!r}") from exc
    if hdtype.hasobject or hdtype != dtype or fortran or tuple(hshape) != shape:
        raise _fail(path, f"array {key!r}: manifest says {dtype.name}{list(shape)}, "
                          f"the file holds {hdtype}{list(hshape)}"
                          f"{' (Fortran order)' if fortran else ''}")
    payload = data[buf.tell():]
    if len(payload) != nbytes:
        raise _fail(path, f"array {key!r}: expected {nbytes} data bytes, found {len(payload)}")
    digest = hashlib.sha256(payload).hexdigest()
    if digest != meta["sha256"]:
        raise _fail(path, f"array {key!r}: SHA-256 mismatch (manifest {meta['sha256'][:12]}..., "
                          f"data {digest[:12]}...): the file was altered or corrupted")
    return np.frombuffer(payload, dtype=dtype).reshape(shape).copy()


def load(path):
    """Load an ``.ernn`` file as an :class:`edgernn.Model`, validating everything.

    Raises
    ------
    ModelFormatError
        On any corrupt, truncated, tampered, inconsistent or newer-version file.
    FileNotFoundError
        When ``path`` does not exist.
    """

    with _open(path) as zf:
        man = _manifest(zf, path)
        listed = {f"arrays/{k}.npy" for k in man["arrays"]} | {"manifest.json"}
        extra = sorted(set(zf.namelist()) - listed)
        if extra:
            raise _fail(path, f"unexpected entries in the archive: {extra[:5]}")
        arrays = {k: _read_array(zf, k, meta, path) for k, meta in man["arrays"].items()}
    try:
        model = from_manifest(man, arrays, int(man["format_version"].split(".")[0]))
    except ModelFormatError as exc:
        raise _fail(path, str(exc)) from exc
    from . import engine

    engine.native()  # compiled (or loaded from the cache) before the first frame
    model.manifest = man
    return model
