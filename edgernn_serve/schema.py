"""Validating the daemon's TOML: the error type, a table reader, shared value checks.

Every source and sink kind writes its options' schema with :class:`Table`
(``t.take(key, type, default, check, expect)``); :mod:`edgernn_serve.config`
reads the file and hands each table to the schema of its kind.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from edgernn.errors import EdgeRNNError

#: the longest name (device, sink, stream) that reaches a topic, a file name or a label
MAX_NAME = 128
MAX_STRING = 4096  # any other string option


class ConfigError(EdgeRNNError, ValueError):
    """The configuration file is missing, unreadable or invalid (names the key)."""

    def naming(self, path) -> ConfigError:
        """This error with its message prefixed by the config file ``path`` (once)."""
        return self if str(self).startswith(str(path)) else type(self)(f"{path}: {self}")


def name_problem(s, what: str = "name") -> str | None:
    """Why ``s`` cannot be a name in an MQTT topic, a file name or a metric label, or None.

    A name is a non-empty string of at most :data:`MAX_NAME` characters, encodable
    as UTF-8 (no lone surrogates), without control characters (NUL included), the
    MQTT wildcards ``+`` and ``#``, or ``/``.
    """
    if not isinstance(s, str) or s == "":
        return f"expected a non-empty {what}"
    if len(s) > MAX_NAME:
        return f"expected a {what} of at most {MAX_NAME} characters, got {len(s)}"
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return f"expected a {what} in UTF-8, got a lone surrogate"
    for ch in s:
        if ch in "+#/" or unicodedata.category(ch) in ("Cc", "Cs"):
            return f"expected a {what} without '+', '#', '/' or control characters, got {ch!r}"
    return None


def one_of(options):
    """``(check, expect)`` for :meth:`Table.take`: one of ``options``."""
    return lambda v: v in options, " or ".join(repr(o) for o in options)


def parse_hostport(text: str) -> tuple | None:
    """``"host:port"`` (``"[::1]:9108"``) -> (host, port), or None if malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        return None
    return host.strip("[]"), int(port)


# sounddevice's device and latency arguments
DEVICE = (lambda v: v != "" and not isinstance(v, bool),
          "a device name (or part of it) or number")
LATENCY = (lambda v: v in ("low", "high") if isinstance(v, str)
           else not isinstance(v, bool) and 0 < v <= 10, "'low', 'high' or seconds (0 to 10)")


class ConfigFile:
    """The file being validated: its path, the error format, relative paths."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key, expected, got) -> ConfigError:
        text = repr(got)
        if len(text) > 80:
            text = text[:60] + f"... ({len(text)} characters)"
        return ConfigError(f"{self.path}: {key}: expected {expected}, got {text}")

    def fail(self, key, msg: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {msg}")

    def resolve(self, p: str) -> Path:
        q = Path(os.path.expanduser(p))
        return q if q.is_absolute() else (self.path.parent / q)


class Table:
    """A TOML table being validated: ``take`` each key, then ``done`` refuses the rest."""

    def __init__(self, data, where: str, cfg: ConfigFile):
        if not isinstance(data, dict):
            raise cfg.error(where.rstrip("."), "a table", data)
        self.data, self.where, self.cfg, self.seen = data, where, cfg, set()

    def take(self, key, kind, default=..., check=None, expect=None):
        self.seen.add(key)
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "required key is missing")
            return default
        val = self.data[key]
        ok = isinstance(val, kind) and not (isinstance(val, bool) and kind in (int, float))
        if kind is float and isinstance(val, int) and not isinstance(val, bool):
            val, ok = float(val), True
        if ok and isinstance(val, str) and len(val) > MAX_STRING:
            ok = False
            expect = f"{expect or 'a string'} of at most {MAX_STRING} characters"
        if not ok or (check is not None and not check(val)):
            name = expect or {str: "a string", int: "an integer", float: "a number",
                              bool: "true or false", list: "an array"}.get(kind, str(kind))
            raise self.cfg.error(f"{self.where}{key}", name, val)
        return val

    def name(self, key, default=...):
        """A name that may reach an MQTT topic, a file name or a metric label."""
        val = self.take(key, str, default)
        why = None if val is default else name_problem(val)
        if why:
            raise self.fail(key, why + (f" in {val!r}" if why.endswith("'") else ""))
        return val

    def path(self, key, default=...):
        val = self.take(key, str, default, lambda s: s != "" and "\0" not in s,
                        "a non-empty path")
        return val if val is None or val is default else self.cfg.resolve(val)

    def fail(self, key, msg: str) -> ConfigError:
        return self.cfg.fail(f"{self.where}{key}", msg)

    def done(self):
        extra = sorted(set(self.data) - self.seen)
        if extra:
            raise self.fail(extra[0], f"unknown key (expected one of "
                                      f"{', '.join(sorted(self.seen))})")
