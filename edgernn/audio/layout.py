"""What the front end (:mod:`edgernn.audio.frontend`, no numba) and its compiled code
(:mod:`edgernn.audio.stft`, :mod:`edgernn.audio.fft`) share: the FFT's tables, the
layout of a C entry's context and the native image's item names.

FFT tables: ``rev`` int64[m] is the bit-reversal permutation of the size-``m`` complex
transform; ``cos_t``/``sin_t`` float64[m] hold ``cos(2 pi k / n)`` and
``sin(2 pi k / n)`` for ``k < m`` (``n = 2 m``).
"""

from __future__ import annotations

import numpy as np


def make_tables(n: int):
    """Bit-reversal and twiddle tables for real transforms of size ``n`` (a power of 2)."""
    if n < 4 or n & (n - 1):
        raise ValueError(f"FFT size must be a power of two >= 4, got {n!r}")
    m = n // 2
    bits = m.bit_length() - 1
    rev = np.array([int(f"{i:0{bits}b}"[::-1], 2) if bits else 0 for i in range(m)], np.int64)
    k = np.arange(m)
    return rev, np.cos(2 * np.pi * k / n), np.sin(2 * np.pi * k / n)


#: int64 slots of a C entry's context: the addresses of the workspace, the int64 and
#: float64 tables and ``dims``, then the synthesis floor (a float64's bits)
CTX = 5
#: the native image's items of the front end's C entries
ANALYZE, SYNTHESIZE = "audio.stft:analyze_c", "audio.stft:synthesize_c"
