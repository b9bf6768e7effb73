"""Where compiled code is cached, and the hash that says it is fresh (no numba here).

Shared by numba's cache locator (:mod:`edgernn.kernels.cache`) and the native
image (:mod:`edgernn.kernels.native`), which a warm start reads without
importing numba. Folder: ``$EDGERNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgernn``,
else ``~/.cache/edgernn``; inside it, one folder per runtime source hash.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]  # the edgernn package
_state: dict = {}


def source_hash() -> str:
    """SHA-256 (hex) over the runtime sources compiled into the engine (``kernels/`` with
    its ``spec/``, ``audio/``, ``engine/loop.py``) and the int8 code path when it is
    forced (see :mod:`edgernn.kernels.tile_i8`)."""
    if "hash" not in _state:
        digest = hashlib.sha256()
        files = sorted((PKG / "kernels").rglob("*.py")) + sorted((PKG / "audio").glob("*.py")) \
            + [PKG / "engine" / "loop.py"]
        for p in files:
            digest.update(p.relative_to(PKG).as_posix().encode() + b"\0" + p.read_bytes())
        digest.update(os.environ.get("EDGERNN_INT8_PATH", "").encode())  # forced int8 path
        _state["hash"] = digest.hexdigest()
    return _state["hash"]


def default_dir() -> Path:
    """The cache root chosen from the environment (it may not exist yet)."""
    env = os.environ.get("EDGERNN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "edgernn"


def engine_dir(root: Path | None = None) -> Path:
    """The folder of this source hash's compiled code under ``root`` (default:
    :func:`default_dir`)."""
    return (default_dir() if root is None else root) / f"engine-{source_hash()[:16]}"
