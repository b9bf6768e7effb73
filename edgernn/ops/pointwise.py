"""Pointwise: elementwise functions of one tensor that :class:`~edgernn.ops.unary.Unary`
and the activations cannot express (ONNX ``Erf``, ``Sign``, ``Floor``, ``Ceil``,
``Round``). Kernel and equations: :mod:`edgernn.kernels.pointwise`.

``Erf`` is what torch's exact GELU exports to (``0.5 x (1 + erf(x / sqrt 2))``,
the rest of it plain Mul/Add); the rounding functions appear in exported
quantise-dequantise steps and hand-written feature code.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelFormatError
from ..kernels import optable as T
from ..kernels import pointwise as K
from .base import Op, Schema
from .registry import register

#: function name -> kernel code
FUNCS = {"erf": K.ERF, "sign": K.SIGN, "floor": K.FLOOR, "ceil": K.CEIL, "round": K.ROUND}


@register
@dataclass(frozen=True, eq=False)
class Pointwise(Op):
    """``y = func(x)`` elementwise, float32.

    Parameters
    ----------
    func : str
        ``erf`` (the error function), ``sign`` (-1, 0 or 1; nan stays nan),
        ``floor``, ``ceil`` or ``round`` (to the nearest integer, halves to even,
        as ONNX ``Round`` and ``numpy.round``).
    """

    func: str
    schema = {"func": Schema.STR}
    kernel = "pointwise:pointwise_kernel"

    def __post_init__(self):
        if self.func not in FUNCS:
            raise ModelFormatError(f"Pointwise.func: expected one of {sorted(FUNCS)}, "
                                   f"got {self.func!r}")

    def output_size_for(self, sizes):
        (n,) = sizes
        return n

    def pack(self, pk, row, state) -> None:
        row[T.FUNC] = FUNCS[self.func]
