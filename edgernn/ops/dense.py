"""Dense: ``y = act(weight @ x + bias)`` (``nn.Linear`` layout).

Kernel: :mod:`edgernn.kernels.dense`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFormatError
from ..kernels import optable as T
from .activation import Activation, activation_field
from .base import (
    Op,
    Schema,
    check_quant,
    opt_f32_array,
    pad8,
    quant_scratch,
    weight_field,
)
from .registry import register


@register
@dataclass(frozen=True, eq=False)
class Dense(Op):
    """Fully connected layer ``y = act(weight @ x + bias)``.

    Parameters
    ----------
    weight : float32[out_features, in_features]
    bias : float32[out_features] or None
    activation : str or Activation, default "linear"
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    activation: Activation | str | None = "linear"
    quant: object = None
    _arrays = ("weight", "bias")
    quantizable = ("weight",)
    kernel = "dense:dense_kernel"
    schema = {"activation": Schema.ACT, "quant": Schema.QUANT}

    def __post_init__(self):
        check_quant(self)
        w = weight_field(self, "weight")
        if w.ndim != 2 or 0 in w.shape:
            raise ModelFormatError(f"Dense.weight: expected a non-empty 2-D [out, in] array, "
                                   f"got shape {w.shape}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", opt_f32_array("bias", self.bias, (w.shape[0],),
                                                       owner="Dense"))
        object.__setattr__(self, "activation", activation_field("Dense.activation",
                                                                self.activation))

    input_size = property(lambda self: self.weight.shape[1])
    output_size = property(lambda self: self.weight.shape[0])

    def label(self) -> str:
        act = self.activation.name
        return "Dense" if act == "linear" else f"Dense({act})"

    def macs(self) -> int:
        return self.weight.size

    def scratch_floats(self) -> int:
        return pad8(self.output_size) + quant_scratch(self, self.input_size, self.output_size)

    def pack(self, pk, row, state) -> None:
        if self.quant is None:
            row[T.WOFF] = pk.panels(self.weight)
        else:
            row[T.QM0] = pk.qmatrix(self.weight, self.quant.scales["weight"])
            row[T.QPAR] = pk.qparams(self.quant)
            row[T.QBUF] = row[T.SCR] + pad8(self.output_size)
        row[T.BOFF] = -1 if self.bias is None else pk.f32(self.bias, pad8(self.output_size))
        row[T.ACT_CODE] = pk.act(self.activation)
        row[T.PAR] = pk.f32([self.activation.alpha, self.activation.beta])
