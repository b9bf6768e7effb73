"""The one table of op kinds: the name in model files -> the op class.

An op kind is one module in :mod:`edgernn.ops` whose class is decorated with
:func:`register`, plus its kernel module in :mod:`edgernn.kernels`. Importing
:mod:`edgernn.ops` imports every module of the package, so a new file registers
itself: the class is then loadable from files, exported as ``edgernn.<Name>``,
listed by ``edgernn warmup`` (its ``kernels``) and packed by the engine. The
class is the whole entry: config schema and validation (``from_parts``), sizes
(``output_size_for``), state (``state_vectors``), scratch (``scratch_floats``)
and packing into the engine's arenas (``pack``). ``docs/engine.md`` has the recipe.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError

#: op kind name -> class, filled by :func:`register`
OPS: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: enter ``cls`` in :data:`OPS` under its class name."""
    name = cls.__name__
    if name in OPS and OPS[name] is not cls:
        raise TypeError(f"op kind {name!r} is registered twice ({OPS[name]!r}, {cls!r})")
    OPS[name] = cls
    return cls


def op_from_config(type_name: str, config: dict, arrays: dict[str, np.ndarray]):
    """Rebuild an op from its manifest entry; any inconsistency is a ModelFormatError."""
    cls = OPS.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ModelFormatError(f"unknown op type {type_name!r}; expected one of {sorted(OPS)}")
    try:
        return cls.from_parts(config, arrays)
    except ModelFormatError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ModelFormatError(f"invalid {type_name}: {exc}") from exc


def kernels() -> list[str]:
    """Every kernel ("module:function") any registered op kind may run."""
    out: list[str] = []
    for cls in OPS.values():
        out.extend(k for k in cls.kernels if k not in out)
    return out
