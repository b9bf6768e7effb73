"""The ``.ernn`` model file: a zip of ``manifest.json`` and ``.npy`` arrays.

Layout (entries stored uncompressed)::

    manifest.json               format, version, model sizes, layers, arrays, provenance
    arrays/<name>.npy           one array per weight, numpy format 1.0, no pickles

``manifest.json``::

    {"format": "edgernn", "format_version": "1.0",
     "producer": {"name": "edgernn", "version": "0.1.0"},
     "model": {"input_size": 16, "output_size": 4, "num_tokens": 0,
               "return_sequences": true, "initial_state": null | [["0.h", "<array>"], ...]},
     "layers": [{"type": "LSTM", "input_size": 16, "output_size": 32,
                 "config": {...}, "arrays": {"weight_ih": "0.weight_ih", ...}}, ...],
     "arrays": {"0.weight_ih": {"shape": [128, 16], "dtype": "float32",
                                "sha256": "<hex of the raw C-order bytes>"}, ...},
     "provenance": {"source": "onnx", "source_sha256": "...", ...},
     "quantization": null}

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
from .wrappers import layer_from_config

FORMAT = "edgernn"
FORMAT_VERSION = (1, 0)
MAX_MANIFEST_BYTES = 4 << 20
MAX_ARRAY_BYTES = 1 << 31
_DTYPES = {"float32": np.dtype("<f4"), "int8": np.dtype("i1"), "int32": np.dtype("<i4")}


def _version() -> str:
    from . import __version__

    return __version__


def _layer_entry(i, layer, arrays):
    from .activations import Activation

    if isinstance(layer, Activation):
        return {"type": "Activation", "config": layer.to_config(), "arrays": {}}
    names = {}
    for field_name, arr in layer.arrays().items():
        key = f"{i}.{field_name}"
        arrays[key] = arr
        names[field_name] = key
    return {"type": type(layer).__name__, "input_size": int(layer.input_size),
            "output_size": int(layer.output_size), "config": layer.config(), "arrays": names}


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` (conventionally ``*.ernn``); see module docstring."""
    arrays: dict[str, np.ndarray] = {}
    layers = [_layer_entry(i, layer, arrays) for i, layer in enumerate(model.layers)]
    meta = {}
    for key, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        meta[key] = {"shape": list(arr.shape), "dtype": arr.dtype.name,
                     "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    init = None
    if model.initial_state is not None:
        init = []
        for name, arr in zip(model.initial_state.names, model.initial_state.arrays, strict=True):
            key = f"initial_state.{name}"
            arrays[key] = np.ascontiguousarray(arr, dtype=np.float32)
            init.append([name, key])
        meta.update({k: {"shape": list(arrays[k].shape), "dtype": "float32",
                         "sha256": hashlib.sha256(arrays[k].tobytes()).hexdigest()}
                     for _, k in init})
    manifest = {
        "format": FORMAT,
        "format_version": f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}",
        "producer": {"name": "edgernn", "version": _version()},
        "model": {"input_size": model.input_size, "output_size": model.output_size,
                  "num_tokens": model.num_tokens,
                  "return_sequences": model.return_sequences, "initial_state": init},
        "layers": layers,
        "arrays": meta,
        "provenance": model.provenance,
        "quantization": None,
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
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
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
    layers = _need(man, "layers", list, path)
    if not layers:
        raise _fail(path, "manifest lists no layers")
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
    from .model import Model

    with _open(path) as zf:
        man = _manifest(zf, path)
        listed = {f"arrays/{k}.npy" for k in man["arrays"]} | {"manifest.json"}
        extra = sorted(set(zf.namelist()) - listed)
        if extra:
            raise _fail(path, f"unexpected entries in the archive: {extra[:5]}")
        arrays = {k: _read_array(zf, k, meta, path) for k, meta in man["arrays"].items()}
    used = set()
    layers = []
    for i, entry in enumerate(man["layers"]):
        where = f"layers[{i}]"
        kind = _need(entry, "type", str, path, where)
        config = _need(entry, "config", dict, path, where)
        refs = _need(entry, "arrays", dict, path, where)
        mine = {}
        for field_name, key in refs.items():
            if not isinstance(key, str) or key not in arrays:
                raise _fail(path, f"{where}.arrays[{field_name!r}] names unknown array {key!r}")
            mine[field_name] = arrays[key]
            used.add(key)
        try:
            layer = layer_from_config(kind, config, mine)
        except ModelFormatError as exc:
            raise _fail(path, f"{where}: {exc}") from exc
        for attr in ("input_size", "output_size"):
            if attr in entry and getattr(layer, attr, entry[attr]) != entry[attr]:
                raise _fail(path, f"{where}.{attr}: manifest says {entry[attr]!r}, the weights "
                                  f"give {getattr(layer, attr)}")
        layers.append(layer)
    mdl = man["model"]
    init = mdl.get("initial_state")
    state = None
    if init is not None:
        if not isinstance(init, list) or not all(
                isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and p[1] in arrays
                for p in init):
            raise _fail(path, "model.initial_state: expected a list of [state name, array name] "
                              "naming stored arrays")
        from .stream import StreamState

        state = StreamState(tuple(p[0] for p in init), tuple(arrays[p[1]] for p in init))
        used.update(p[1] for p in init)
    seqs = mdl.get("return_sequences", True)
    if not isinstance(seqs, bool):
        raise _fail(path, f"model.return_sequences: expected true/false, got {seqs!r}")
    unused = sorted(set(arrays) - used)
    if unused:
        raise _fail(path, f"arrays not used by any layer: {unused[:5]}")
    try:
        model = Model(layers, provenance=man.get("provenance"), return_sequences=seqs,
                      initial_state=state)
    except ModelFormatError as exc:
        raise _fail(path, str(exc)) from exc
    got = (model.input_size, model.output_size, model.num_tokens)
    want = (mdl["input_size"], mdl["output_size"], mdl["num_tokens"])
    if got != want:
        raise _fail(path, f"model sizes (input, output, tokens): manifest says {want}, "
                          f"the layers give {got}")
    model.manifest = man
    return model
