"""RFFT and IRFFT: a step's real frame to its spectrum ``[re | im]`` and back.

Kernels and conventions: :mod:`edgernn.kernels.fft`. With them a whole audio
pipeline (framing, transform, a mask, the inverse, overlap-add) runs inside one
model: frames in, frames out.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelFormatError
from ..kernels.spec import fft as K
from .base import Op, Schema
from .registry import register


@dataclass(frozen=True, eq=False)
class _Transform(Op):
    n_fft: int
    schema = {"n_fft": Schema.INT}

    def __post_init__(self):
        n = self.n_fft
        if isinstance(n, bool) or not isinstance(n, int) or n < 4 or n % 2 \
                or K.radices(n // 2) is None:
            raise ModelFormatError(f"{type(self).__name__}.n_fft: expected an even size >= 4 "
                                   f"whose half has no prime factor above 5 (a power of two, "
                                   f"320, 400, 480, ...), got {n!r}")

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def scratch_floats(self) -> int:
        # zr, zi: float64[n/2] each; a mixed-radix size also the Stockham buffer br, bi
        return (4 if K.radices(self.n_fft // 2) else 2) * self.n_fft

    def macs(self) -> int:
        return self.n_fft * (self.n_fft.bit_length() - 1)

    def pack(self, pk, row, state) -> None:
        ints, twiddles = K.tables(self.n_fft)
        row[K.NFFT], row[K.REV], row[K.TWID] = self.n_fft, pk.i64(ints), pk.f64(twiddles)
        row[K.MIXED] = len(K.radices(self.n_fft // 2))


@register
@dataclass(frozen=True, eq=False)
class RFFT(_Transform):
    """``[re | im]`` of ``numpy.fft.rfft(x)``: float32[n_fft] -> float32[2 (n_fft/2 + 1)]."""

    kernel = "fft:rfft_kernel"
    input_size = property(lambda self: self.n_fft)
    output_size = property(lambda self: 2 * self.bins)


@register
@dataclass(frozen=True, eq=False)
class IRFFT(_Transform):
    """``numpy.fft.irfft(re + i im, n_fft)`` of ``[re | im]``: float32[2 (n_fft/2 + 1)] ->
    float32[n_fft]."""

    kernel = "fft:irfft_kernel"
    input_size = property(lambda self: 2 * self.bins)
    output_size = property(lambda self: self.n_fft)
