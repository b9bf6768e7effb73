"""Reduce: mean, sum, max, min, L2 norm or sum of squares over one axis of a tensor seen
as ``(rows, cols)``. Kernel and equations: :mod:`edgernn.kernels.reduce`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelFormatError
from ..kernels import optable as T
from ..kernels.spec import reduce as K
from .base import Op, Schema, set_count
from .registry import register

FUNCS = {"mean": K.MEAN, "sum": K.SUM, "max": K.MAX, "min": K.MIN, "l2": K.L2,
         "sum_square": K.SUM_SQUARE, "mean_litert": K.MEAN_LITERT}


@register
@dataclass(frozen=True, eq=False)
class Reduce(Op):
    """``func`` over ``axis`` of the input seen as ``(rows, cols)``.

    Parameters
    ----------
    func : "mean", "sum", "max", "min", "l2", "sum_square" or "mean_litert" (the mean as
        LiteRT's builtin ``MEAN`` computes it: a float32 sum in order, then ``/ n``)
    cols : int     the length of the last axis (the input size is ``rows * cols``)
    axis : -1 (each row to one value: ``rows`` outputs) or 0 (each column: ``cols``)
    """

    func: str
    cols: int
    axis: int = -1
    schema = {"func": Schema.STR, "cols": Schema.INT, "axis": Schema.INT_SIGNED}
    kernel = "reduce:reduce_kernel"

    def __post_init__(self):
        if self.func not in FUNCS:
            raise ModelFormatError(f"Reduce.func: expected one of {sorted(FUNCS)}, got "
                                   f"{self.func!r}")
        set_count(self, "cols")
        if self.axis not in (-1, 0, 1):
            raise ModelFormatError(f"Reduce.axis: expected -1 (the last) or 0, got "
                                   f"{self.axis!r}")
        object.__setattr__(self, "axis", -1 if self.axis == 1 else self.axis)

    def output_size_for(self, sizes):
        (n,) = sizes
        if n % self.cols:
            raise ModelFormatError(f"Reduce: input size {n} is not a multiple of cols "
                                   f"{self.cols}")
        return n // self.cols if self.axis == -1 else self.cols

    def pack(self, pk, row, state) -> None:
        row[T.FUNC] = FUNCS[self.func]
        row[K.COLS], row[K.LAST] = self.cols, int(self.axis == -1)
