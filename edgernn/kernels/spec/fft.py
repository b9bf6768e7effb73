"""Columns and tables of :mod:`edgernn.kernels.fft` (module docstring there)."""

import numpy as np

from ..optable import C0

#: op-specific columns: the transform size n, the tables' offsets, the radix count
NFFT, REV, TWID, MIXED = C0 + 5, C0 + 6, C0 + 7, C0 + 8


def radices(m: int) -> list | None:
    """The Stockham radices of a complex FFT of size ``m`` (4s first, then 2, 3, 5); []
    for a power of two (radix 2 in place); None when ``m`` has a prime factor above 5."""
    if m & (m - 1) == 0:
        return []
    out = []
    for p in (4, 2, 3, 5):
        while m % p == 0:
            out.append(p)
            m //= p
    return out if m == 1 else None


def tables(n: int):
    """``(ints int64[...], twiddles float64[2n])`` for size ``n`` (module docstring)."""
    m = n // 2
    rad = radices(m)
    if rad:
        ints = np.array([len(rad), *rad], np.int64)
    else:
        bits = m.bit_length() - 1
        ints = np.array([int(f"{i:0{bits}b}"[::-1], 2) if bits else 0 for i in range(m)],
                        np.int64)
    k = np.arange(n)
    return ints, np.concatenate([np.cos(2 * np.pi * k / n), np.sin(2 * np.pi * k / n)])
