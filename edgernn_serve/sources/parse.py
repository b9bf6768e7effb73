"""One frame from a line or datagram, parsed defensively: never raises.

Formats (stdin, udp, unix sources):

- ``json``: one object per line / datagram: ``{"x": [...]}`` with optional
  ``"stream"`` (int or string; default: 0 for stdin, the sender for udp, the
  connection for unix), ``"seq"`` (int; gaps are checked) and ``"t"`` (int);
  ``{"stream": ..., "reset": true}`` resets a stream.
- ``text``: numbers separated by spaces or commas, one frame per line.
- ``f32`` (udp only): the datagram is little-endian float32 values.

Bounds: a JSON frame nests at most :data:`MAX_DEPTH` arrays or objects (a frame
needs 2), integers (``stream``, ``seq``, ``t``) fit in 64 bits, values of ``x``
are numbers (one too large for a float32 becomes infinity and is refused as
non-finite by the scheduler), a string ``stream`` is a valid name
(:func:`edgernn_serve.schema.name_problem`). Anything else is a bad frame,
counted by reason in ``bad``.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np

from edgernn_serve.items import Reset, Sample
from edgernn_serve.schema import name_problem

MAX_DEPTH = 8
_INT64 = 1 << 63
_OPEN = re.compile(rb"[\[{]")


def _too_deep(line: bytes) -> bool:
    """True if ``line`` may nest deeper than MAX_DEPTH (brackets counted, strings too:
    a false alarm needs more than MAX_DEPTH brackets inside strings, which no frame has)."""
    if len(_OPEN.findall(line, 0, 4096)) <= MAX_DEPTH and len(line) <= 4096:
        return False
    depth = 0
    for b in re.finditer(rb"[\[{\]}]", line):
        depth += 1 if b.group() in (b"[", b"{") else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _int64(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -_INT64 <= v < _INT64


def parse_line(line: bytes, fmt: str, default_key, origin, now: int, bad: Counter):
    """One Sample (or Reset) from a json/text line, or None (counted in ``bad``)."""
    try:
        return _parse(bytes(line), fmt, default_key, origin, now, bad)
    except Exception:  # noqa: BLE001 - a hostile frame is counted, never fatal
        bad["unparsable"] += 1
        return None


def _parse(line: bytes, fmt: str, default_key, origin, now: int, bad: Counter):
    if fmt == "text":
        try:
            x = np.array(line.replace(b",", b" ").split(), dtype=np.float32)
        except (ValueError, OverflowError):
            bad["text"] += 1
            return None
        if x.size == 0 or x.ndim != 1:
            return None
        return Sample(default_key, None, 0, x, origin, now)
    if _too_deep(line):
        bad["json_depth"] += 1
        return None
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        bad["json"] += 1
        return None
    if not isinstance(obj, dict):
        bad["json"] += 1
        return None
    key = obj.get("stream", default_key)
    seq, t = obj.get("seq"), obj.get("t", 0)
    if (not (_int64(key) or isinstance(key, str))
            or seq is not None and not _int64(seq) or not _int64(t)):
        bad["field"] += 1
        return None
    if isinstance(key, str) and name_problem(key, "stream name"):
        bad["stream_name"] += 1
        return None
    if obj.get("reset") is True:
        return Reset(key, origin)
    xs = obj.get("x")
    if not isinstance(xs, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs):
        bad["field"] += 1
        return None
    with np.errstate(over="ignore"):  # beyond float32: infinity, refused as non-finite
        x = np.array([_float(v) for v in xs], dtype=np.float64).astype(np.float32)
    return Sample(key, seq, t, x, origin, now)


def _float(v) -> float:
    try:
        return float(v)
    except OverflowError:  # an integer of hundreds of digits
        return float("inf") if v > 0 else float("-inf")
