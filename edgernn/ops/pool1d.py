"""Pool1d: max or average pooling within a step, over a tensor seen as (channels, length)
(ONNX ``MaxPool`` / ``AveragePool`` on ``[1, C, L]``, ``torch.nn.MaxPool1d`` /
``AvgPool1d``). Kernel and equations: :mod:`edgernn.kernels.pool1d`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelFormatError
from ..kernels import optable as T
from ..kernels.spec import pool1d as K
from .base import Op, Schema, set_count
from .registry import register

FUNCS = {"max": K.MAX, "avg": K.AVG}


@register
@dataclass(frozen=True, eq=False)
class Pool1d(Op):
    """``func`` over windows of each channel's length; output ``[channels, out_length]``.

    Parameters
    ----------
    func : "max" or "avg"
    channels, length : int   the input is ``channels * length`` values, row-major
    kernel_size : int
    stride, dilation : int, default 1
    padding : (int, int)     positions before and after the length that windows may cover:
        ignored by ``max``; by ``avg`` counted as zeros when ``count_include_pad``, else
        left out of the count
    count_include_pad : bool, default False
    """

    func: str
    channels: int
    length: int
    kernel_size: int
    stride: int = 1
    dilation: int = 1
    padding: tuple = (0, 0)
    count_include_pad: bool = False
    kernel = "pool1d:pool1d_kernel"
    schema = {"func": Schema.STR, "channels": Schema.INT, "length": Schema.INT,
              "kernel_size": Schema.INT, "stride": Schema.INT, "dilation": Schema.INT,
              "padding": Schema.INTS, "count_include_pad": Schema.BOOL}

    def __post_init__(self):
        if self.func not in FUNCS:
            raise ModelFormatError(f"Pool1d.func: expected one of {sorted(FUNCS)}, got "
                                   f"{self.func!r}")
        for k in ("channels", "length", "kernel_size", "stride", "dilation"):
            set_count(self, k)
        pad = tuple(int(p) for p in self.padding)
        if len(pad) != 2 or min(pad) < 0 or max(pad) >= self.span:
            raise ModelFormatError(f"Pool1d.padding: expected two integers in 0..{self.span - 1}"
                                   f" (less than the window's span), got {self.padding!r}")
        object.__setattr__(self, "padding", pad)
        object.__setattr__(self, "count_include_pad", bool(self.count_include_pad))
        if self.out_length < 1:
            raise ModelFormatError(f"Pool1d: an input of length {self.length} with padding "
                                   f"{pad} is shorter than the window's span {self.span}")

    span = property(lambda self: self.dilation * (self.kernel_size - 1) + 1)

    @property
    def out_length(self) -> int:
        return (self.length + sum(self.padding) - self.span) // self.stride + 1

    def output_size_for(self, sizes):
        (n,) = sizes
        if n != self.channels * self.length:
            raise ModelFormatError(f"Pool1d over {self.channels} x {self.length} values: the "
                                   f"input has {n}")
        return self.channels * self.out_length

    def pack(self, pk, row, state) -> None:
        row[T.FUNC] = FUNCS[self.func]
        row[K.LIN], row[K.KSIZE], row[K.STRIDE] = self.length, self.kernel_size, self.stride
        row[K.DIL], row[K.PADB], row[K.CH] = self.dilation, self.padding[0], self.channels
        row[K.LOUT], row[K.INCL] = self.out_length, int(self.count_include_pad)
