"""Pad: the last axis of a tensor seen as ``(rows, cols)`` padded before and after.

Kernel and equations: :mod:`edgernn.kernels.pad`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ModelFormatError
from ..kernels import optable as T
from ..kernels.spec import pad as K
from .base import Op, Schema, set_count
from .registry import register

MODES = {"constant": K.CONSTANT, "reflect": K.REFLECT, "edge": K.EDGE}


@register
@dataclass(frozen=True, eq=False)
class Pad(Op):
    """Padding of the last axis.

    Parameters
    ----------
    cols : int                      the last axis' length (input size ``rows * cols``)
    before, after : int             values added before and after each row; negative:
                                    values removed there (a crop, as ONNX's negative pads)
    mode : "constant", "reflect" or "edge"
    value : float                   the constant (mode "constant")
    """

    cols: int
    before: int = 0
    after: int = 0
    mode: str = "constant"
    value: float = 0.0
    schema = {"cols": Schema.INT, "before": Schema.INT, "after": Schema.INT,
              "mode": Schema.STR, "value": Schema.FLOAT}
    kernel = "pad:pad_kernel"

    def __post_init__(self):
        set_count(self, "cols", 1)
        for k in ("before", "after"):
            set_count(self, k, -self.cols)
        if self.before + self.cols + self.after < 1:
            raise ModelFormatError(f"Pad: {self.before}, {self.after} leave nothing of an axis "
                                   f"of {self.cols}")
        if self.mode not in MODES:
            raise ModelFormatError(f"Pad.mode: expected one of {sorted(MODES)}, got "
                                   f"{self.mode!r}")
        kept = self.cols + min(self.before, 0) + min(self.after, 0)
        if self.mode == "reflect" and max(self.before, self.after) >= kept:
            raise ModelFormatError(f"Pad reflect: padding {self.before}, {self.after} must be "
                                   f"shorter than the axis ({kept} of {self.cols} kept)")
        if not math.isfinite(float(self.value)):
            raise ModelFormatError(f"Pad.value: expected a finite number, got {self.value!r}")
        object.__setattr__(self, "value", float(self.value))

    def output_size_for(self, sizes):
        (n,) = sizes
        if n % self.cols:
            raise ModelFormatError(f"Pad: input size {n} is not a multiple of cols {self.cols}")
        return n // self.cols * (self.before + self.cols + self.after)

    def pack(self, pk, row, state) -> None:
        row[T.FUNC] = MODES[self.mode]
        row[T.PAR] = pk.f32([self.value])
        row[K.COLS], row[K.BEFORE], row[K.AFTER] = self.cols, self.before, self.after
