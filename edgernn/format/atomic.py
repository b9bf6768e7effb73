"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

The data goes to a temporary file in the destination's directory, which is
flushed to disk (``fsync``) and renamed over the destination; the directory is
synced too. On any failure the temporary file is removed and the destination is
untouched; an ``OSError`` is re-raised naming the destination, not the
temporary file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # portable fallback (not thread-safe, hence second choice)
    os.umask(old)
    return old


def _sync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, fill) -> Path:
    """Write ``path`` atomically; ``fill(fh)`` writes the content to a binary file object.

    The new file gets the mode of the file it replaces, else ``0o666 & ~umask``.

    Parameters
    ----------
    path : str or Path
        The final destination. Its directory must exist.
    fill : callable(file) -> None

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        Naming ``path`` (IsADirectoryError when it is a directory).
    Anything ``fill`` raises, after the temporary file is removed.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a directory", str(path))
    directory = path.parent if str(path.parent) else Path(".")
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot write: {exc.strerror}", str(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None:
            raise type(exc)(exc.errno, f"cannot write: {exc.strerror}", str(path)) from None
        raise
    _sync_dir(directory)
    return path
