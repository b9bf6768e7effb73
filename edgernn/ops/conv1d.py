"""Conv1d: a 1-D convolution within a step, over a tensor seen as (channels, length).

Kernel and equations: :mod:`edgernn.kernels.conv1d`. Zero padding only; reflect
padding is a :class:`edgernn.Pad` before it (as ONNX writes it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFormatError
from ..kernels import optable as T
from ..kernels.spec import conv1d as K
from ..kernels.spec.linalg import pack_panels
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
class Conv1d(Op):
    """ONNX ``Conv`` / ``torch.nn.Conv1d`` on one ``[in_channels, length]`` tensor per
    step (flat, row-major); the output is ``[out_channels, out_length]``, flat.

    Parameters
    ----------
    weight : float32[out_channels, in_channels / groups, kernel_size]
    bias : float32[out_channels] or None
    length : int            the input's length (its size is ``in_channels * length``)
    stride, dilation, groups : int, default 1
    padding : (int, int)    zeros before and after, default (0, 0)
    activation : str or Activation, default "linear"
    quant : edgernn.QuantParams or None
        int8 ``weight`` (one group only; per output channel scales): each output
        position's window is quantised on its own (``input_*`` when static)
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    length: int = 1
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    padding: tuple = (0, 0)
    activation: Activation | str | None = "linear"
    quant: object = None
    _arrays = ("weight", "bias")
    quantizable = ("weight",)
    kernels = ("conv1d:conv1d_kernel", "conv1d:conv1d_q_kernel")
    schema = {"length": Schema.INT, "stride": Schema.INT, "dilation": Schema.INT,
              "groups": Schema.INT, "padding": Schema.INTS, "activation": Schema.ACT,
              "quant": Schema.QUANT}

    def __post_init__(self):
        for k in ("length", "stride", "dilation", "groups"):
            set_count(self, k)
        check_quant(self)
        if self.quant is not None and self.groups != 1:
            raise ModelFormatError(f"Conv1d.quant: int8 weights need groups 1, got groups "
                                   f"{self.groups}; keep this op in float")
        w = weight_field(self, "weight")
        if w.ndim != 3 or 0 in w.shape:
            raise ModelFormatError(f"Conv1d.weight: expected a non-empty 3-D [out_channels, "
                                   f"in_channels/groups, kernel_size] array, got {w.shape}")
        pad = tuple(int(p) for p in self.padding)
        if len(pad) != 2 or min(pad) < 0:
            raise ModelFormatError(f"Conv1d.padding: expected two non-negative integers, got "
                                   f"{self.padding!r}")
        object.__setattr__(self, "padding", pad)
        if w.shape[0] % self.groups:
            raise ModelFormatError(f"Conv1d: out_channels {w.shape[0]} is not a multiple of "
                                   f"groups {self.groups}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", opt_f32_array("bias", self.bias, (w.shape[0],),
                                                       owner="Conv1d"))
        object.__setattr__(self, "activation", activation_field("Conv1d.activation",
                                                                self.activation))
        if self.out_length < 1:
            raise ModelFormatError(f"Conv1d: an input of length {self.length} with padding "
                                   f"{pad} is shorter than the kernel's span "
                                   f"{self.dilation * (self.kernel_size - 1) + 1}")

    out_channels = property(lambda self: self.weight.shape[0])
    in_channels = property(lambda self: self.weight.shape[1] * self.groups)
    kernel_size = property(lambda self: self.weight.shape[2])

    @property
    def out_length(self) -> int:
        span = self.dilation * (self.kernel_size - 1) + 1
        return (self.length + sum(self.padding) - span) // self.stride + 1

    input_size = property(lambda self: self.in_channels * self.length)
    output_size = property(lambda self: self.out_channels * self.out_length)

    @property
    def kernel(self) -> str:
        return "conv1d:conv1d_kernel" if self.quant is None else "conv1d:conv1d_q_kernel"

    def macs(self) -> int:
        return self.weight.size * self.out_length

    def matrix_cols(self, name: str) -> int:
        """Columns of a group's matrix: in_channels / groups * kernel_size."""
        shape = np.shape(self.weight)
        return shape[1] * shape[2] if len(shape) == 3 else 0

    def scratch_floats(self) -> int:   # every position's window, outputs (, int8 scratch)
        per, cols = self.out_channels // self.groups, self.matrix_cols("weight")
        return self.out_length * (pad8(per) + cols + quant_scratch(self, cols, per))

    def pack(self, pk, row, state) -> None:
        per = self.out_channels // self.groups
        if self.quant is None:
            row[T.WOFF] = pk.f32(np.concatenate([   # each group's panels, one after another
                pack_panels(self.weight[g * per:(g + 1) * per].reshape(per, -1))
                for g in range(self.groups)]))
        else:
            row[T.QM0] = pk.qmatrix(self.weight.reshape(per, -1), self.quant.scales["weight"])
            row[T.QPAR] = pk.qparams(self.quant)
        row[T.BOFF] = -1 if self.bias is None else pk.f32(self.bias)
        row[T.ACT_CODE] = pk.act(self.activation)
        row[T.PAR] = pk.f32([self.activation.alpha, self.activation.beta])
        row[K.LIN], row[K.KSIZE], row[K.STRIDE] = self.length, self.kernel_size, self.stride
        row[K.DIL], row[K.PADB], row[K.GROUPS] = self.dilation, self.padding[0], self.groups
        row[K.CIN], row[K.COUT] = self.in_channels, self.out_channels
        row[K.POS] = pk.i64(np.arange(self.out_length))
