"""The functional API's graph helpers: ``concat``, ``add``, ``sub``, ``mul``, ``slice``,
``split`` (each adds a node to the graph of its input tensors)."""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from ..ir.graph import Tensor, node
from .concat import Concat
from .elementwise import Add, Div, Mul, Sub
from .slice import Slice
from .state import State

__all__ = ["concat", "add", "sub", "mul", "div", "slice", "split", "state"]


def concat(tensors, name: str | None = None) -> Tensor:
    """``[a; b; ...]`` along the features (no copy where a buffer can be shared)."""
    return node(Concat(), tuple(tensors), name)


def _binary(cls, a, b, name):
    if isinstance(b, Tensor):
        return node(cls(), (a, b), name)
    return node(cls(np.asarray(b, np.float32)), (a,), name)


def add(a: Tensor, b, name: str | None = None) -> Tensor:
    """``a + b``; ``b`` a tensor of the same size, a float or a float32[n] constant."""
    return _binary(Add, a, b, name)


def sub(a: Tensor, b, name: str | None = None) -> Tensor:
    """``a - b``; ``b`` a tensor of the same size, a float or a float32[n] constant."""
    return _binary(Sub, a, b, name)


def mul(a: Tensor, b, name: str | None = None) -> Tensor:
    """``a * b``; ``b`` a tensor of the same size, a float or a float32[n] constant."""
    return _binary(Mul, a, b, name)


def div(a: Tensor, b, name: str | None = None) -> Tensor:
    """``a / b``; ``b`` a tensor of the same size, a float or a float32[n] constant."""
    return _binary(Div, a, b, name)


def slice(t: Tensor, start: int, stop: int, name: str | None = None) -> Tensor:  # noqa: A001
    """Features ``start:stop`` of ``t`` (a view: no copy)."""
    return node(Slice(start, stop), (t,), name)


def split(t: Tensor, sizes, names=None) -> tuple:
    """``t`` cut into consecutive parts of the given sizes (views: no copy)."""
    sizes = [int(s) for s in sizes]
    if sum(sizes) != t.size or min(sizes, default=0) < 1:
        raise ModelFormatError(f"split: sizes {sizes} do not add up to the tensor's "
                               f"size {t.size}")
    names = list(names) if names is not None else [None] * len(sizes)
    out, start = [], 0
    for n, nm in zip(sizes, names, strict=True):
        out.append(slice(t, start, start + n, nm))
        start += n
    return tuple(out)


def state(size: int, name: str | None = None) -> Tensor:
    """A tensor carried from step to step: its previous value (see
    :class:`edgernn.State`; the model gives its update, ``Model(..., updates=)``)."""
    return node(State(size), (), name)
