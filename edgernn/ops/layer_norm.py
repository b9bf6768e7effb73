"""LayerNorm over the last axis (``torch.nn.LayerNorm(n)``, ONNX ``LayerNormalization``,
DTLN's instant layer norm). Kernel and equations: :mod:`edgernn.kernels.layer_norm`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ModelFormatError
from ..kernels import optable as T
from ..kernels.spec import layer_norm as K
from .base import Op, Schema, opt_f32_array, set_count
from .registry import register


@register
@dataclass(frozen=True, eq=False)
class LayerNorm(Op):
    """Normalise each row of a tensor seen as ``(rows, normalized_size)``.

    Parameters
    ----------
    normalized_size : int
    weight, bias : float32[normalized_size] or None (gamma and beta: 1 and 0)
    eps : float, default 1e-5 (DTLN: 1e-7)
    """

    normalized_size: int
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    eps: float = 1e-5
    _arrays = ("weight", "bias")
    kernel = "layer_norm:layer_norm_kernel"
    schema = {"normalized_size": Schema.INT, "eps": Schema.FLOAT}

    def __post_init__(self):
        set_count(self, "normalized_size")
        for k in ("weight", "bias"):
            object.__setattr__(self, k, opt_f32_array(k, getattr(self, k), (self.normalized_size,),
                                                      owner="LayerNorm"))
        eps = float(self.eps)
        if not (math.isfinite(eps) and eps >= 0):
            raise ModelFormatError(f"LayerNorm.eps: expected a finite number >= 0, "
                                   f"got {self.eps!r}")
        object.__setattr__(self, "eps", eps)

    def output_size_for(self, sizes):
        (n,) = sizes
        if n % self.normalized_size:
            raise ModelFormatError(f"LayerNorm over {self.normalized_size} values: the input "
                                   f"size {n} is not a multiple of it")
        return n

    def pack(self, pk, row, state) -> None:
        row[T.WOFF] = -1 if self.weight is None else pk.f32(self.weight)
        row[T.BOFF] = -1 if self.bias is None else pk.f32(self.bias)
        row[T.PAR] = pk.f32([self.eps])
        row[K.NORM] = self.normalized_size
