"""The ``.ernn`` model file: a zip of ``manifest.json`` and ``.npy`` arrays.

Layout (entries stored uncompressed)::

    manifest.json               format, version, model, graph, arrays, provenance
    manifest.sha256             SHA-256 of manifest.json (canonical JSON), format 2.0 on
    manifest.sig                optional Ed25519 signature of that hash
    arrays/<name>.npy           one array per weight, numpy format 1.0, no pickles

``manifest.json`` (format 2.0; the model and graph entries are described in
:mod:`edgernn.format.manifest`; files of format 1.0, written by edgernn 0.1, load too)::

    {"format": "edgernn", "format_version": "2.0",
     "producer": {"name": "edgernn", "version": "0.2.0"},
     "model": {...}, "graph": {...}, "quantization": null | {...},
     "arrays": {"gru1.weight_ih": {"shape": [72, 24], "dtype": "float32",
                                   "sha256": "<hex of the raw C-order bytes>"}, ...},
     "provenance": {"source": "onnx", "source_sha256": "...", ...}}

The container is :mod:`edgernn.format.archive`: entries stored, the zip directory
checked whole and the total size capped before any read, the manifest covered
by ``manifest.sha256`` (required from format 2.0 on) and optionally signed
(``manifest.sig``, Ed25519), parsed with bounded depth, numbers and strings,
each array read once straight into its final array and its SHA-256 checked.
The manifest's top-level fields are checked against :mod:`edgernn.format.schema`
(types, ranges, no unknown keys, no coercion); each op's ``config`` by its
registry entry. Loading never unpickles. Any problem raises
:class:`edgernn.ModelFormatError` naming the file and the field or entry. A file
whose major format version is newer than :data:`FORMAT_VERSION` is refused
with both versions named.
"""

from __future__ import annotations

import re

from ..errors import ModelFormatError
from . import archive, schema
from .manifest import from_manifest, to_manifest

FORMAT = "edgernn"
#: the newest version this runtime reads; it writes 2.0 unless the model has state
#: updates (2.1), so that files without them stay readable by edgernn 0.2.0
FORMAT_VERSION = (2, 1)


def _version() -> str:
    from ..version import __version__

    return __version__


def save_model(model, path, signing_key=None) -> None:
    """Write ``model`` to ``path`` (conventionally ``*.ernn``) atomically; see module docstring.

    ``signing_key``: an Ed25519 private key (PEM bytes, raw 32 bytes, a path or a
    ``cryptography`` key; the ``sign`` extra) to sign the manifest with.
    """
    content, arrays = to_manifest(model)
    manifest = {
        "format": FORMAT,
        "format_version": "2.1" if content["graph"].get("updates") or "audio" in content
        else "2.0",
        "producer": {"name": "edgernn", "version": _version()},
        **content,
        "arrays": {key: archive.array_meta(arr) for key, arr in arrays.items()},
        "provenance": model.provenance,
    }
    archive.write(path, manifest, arrays, signing_key=signing_key)


def _fail(path, msg) -> ModelFormatError:
    return ModelFormatError(f"{path}: {msg}")


def _check(man: dict, path, hash_stored: bool) -> int:
    """Check the format, version and top-level schema of ``man``; return the major version."""
    if man.get("format") != FORMAT:
        raise _fail(path, f"manifest format: expected {FORMAT!r}, got {man.get('format')!r:.60}")
    ver = man.get("format_version")
    if not isinstance(ver, str) or not re.fullmatch(r"[0-9]{1,4}\.[0-9]{1,4}", ver):
        raise _fail(path, f"format_version: expected 'MAJOR.MINOR', got {ver!r:.60}")
    major, minor = (int(p) for p in ver.split("."))
    if major > FORMAT_VERSION[0]:
        raise _fail(path, f"file format version {ver} is newer than this edgernn supports "
                          f"({FORMAT_VERSION[0]}.x); upgrade edgernn to load it")
    if major < 1:
        raise _fail(path, f"file format version {ver} is not supported")
    if major >= 2 and not hash_stored:
        raise _fail(path, f"format {ver} file without manifest.sha256 (its manifest is not "
                          f"covered by a hash)")
    try:
        schema.check(schema.MANIFEST_V1 if major == 1 else schema.MANIFEST_V2, man)
    except ModelFormatError as exc:
        newer = (major, minor) > FORMAT_VERSION
        hint = (f" (the file is format {ver}, newer than the {FORMAT_VERSION[0]}."
                f"{FORMAT_VERSION[1]} this edgernn reads; upgrade edgernn)") if newer else ""
        raise _fail(path, f"{exc}{hint}") from None
    return major


def read_manifest(path, require_signature: bool = False, public_key=None) -> dict:
    """The checked manifest of an ``.ernn`` file, without reading its arrays."""
    with archive.Archive(path) as ar:
        man = ar.read_manifest(require_signature=require_signature, public_key=public_key)
        _check(man, path, ar.hash_stored)
    return man


def read(path, require_signature: bool = False, public_key=None, limits=None):
    """Read and check an ``.ernn`` file: ``(manifest, model keyword arguments, info)``,
    with ``info`` = ``(manifest_sha256, hash_stored, signature, signed_by)``.

    Every check of :func:`edgernn.load` on the file itself happens here (see there
    for the parameters); building the :class:`edgernn.Model` is the caller's.
    """
    with archive.Archive(path, limits) as ar:
        man = ar.read_manifest(require_signature=require_signature, public_key=public_key)
        major = _check(man, path, ar.hash_stored)
        arrays = ar.read_arrays(man["arrays"])
        info = (ar.manifest_sha256, ar.hash_stored, ar.signature, ar.signed_by)
    try:
        kwargs = from_manifest(man, arrays, major)
    except ModelFormatError as exc:
        raise _fail(path, str(exc)) from exc
    return man, kwargs, info


def fail(path, exc: ModelFormatError) -> ModelFormatError:
    """``exc`` with the file named (for errors found after :func:`read`)."""
    return _fail(path, str(exc))
