"""Add, Sub, Mul, Div: elementwise on two tensors of one size (or one of size 1, which
broadcasts), or a tensor and a constant.

Kernel: :mod:`edgernn.kernels.elementwise`. A constant (float32 of shape ``()``
or ``[n]``) is the second operand: ``a - c``, ``a * c``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFormatError
from ..kernels import optable as T
from ..kernels.spec.elementwise import ADD, DIV, MUL, SUB
from .base import Op, f32_array
from .registry import register


@dataclass(frozen=True, eq=False)
class _Binary(Op):
    constant: np.ndarray | None = None
    _arrays = ("constant",)
    kernel = "elementwise:binary_kernel"
    func = ADD

    def __post_init__(self):
        if self.constant is not None:
            c = f32_array("constant", self.constant, None, owner=type(self).__name__)
            if c.ndim > 1 or c.size == 0:
                raise ModelFormatError(f"{type(self).__name__}.constant: expected a scalar or "
                                       f"a 1-D array, got shape {c.shape}")
            object.__setattr__(self, "constant", c)

    @property
    def arity(self):
        return 2 if self.constant is None else 1

    def output_size_for(self, sizes):
        name = type(self).__name__
        if len(sizes) != self.arity:
            raise ModelFormatError(f"{name} takes {self.arity} tensor(s), got {len(sizes)}")
        n = max(sizes)
        if any(s not in (1, n) for s in sizes):
            raise ModelFormatError(f"{name}: operand sizes differ: {list(sizes)} (only one "
                                   f"value per step broadcasts)")
        if self.constant is not None and self.constant.ndim == 1 and self.constant.size != n:
            raise ModelFormatError(f"{name}: constant has {self.constant.size} values, the "
                                   f"tensor {n}")
        return n

    def pack(self, pk, row, state) -> None:
        row[T.FUNC] = self.func
        if self.constant is None:
            row[T.CONST] = -1
        else:
            row[T.CONST] = pk.f32(np.broadcast_to(self.constant, (int(row[T.NO]),)))


@register
@dataclass(frozen=True, eq=False)
class Add(_Binary):
    """``y = a + b`` (or ``a + constant``)."""

    func = ADD


@register
@dataclass(frozen=True, eq=False)
class Sub(_Binary):
    """``y = a - b`` (or ``a - constant``)."""

    func = SUB


@register
@dataclass(frozen=True, eq=False)
class Mul(_Binary):
    """``y = a * b`` (or ``a * constant``)."""

    func = MUL


@register
@dataclass(frozen=True, eq=False)
class Div(_Binary):
    """``y = a / b`` (or ``a / constant``), IEEE: ``x / 0`` is inf or nan."""

    func = DIV
