"""The native image: compiled kernels and engine loaded from the cache without numba.

Whenever numba compiles a kernel or loads it from its cache, edgernn also writes
that kernel's object code (numba's own bytes, large code model) into the image
folder, ``<cache>/engine-<source hash>/native-<CPU key>/``: ``<item>.o`` and
``<item>.json`` (its symbol, machine, CPU key, source hash and SHA-256). A warm
process finds every item it needs there and loads them with
:mod:`edgernn.kernels.elfload`, so neither numba nor llvmlite is imported.

An item that is missing, written for another CPU or another source, or whose
bytes do not match their SHA-256 is not used: numba compiles (or loads) it as
before and writes it again. ``EDGERNN_NATIVE=0`` turns the image off (numba
always). Only x86-64 Linux uses it for now; elsewhere numba runs as before.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from pathlib import Path

from . import cachedir
from .elfload import NativeError, load

_state: dict = {"items": {}}
#: kernels every op kind shares, called through the op table's header (the op kinds'
#: own kernels are listed by :func:`edgernn.ops.registry.kernels`)
SHARED = ("linalg:matvec_kernel", "mathfn:act_kernel", "qlinalg:qmatvec_kernel")
#: the int8 matrix product, whose image item records the int8 code path it was built for
QMATVEC = "qlinalg:qmatvec_kernel"
#: the image item of numba's C helpers (:data:`edgernn.kernels.image.HELPERS`)
HELPERS = "entry:helpers"
MACHINES = ("x86_64",)
#: machines where the image is used only when asked for (``EDGERNN_NATIVE=1``)
OPT_IN = ("aarch64",)
_CPU_KEYS = ("vendor_id", "cpu family", "model", "model name", "flags",
             "CPU implementer", "CPU architecture", "CPU variant", "CPU part", "Features")


def enabled() -> bool:
    """Whether this process may use (and writes) the native image: on x86-64 Linux unless
    ``EDGERNN_NATIVE=0``; on AArch64 Linux only with ``EDGERNN_NATIVE=1`` (its loader
    is checked under QEMU only, not yet on a Pi)."""
    env = os.environ.get("EDGERNN_NATIVE", "")
    machine = os.uname().machine
    return env != "0" and sys.platform == "linux" and (
        machine in MACHINES or (env == "1" and machine in OPT_IN))


def cpu_key() -> str:
    """A short hash of what numba compiled for: the CPU's identity and feature flags
    (``/proc/cpuinfo``, first processor), numba's CPU overrides, the machine and the
    Python ABI."""
    if "cpu" not in _state:
        fields = {}
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if not line.strip():
                        if fields:
                            break
                        continue
                    key, _, value = line.partition(":")
                    if key.strip() in _CPU_KEYS:
                        fields[key.strip()] = value.strip()
        except OSError:
            pass
        parts = [os.uname().machine, sys.implementation.cache_tag,
                 os.environ.get("NUMBA_CPU_NAME", ""), os.environ.get("NUMBA_CPU_FEATURES", ""),
                 json.dumps(fields, sort_keys=True)]
        _state["cpu"] = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return _state["cpu"]


def use_folder(engine_dir: Path | None) -> None:
    """Read and write the image in ``engine_dir`` (the folder numba's cache uses in this
    process, :func:`edgernn.kernels.cache.configure`) rather than the default one."""
    _state["engine_dir"] = engine_dir


def image_dir(engine_dir: Path | None = None) -> Path:
    """The image folder inside ``engine_dir`` (default: the cache's folder of this source)."""
    engine_dir = engine_dir or _state.get("engine_dir") or cachedir.engine_dir()
    return engine_dir / f"native-{cpu_key()}"


def _file(name: str, ext: str, folder: Path) -> Path:
    return folder / (name.replace(":", ".") + ext)


def _read(name: str):
    """``(meta, object bytes)`` of item ``name`` when the image holds a fresh, intact copy
    for this CPU, else None."""
    folder = image_dir()
    try:
        meta = json.loads(_file(name, ".json", folder).read_text())
        data = _file(name, ".o", folder).read_bytes()
    except (OSError, ValueError):
        return None
    if isinstance(meta, dict) and meta.get("source") == cachedir.source_hash() \
            and meta.get("cpu") == cpu_key() and meta.get("name") == name \
            and meta.get("sha256") == hashlib.sha256(data).hexdigest():
        return meta, data
    return None


def _helpers() -> dict:
    """The symbols of the image's numba helpers (:data:`HELPERS`; {} when it lacks them)."""
    if "helpers" not in _state:
        found, syms = _read(HELPERS), {}
        if found:
            try:
                syms = load(found[1], HELPERS, {})
            except NativeError:
                syms = {}
        _state["helpers"] = syms
    return _state["helpers"]


def lookup(name: str, extra: dict | None = None, key: str | None = None) -> int | None:
    """Address of item ``name``'s entry symbol, loaded from the image; None when the
    image has no usable copy of it (then numba must provide it). ``key`` names this
    copy when one item is loaded more than once (with other ``extra`` symbols: the
    engine's Python wrapper around another C entry)."""
    key = key or name
    if key in _state["items"]:
        return _state["items"][key]
    addr = None
    found = _read(name) if enabled() else None
    if found:
        meta, data = found
        try:
            syms = load(data, name, {**_helpers(), **(extra or {})})
            addr = syms.get(meta.get("symbol"))
        except NativeError:
            addr = None
    if addr:
        _state["items"][key] = addr
    return addr


def save(name: str, data: bytes, symbol: str, folder: Path | None = None,
         extra: dict | None = None) -> None:
    """Write item ``name`` (object bytes ``data`` defining ``symbol``; ``extra`` goes into
    its JSON) into the image (best effort: a folder that cannot be written leaves the
    image without it)."""
    if not enabled():
        return
    folder = image_dir(folder)
    meta = {"name": name, "symbol": symbol, "machine": os.uname().machine, "cpu": cpu_key(),
            "source": cachedir.source_hash(), "sha256": hashlib.sha256(data).hexdigest(),
            **(extra or {})}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, payload in ((_file(name, ".o", folder), data),
                              (_file(name, ".json", folder), json.dumps(meta).encode())):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(payload)
            os.replace(tmp, path)
    except OSError:
        pass


def kernel_address(name: str) -> int:
    """Address of kernel ``"module:function"``: from the image when it holds it, else
    compiled or loaded by numba (:func:`edgernn.kernels.abi.kernel_address`), which also
    adds it to the image."""
    addr = lookup(name)
    if addr is None:
        addr = importlib.import_module("edgernn.kernels.abi").kernel_address(name)
    return addr


def int8_path() -> str:
    """The int8 code path (:func:`edgernn.kernels.tile_i8.path`) the int8 kernel runs in
    this process, which decides how its weights are packed: the one the image's int8
    kernel was compiled for, else numba's choice for this CPU (a bad forced
    ``EDGERNN_INT8_PATH`` raised as an :class:`EdgeRNNError`)."""
    if "int8" not in _state:
        found = _read(QMATVEC) if enabled() else None
        path = found[0].get("int8_path") if found else None
        if not isinstance(path, str):
            path = importlib.import_module("edgernn.kernels.tile_i8").checked_path()
        _state["int8"] = path
    return _state["int8"]
