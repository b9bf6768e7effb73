"""JSON from untrusted files, with every dimension bounded; and its canonical form.

:func:`loads` parses UTF-8 bytes and refuses, with :class:`JSONLimitError`
naming where: more than ``max_bytes`` of text, a byte-order mark, invalid UTF-8,
nesting deeper than ``max_depth``, an integer outside int64 (checked on its
digits, before Python converts a 5000-digit literal), a non-finite or
over-long float, ``NaN``/``Infinity``, a string or key longer than
``max_string`` characters, and a key repeated in one object (``json`` would
silently keep the last one).

:func:`canonical` is the one serialisation edgernn writes and hashes: keys
sorted, no whitespace, ASCII only, no NaN. ``canonical(loads(b)) == b`` for
every manifest of format 2 edgernn wrote (format 1 files carry no hash).
"""

from __future__ import annotations

import json
import math

__all__ = ["JSONLimitError", "loads", "canonical"]

INT64 = 1 << 63


class JSONLimitError(ValueError):
    """The text is not JSON, or exceeds one of the bounds."""


def _parse_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > 19:
        raise JSONLimitError(f"an integer of {digits} digits (at most 19, int64)")
    value = int(text)
    if not -INT64 <= value < INT64:
        raise JSONLimitError(f"integer {value} is outside int64")
    return value


def _parse_float(text: str) -> float:
    if len(text) > 40:
        raise JSONLimitError(f"a number written with {len(text)} characters (at most 40)")
    value = float(text)
    if not math.isfinite(value):
        raise JSONLimitError(f"number {text} overflows a float64")
    return value


def _parse_constant(text: str):
    raise JSONLimitError(f"{text} is not allowed (JSON has no non-finite numbers)")


def _pairs(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONLimitError(f"key {key!r} appears twice in one object")
            seen.add(key)
    return out


def _where(path: tuple) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _check_tree(obj, max_depth: int, max_string: int) -> None:
    stack = [(obj, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > max_depth:
            raise JSONLimitError(f"nesting deeper than {max_depth} levels at "
                                 f"{_where(path[:max_depth])}...")
        if isinstance(node, str):
            if len(node) > max_string:
                raise JSONLimitError(f"a string of {len(node)} characters at {_where(path)} "
                                     f"(at most {max_string})")
        elif isinstance(node, dict):
            for key, value in node.items():
                if len(key) > max_string:
                    raise JSONLimitError(f"a key of {len(key)} characters at {_where(path)} "
                                         f"(at most {max_string})")
                stack.append((value, path + (key,)))
        elif isinstance(node, list):
            stack.extend((value, path + (i,)) for i, value in enumerate(node))


def loads(raw: bytes, *, max_bytes: int = 4 << 20, max_depth: int = 32,
          max_string: int = 1 << 16):
    """Parse ``raw`` (UTF-8 JSON) within the bounds; see the module docstring.

    Returns
    -------
    dict, list, str, int, float, bool or None

    Raises
    ------
    JSONLimitError
        Naming the first problem and, for bounds, where in the document it is.
    """
    if len(raw) > max_bytes:
        raise JSONLimitError(f"{len(raw)} bytes, more than the {max_bytes} allowed")
    if raw[:3] == b"\xef\xbb\xbf":
        raise JSONLimitError("starts with a byte-order mark")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONLimitError(f"not UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") \
            from None
    try:
        obj = json.loads(text, object_pairs_hook=_pairs, parse_int=_parse_int,
                         parse_float=_parse_float, parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise JSONLimitError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise JSONLimitError(f"nesting deeper than {max_depth} levels") from None
    _check_tree(obj, max_depth, max_string)
    return obj


def canonical(obj) -> bytes:
    """The canonical bytes of ``obj``: sorted keys, no whitespace, ASCII, finite numbers only.

    Raises
    ------
    ValueError
        On NaN or infinity; TypeError on values JSON cannot hold.
    """
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=True,
                      allow_nan=False).encode("ascii")
