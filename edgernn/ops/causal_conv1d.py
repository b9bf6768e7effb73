"""CausalConv1d: a convolution over time that keeps its last inputs as state.

Kernel and equations: :mod:`edgernn.kernels.causal_conv1d`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFormatError
from ..kernels import optable as T
from ..kernels.spec import causal_conv1d as K
from .activation import Activation, activation_field
from .base import (
    Op,
    Schema,
    check_quant,
    opt_f32_array,
    pad8,
    quant_scratch,
    set_count,
    weight_field,
)
from .registry import register


@register
@dataclass(frozen=True, eq=False)
class CausalConv1d(Op):
    """``torch.nn.Conv1d`` over time, causal: each step sees its input and the
    ``(kernel_size - 1) * dilation`` inputs before it (zeros after a reset).

    Parameters
    ----------
    weight : float32[out_channels, in_channels / groups, kernel_size] (torch layout)
    bias : float32[out_channels] or None
    dilation : int, default 1
    groups : int, default 1
    activation : str or Activation, default "linear"
    quant : edgernn.QuantParams or None
        int8 ``weight`` (per output channel scales): the step's window of ``kernel_size``
        frames is the product's input, quantised as one vector (``input_*`` when static)
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    dilation: int = 1
    groups: int = 1
    activation: Activation | str | None = "linear"
    quant: object = None
    _arrays = ("weight", "bias")
    quantizable = ("weight",)
    kernel = "causal_conv1d:causal_conv1d_kernel"
    schema = {"dilation": Schema.INT, "groups": Schema.INT, "activation": Schema.ACT,
              "quant": Schema.QUANT}

    def __post_init__(self):
        for k in ("dilation", "groups"):
            set_count(self, k)
        check_quant(self)
        w = weight_field(self, "weight")
        if w.ndim != 3 or 0 in w.shape:
            raise ModelFormatError(f"CausalConv1d.weight: expected a non-empty 3-D "
                                   f"[out_channels, in_channels/groups, kernel_size] array, got "
                                   f"shape {w.shape}")
        if w.shape[0] % self.groups:
            raise ModelFormatError(f"CausalConv1d: out_channels {w.shape[0]} is not a multiple "
                                   f"of groups {self.groups}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", opt_f32_array("bias", self.bias, (w.shape[0],),
                                                       owner="CausalConv1d"))
        object.__setattr__(self, "activation", activation_field("CausalConv1d.activation",
                                                                self.activation))

    out_channels = property(lambda self: self.weight.shape[0])
    in_channels = property(lambda self: self.weight.shape[1] * self.groups)
    kernel_size = property(lambda self: self.weight.shape[2])
    input_size = in_channels
    output_size = out_channels

    def history(self) -> int:
        """Past input frames kept as state."""
        return (self.kernel_size - 1) * self.dilation

    def state_vectors(self):
        n = self.history() * self.in_channels
        return (("history", n),) if n else ()

    def macs(self) -> int:
        return self.weight.size

    def matrix_cols(self, name: str) -> int:
        """Columns of the product's matrix (:meth:`dense_weight`): K * C_in."""
        shape = np.shape(self.weight)
        return shape[2] * shape[1] * self.groups if len(shape) == 3 else 0

    def dense_weight(self) -> np.ndarray:
        """``W2[o, j * C_in + c] = weight[o, c, j]`` (zero across groups):
        [C_out, K * C_in], float32 or, quantised, int8."""
        co, cig, k = self.weight.shape
        ci, g = self.in_channels, self.groups
        w2 = np.zeros((co, k, ci), self.weight.dtype)
        per = co // g
        for gi in range(g):
            rows = slice(gi * per, (gi + 1) * per)
            w2[rows, :, gi * cig:(gi + 1) * cig] = self.weight[rows].transpose(0, 2, 1)
        return w2.reshape(co, k * ci)

    def scratch_floats(self) -> int:   # the output, the window, int8 scratch
        cols = self.matrix_cols("weight")
        return pad8(self.out_channels) + cols + quant_scratch(self, cols, self.out_channels)

    def pack(self, pk, row, state) -> None:
        if self.quant is None:
            row[T.WOFF] = pk.panels(self.dense_weight())
        else:
            row[T.QM0] = pk.qmatrix(self.dense_weight(), self.quant.scales["weight"])
            row[T.QPAR] = pk.qparams(self.quant)
            row[T.QBUF] = row[T.SCR] + pad8(self.out_channels) + self.matrix_cols("weight")
        row[T.BOFF] = -1 if self.bias is None else pk.f32(self.bias, pad8(self.out_channels))
        row[T.ACT_CODE] = pk.act(self.activation)
        row[T.PAR] = pk.f32([self.activation.alpha, self.activation.beta])
        row[K.HIST] = state.get("history", -1)
        row[K.KSIZE], row[K.DIL] = self.kernel_size, self.dilation
