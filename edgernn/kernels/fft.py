"""Real FFT of a step's samples, and its inverse (``torch.fft.rfft`` / ``irfft``; numpy's
conventions: ``X[k] = sum_t x[t] e^{-2 pi i k t / n}``, the inverse includes ``1/n``).

    RFFT:  x float32[n]                 -> [re float32[n/2+1] | im float32[n/2+1]]
    IRFFT: [re[n/2+1] | im[n/2+1]]      -> x float32[n]

``n`` a power of two. The real frame is packed into ``m = n/2`` complex values, an
iterative radix-2 complex FFT of size ``m`` runs in float64, and the halves are
untangled (the standard real-FFT split): about 1.2k butterflies for ``n = 512``.
Tables in the weight arena: the bit-reversal permutation int64[m] at REV, and
``cos(2 pi k / n)``, ``sin(2 pi k / n)`` float64[m] each, one after the other, at
TWID (int64/float64 element offsets). The complex scratch ``zr, zi`` float64[m]
each lies at SCR (float32 offset, 64-byte aligned).
"""

import numpy as np
from numba import njit

from .abi import flag_nonfinite, kernel, views, views64
from .cache import CACHE
from .mathfn import all_finite
from .optable import C0, NO, SCR, X, Y

#: op-specific columns: the transform size n, the tables' offsets
NFFT, REV, TWID = C0 + 5, C0 + 6, C0 + 7


def tables(n: int):
    """``(rev int64[m], twiddles float64[2m])`` for size ``n`` (a power of two >= 4)."""
    m = n // 2
    bits = m.bit_length() - 1
    rev = np.array([int(f"{i:0{bits}b}"[::-1], 2) if bits else 0 for i in range(m)], np.int64)
    k = np.arange(m)
    return rev, np.concatenate([np.cos(2 * np.pi * k / n), np.sin(2 * np.pi * k / n)])


@njit(cache=CACHE, error_model="numpy", inline="always")
def _cfft(Z, zr, zi, m, WL, rev, T, cos0):
    """In-place forward complex FFT of ``Z[zr:zr+m] + i Z[zi:zi+m]`` (twiddles of 2m)."""
    sin0 = cos0 + m
    for i in range(m):
        j = WL[rev + i]
        if j > i:
            Z[zr + i], Z[zr + j] = Z[zr + j], Z[zr + i]
            Z[zi + i], Z[zi + j] = Z[zi + j], Z[zi + i]
    size = 2
    while size <= m:
        half = size // 2
        step = 2 * (m // size)
        for start in range(0, m, size):
            for k in range(half):
                wr, wi = T[cos0 + k * step], -T[sin0 + k * step]
                a, b = start + k, start + k + half
                tr = wr * Z[zr + b] - wi * Z[zi + b]
                ti = wr * Z[zi + b] + wi * Z[zr + b]
                Z[zr + b] = Z[zr + a] - tr
                Z[zi + b] = Z[zi + a] - ti
                Z[zr + a] += tr
                Z[zi + a] += ti
        size *= 2


@kernel()
def rfft_kernel(desc, k, t):
    """Run the RFFT row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m_ = views(desc)
    T, WL, Z = views64(desc)
    n = P[k, NFFT]
    m = n // 2
    rev, cos0 = P[k, REV], P[k, TWID]
    sin0 = cos0 + m
    for i in range(m_):
        b = idx[i] * A
        x, y = b + P[k, X], b + P[k, Y]
        zr = (b + P[k, SCR]) // 2
        zi = zr + m
        for j in range(m):
            Z[zr + j] = S[x + 2 * j]
            Z[zi + j] = S[x + 2 * j + 1]
        _cfft(Z, zr, zi, m, WL, rev, T, cos0)
        yi = y + m + 1
        S[y] = Z[zr] + Z[zi]
        S[yi] = 0.0
        S[y + m] = Z[zr] - Z[zi]
        S[yi + m] = 0.0
        for q in range(1, m):
            ar, ai = Z[zr + q], Z[zi + q]
            br, bi = Z[zr + m - q], -Z[zi + m - q]
            er, ei = 0.5 * (ar + br), 0.5 * (ai + bi)
            dr, di = 0.5 * (ar - br), 0.5 * (ai - bi)
            c, s = T[cos0 + q], T[sin0 + q]
            S[y + q] = er + di * c - dr * s
            S[yi + q] = ei - dr * c - di * s
        if not all_finite(S, y, P[k, NO]):
            flag_nonfinite(L, b)
    return 0


@kernel()
def irfft_kernel(desc, k, t):
    """Run the IRFFT row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m_ = views(desc)
    T, WL, Z = views64(desc)
    n = P[k, NFFT]
    m = n // 2
    rev, cos0 = P[k, REV], P[k, TWID]
    sin0 = cos0 + m
    for i in range(m_):
        b = idx[i] * A
        x, y = b + P[k, X], b + P[k, Y]
        xi = x + m + 1
        zr = (b + P[k, SCR]) // 2
        zi = zr + m
        for q in range(m):
            ar, ai = float(S[x + q]), float(S[xi + q])
            br, bi = float(S[x + m - q]), -float(S[xi + m - q])
            er, ei = 0.5 * (ar + br), 0.5 * (ai + bi)
            dr, di = 0.5 * (ar - br), 0.5 * (ai - bi)
            c, s = T[cos0 + q], T[sin0 + q]
            orr, oi = dr * c - di * s, dr * s + di * c
            Z[zr + q] = er - oi
            Z[zi + q] = -(ei + orr)
        _cfft(Z, zr, zi, m, WL, rev, T, cos0)
        scale = 1.0 / m
        for j in range(m):
            S[y + 2 * j] = Z[zr + j] * scale
            S[y + 2 * j + 1] = -Z[zi + j] * scale
        if not all_finite(S, y, P[k, NO]):
            flag_nonfinite(L, b)
    return 0
