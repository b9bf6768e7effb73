"""Unary: elementwise math on one tensor (ONNX ``Abs``, ``Neg``, ``Sqrt``, ``Log``,
``Exp``, ``Reciprocal``, ``Pow`` by a constant, ``Clip``, ``Max``/``Min`` with a
constant, ``Erf``, ``Sign``, ``Floor``, ``Ceil``, ``Round``). Kernel:
:mod:`edgernn.kernels.unary`.

``erf`` is what torch's exact GELU exports to (``0.5 x (1 + erf(x / sqrt 2))``, the
rest plain Mul/Add); the rounding functions appear in exported quantise-dequantise
steps and hand-written feature code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ModelFormatError
from ..kernels import optable as T
from ..kernels.spec import unary as K
from .base import Op, Schema
from .registry import register

#: function name -> (kernel code, number of parameters it takes)
FUNCS = {"abs": (K.ABS, 0), "neg": (K.NEG, 0), "sqrt": (K.SQRT, 0), "log": (K.LOG, 0),
         "exp": (K.EXP, 0), "reciprocal": (K.RECIPROCAL, 0), "square": (K.SQUARE, 0),
         "pow": (K.POW, 1), "clip": (K.CLIP, 2), "max": (K.MAX, 1), "min": (K.MIN, 1),
         "erf": (K.ERF, 0), "sign": (K.SIGN, 0), "floor": (K.FLOOR, 0), "ceil": (K.CEIL, 0),
         "round": (K.ROUND, 0)}


@register
@dataclass(frozen=True, eq=False)
class Unary(Op):
    """``y = func(x)`` elementwise, float32 (as numpy computes it).

    Parameters
    ----------
    func : str
        ``abs``, ``neg``, ``sqrt``, ``log``, ``exp``, ``reciprocal``, ``square``;
        ``pow`` (``x ** alpha``), ``clip`` (``min(max(x, alpha), beta)``), ``max``
        (``max(x, alpha)``) or ``min`` (``min(x, alpha)``); ``erf`` (the error
        function), ``sign`` (-1, 0 or 1; nan stays nan), ``floor``, ``ceil`` or
        ``round`` (to the nearest integer, halves to even, as ONNX ``Round``).
    alpha, beta : float
        The constants of ``pow``, ``clip``, ``max`` and ``min`` (0 for the others).
    """

    func: str
    alpha: float = 0.0
    beta: float = 0.0
    schema = {"func": Schema.STR, "alpha": Schema.FLOAT, "beta": Schema.FLOAT}
    kernel = "unary:unary_kernel"

    def __post_init__(self):
        if self.func not in FUNCS:
            raise ModelFormatError(f"Unary.func: expected one of {sorted(FUNCS)}, "
                                   f"got {self.func!r}")
        for k in ("alpha", "beta"):
            v = getattr(self, k)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ModelFormatError(f"Unary.{k}: expected a number, got {v!r}") from None
            if not math.isfinite(v) or abs(v) >= 1e30:
                raise ModelFormatError(f"Unary.{k}: expected a finite number, got {v!r}")
            object.__setattr__(self, k, v)
        if self.func == "clip" and not self.alpha <= self.beta:
            raise ModelFormatError(f"Unary clip: expected alpha (min) <= beta (max), got "
                                   f"{self.alpha} > {self.beta}")

    def output_size_for(self, sizes):
        (n,) = sizes
        return n

    def pack(self, pk, row, state) -> None:
        row[T.FUNC] = FUNCS[self.func][0]
        row[T.PAR] = pk.f32([self.alpha, self.beta])
