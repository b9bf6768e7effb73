"""Shared pieces of the command lines: one-line argument errors, checked numbers, safe outputs.

Every subcommand (``edgernn``, ``edgernn convert``, ``edgernn bridge``) parses
with :class:`Parser`: a bad value is one line on stderr and exit status 2;
only an unknown flag also prints the usage. Outputs go through
:func:`output_path` (never an input of the command; an existing file only with
``--force``) and are written atomically (:func:`edgernn.format.atomic.atomic_write`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import EdgeRNNError
from ..format.atomic import atomic_write

__all__ = ["Parser", "int_range", "float_range", "output_path", "report_path", "write_npy",
           "write_json", "os_error_line"]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors; the usage only for unknown arguments."""

    def error(self, message: str):
        if message.startswith("unrecognized arguments"):
            self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def int_range(lo: int, hi: int | None = None):
    """An argparse ``type`` accepting integers in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lo or (hi is not None and value > hi):
            span = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise argparse.ArgumentTypeError(f"expected an integer {span}, got {text!r}")
        return value
    return parse


def float_range(lo: float, hi: float | None = None, lo_open: bool = False):
    """An argparse ``type`` accepting finite numbers > lo (``lo_open``) or >= lo, <= hi."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and (
            hi is None or value <= hi)
        if not ok:
            span = f"{'>' if lo_open else '>='} {lo:g}" + ("" if hi is None else f", <= {hi:g}")
            raise argparse.ArgumentTypeError(f"expected a number {span}, got {text!r}")
        return value
    return parse


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def output_path(path, inputs=(), force: bool = False, suffix: str | None = None) -> Path:
    """The final path an output will be written to, after checking it is safe.

    Parameters
    ----------
    path : str or Path          as given by the user
    inputs : paths              files the command reads; the output may not be one of them
    force : bool                allow replacing an existing (non-input) file
    suffix : str, optional      appended when ``path`` lacks it (``.npy``), as numpy does

    Raises
    ------
    EdgeRNNError
        Naming the final path: it is an input, a directory, exists (without
        ``force``), is not a regular file (even with ``force``), or its directory
        does not exist.
    """
    out = Path(path)
    if suffix and out.suffix != suffix:
        out = out.with_name(out.name + suffix)
    for src in inputs:
        if src is not None and (_same(out, Path(src)) or out.resolve() == Path(src).resolve()):
            raise EdgeRNNError(f"{out}: is also an input of this command; refusing to "
                               f"overwrite it")
    if out.is_dir():
        raise EdgeRNNError(f"{out}: is a directory; expected a file to write")
    if not out.resolve().parent.is_dir():
        raise EdgeRNNError(f"{out}: the directory {str(out.parent)!r} does not exist")
    if out.exists() and not force:
        raise EdgeRNNError(f"{out}: exists; pass --force to replace it")
    if (out.exists() or out.is_symlink()) and not out.is_file():
        # even with --force: replacing would put a regular file where a device node, a
        # FIFO or a socket was (as root, -o /dev/null --force would replace /dev/null)
        raise EdgeRNNError(f"{out}: is not a regular file (a device, FIFO or socket); "
                           f"refusing to replace it, even with --force")
    return out


def report_path(path) -> Path | None:
    """Check up front that a report (``--json``) can be written at ``path``."""
    if path is None:
        return None
    out = Path(path)
    if out.is_dir():
        raise EdgeRNNError(f"{out}: is a directory; expected a file to write")
    if not out.resolve().parent.is_dir():
        raise EdgeRNNError(f"{out}: the directory {str(out.parent)!r} does not exist")
    return out


def write_npy(path: Path, arr: np.ndarray) -> Path:
    """Save ``arr`` as ``.npy`` at exactly ``path``, atomically."""
    return atomic_write(path, lambda fh: np.lib.format.write_array(fh, np.asarray(arr),
                                                                   allow_pickle=False))


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON at ``path``, atomically."""
    data = (json.dumps(obj, indent=1, default=float) + "\n").encode()
    return atomic_write(path, lambda fh: fh.write(data))


def os_error_line(exc: OSError) -> str:
    """``'<file>: <reason>'`` for an OSError, without the errno noise."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason
