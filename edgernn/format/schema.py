"""A small strict schema checker, and the top-level manifest schemas of formats 1.0 and 2.0.

Schemas are plain objects (:class:`Int`, :class:`Float`, :class:`Str`,
:class:`Bool`, :class:`Null`, :class:`List`, :class:`Map`, :class:`Obj`,
:class:`Any`, :func:`either`). :func:`check` walks a parsed manifest and raises
:class:`~edgernn.ModelFormatError` at the first field whose type or range is
wrong, naming the field (``manifest.model.input_size: expected an integer in
[0, 2147483648], got 'three'``). Nothing is coerced: ``"false"`` is not a
boolean, ``true`` is not an integer, ``1.0`` is not an integer (an integer is
accepted where a float is expected). An :class:`Obj` refuses keys it does not
list. Per-op ``config`` objects are left to the op registry (``Map(Any())``
here).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..errors import ModelFormatError

__all__ = ["Int", "Float", "Str", "Bool", "Null", "List", "Map", "Obj", "Any", "either",
           "check", "MANIFEST_V1", "MANIFEST_V2"]


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Int:
    lo: int = -(1 << 63)
    hi: int = (1 << 63) - 1

    def check(self, v, where):
        if type(v) is not int or not self.lo <= v <= self.hi:
            raise ModelFormatError(f"{where}: expected an integer in [{self.lo}, {self.hi}], "
                                   f"got {_show(v)}")


@dataclass(frozen=True)
class Float:
    lo: float = -math.inf
    hi: float = math.inf

    def check(self, v, where):
        if type(v) not in (int, float) or not math.isfinite(v) or not self.lo <= v <= self.hi:
            raise ModelFormatError(f"{where}: expected a finite number in [{self.lo}, {self.hi}]"
                                   f", got {_show(v)}")


@dataclass(frozen=True)
class Str:
    max_len: int = 4096
    pattern: str | None = None
    choices: tuple = ()

    def check(self, v, where):
        if type(v) is not str or len(v) > self.max_len:
            raise ModelFormatError(f"{where}: expected a string of at most {self.max_len} "
                                   f"characters, got {_show(v)}")
        if self.choices and v not in self.choices:
            raise ModelFormatError(f"{where}: expected one of {list(self.choices)}, got "
                                   f"{_show(v)}")
        if self.pattern and not re.fullmatch(self.pattern, v):
            raise ModelFormatError(f"{where}: expected a string matching {self.pattern!r}, got "
                                   f"{_show(v)}")


@dataclass(frozen=True)
class Bool:
    def check(self, v, where):
        if type(v) is not bool:
            raise ModelFormatError(f"{where}: expected true or false, got {_show(v)}")


@dataclass(frozen=True)
class Null:
    def check(self, v, where):
        if v is not None:
            raise ModelFormatError(f"{where}: expected null, got {_show(v)}")


@dataclass(frozen=True)
class Any:
    """Any JSON value (already bounded by :mod:`edgernn.format.boundedjson`)."""

    def check(self, v, where):
        return None


@dataclass(frozen=True)
class List:
    item: object
    min_len: int = 0
    max_len: int = 100_000

    def check(self, v, where):
        if type(v) is not list or not self.min_len <= len(v) <= self.max_len:
            raise ModelFormatError(f"{where}: expected a list of {self.min_len} to "
                                   f"{self.max_len} items, got {_show(v)}")
        for i, item in enumerate(v):
            self.item.check(item, f"{where}[{i}]")


@dataclass(frozen=True)
class Map:
    """An object with free keys (matching ``key``) and values of one schema."""

    value: object
    key: Str = Str(200)
    max_len: int = 100_000

    def check(self, v, where):
        if type(v) is not dict or len(v) > self.max_len:
            raise ModelFormatError(f"{where}: expected an object, got {_show(v)}")
        for k, item in v.items():
            self.key.check(k, f"{where} key")
            self.value.check(item, f"{where}[{k!r}]")


@dataclass(frozen=True)
class Obj:
    """An object with exactly these keys: ``required`` ones and ``optional`` ones."""

    required: dict = field(default_factory=dict)
    optional: dict = field(default_factory=dict)

    def check(self, v, where):
        if type(v) is not dict:
            raise ModelFormatError(f"{where}: expected an object, got {_show(v)}")
        missing = [k for k in self.required if k not in v]
        if missing:
            raise ModelFormatError(f"{where} lacks {missing[0]!r}")
        unknown = sorted(k for k in v if k not in self.required and k not in self.optional)
        if unknown:
            raise ModelFormatError(f"{where}: unknown key {unknown[0]!r}; expected keys "
                                   f"{sorted(self.required) + sorted(self.optional)}")
        for k, item in v.items():
            (self.required.get(k) or self.optional[k]).check(item, f"{where}.{k}")


@dataclass(frozen=True)
class _Either:
    options: tuple

    def check(self, v, where):
        errors = []
        for option in self.options:
            try:
                option.check(v, where)
                return
            except ModelFormatError as exc:
                msg = str(exc)
                errors.append(msg[len(where) + 2:] if msg.startswith(f"{where}: ") else msg)
        raise ModelFormatError(f"{where}: {'; or '.join(errors)}")


def either(*options) -> _Either:
    """A value matching any one of ``options`` (e.g. ``either(Null(), Str())``)."""
    return _Either(tuple(options))


def check(schema, value, where: str = "manifest") -> None:
    """Raise ModelFormatError naming the first field of ``value`` that ``schema`` refuses."""
    schema.check(value, where)


SIZE = Int(0, 1 << 31)
_ARRAY = Obj({"shape": List(SIZE, 0, 8),
              "dtype": Str(16, choices=("float32", "int8", "int16", "int32")),
              "sha256": Str(64, pattern=r"[0-9a-f]{64}")})
_LAYER = Obj({"type": Str(64, pattern=r"[A-Za-z][A-Za-z0-9_]*"), "config": Map(Any()),
              "arrays": Map(Str(200))},
             {"input_size": SIZE, "output_size": SIZE})

#: what edgernn 0.1.0 writes (format 1.0); ``initial_state`` pairs are [state name, array]
MANIFEST_V1 = Obj({
    "format": Str(16, choices=("edgernn",)),
    "format_version": Str(16, pattern=r"1\.[0-9]{1,4}"),
    "producer": Obj({"name": Str(200), "version": Str(200)}),
    "model": Obj({"input_size": SIZE, "output_size": SIZE, "num_tokens": SIZE},
                 {"return_sequences": Bool(),
                  "initial_state": either(Null(), List(List(Str(200), 2, 2), 1, 10_000))}),
    "layers": List(_LAYER, 1, 10_000),
    "arrays": Map(_ARRAY),
}, {
    "provenance": Map(Any()),
    "quantization": Null(),
})

MAX_NODES = 4096
_NAME = Str(200)
_MODEL = Obj({"input_size": SIZE, "output_size": SIZE, "num_tokens": SIZE,
              "return_sequences": Bool(),
              "initial_state": either(Null(), List(List(_NAME, 2, 2), 1, 10_000))})
_NODE = Obj({"name": _NAME, "type": _LAYER.required["type"], "inputs": List(_NAME, 0, MAX_NODES),
             "size": SIZE, "config": Map(Any()), "arrays": Map(_NAME)})

#: what edgernn 0.2 writes (format 2.x): a graph of named tensors (:mod:`edgernn.format.manifest`);
#: 2.1 adds the state updates (``graph.updates``) and nodes without inputs (State)
MANIFEST_V2 = Obj({
    "format": MANIFEST_V1.required["format"],
    "format_version": Str(16, pattern=r"2\.[0-9]{1,4}"),
    "producer": MANIFEST_V1.required["producer"],
    "model": _MODEL,
    "graph": Obj({"inputs": List(Obj({"name": _NAME, "size": Int(1, (1 << 31) - 1)}), 1,
                                 MAX_NODES),
                  "nodes": List(_NODE, 0, MAX_NODES),
                  "outputs": List(_NAME, 1, MAX_NODES)},
                 {"updates": List(Obj({"state": _NAME, "value": _NAME}), 0, MAX_NODES)}),
    "quantization": either(Null(), Map(Any())),
    "arrays": Map(_ARRAY),
    "provenance": Map(Any()),
}, {"audio": Map(Any())})  # 2.1: how the model meets sound (edgernn.model.AUDIO)
