"""Real FFT of a step's samples, and its inverse (``torch.fft.rfft`` / ``irfft``; numpy's
conventions: ``X[k] = sum_t x[t] e^{-2 pi i k t / n}``, the inverse includes ``1/n``).

    RFFT:  x float32[n]                 -> [re float32[n/2+1] | im float32[n/2+1]]
    IRFFT: [re[n/2+1] | im[n/2+1]]      -> x float32[n]

``n`` even, ``m = n/2`` without a prime factor above 5 (512, 320, 400, 480, ...). The
real frame is packed into ``m`` complex values, a complex FFT of size ``m`` runs in
float64, and the halves are untangled (the standard real-FFT split). The complex FFT:
for ``m`` a power of two, an in-place iterative radix-2 one (about 1.2k butterflies for
``n = 512``); otherwise a Stockham autosort FFT of radices 4, 2, 3, 5 (each stage a
small DFT per group times its twiddle, between two buffers, no reordering). Tables in
the weight arena: at REV int64, the bit-reversal permutation [m] (radix 2) or the
radices ``[count, p1, p2, ...]`` (column MIXED: their count, 0 for radix 2); at TWID
float64, ``cos(2 pi k / n)`` then ``sin(2 pi k / n)`` for ``k < n``. The complex
scratch ``zr, zi`` float64[m] each (and for Stockham the second buffer ``br, bi``)
lies at SCR (float32 offset, 64-byte aligned).
"""

from numba import njit

from .abi import flag_nonfinite, kernel, views, views64
from .cache import CACHE
from .mathfn import all_finite
from .optable import NO, SCR, X, Y
from .spec.fft import MIXED, NFFT, REV, TWID, radices, tables  # noqa: F401


@njit(cache=CACHE, error_model="numpy", inline="always")
def _stockham(Z, zr, zi, m, WL, fact, T, cos0, sin0):
    """Forward complex FFT of ``Z[zr:zr+m] + i Z[zi:zi+m]`` in place, Stockham stages of
    the radices at ``WL[fact]`` (count, then the radices), through the buffer after it
    (``Z[zi+m : zi+3m]``). Twiddles: ``e^{-2 pi i t / n}`` at ``T[cos0 + t], T[sin0 + t]``."""
    n = 2 * m
    sr, si, dr, di = zr, zi, zi + m, zi + 2 * m
    ell = 1
    for f in range(WL[fact]):
        p = WL[fact + 1 + f]
        mm = m // (p * ell)
        dft, tw = n // p, n // (p * mm)   # e^{-2 pi i / p}, e^{-2 pi i / (p mm)} as W_n powers
        for k in range(mm):
            t = 0                         # k r tw < n: no wrap-around
            for r in range(p):
                o = dr + ell * (p * k + r)
                oi = o + (di - dr)
                for j in range(ell):
                    Z[o + j] = 0.0
                    Z[oi + j] = 0.0
                u = 0                     # q r dft, modulo n
                for q in range(p):
                    c, s_ = T[cos0 + u], -T[sin0 + u]
                    a = sr + ell * k + q * ell * mm
                    ai = a + (si - sr)
                    for j in range(ell):
                        xr, xi = Z[a + j], Z[ai + j]
                        Z[o + j] += xr * c - xi * s_
                        Z[oi + j] += xr * s_ + xi * c
                    u += r * dft
                    if u >= n:
                        u -= n
                wr, wi = T[cos0 + t], -T[sin0 + t]
                for j in range(ell):
                    ar, ai_ = Z[o + j], Z[oi + j]
                    Z[o + j] = ar * wr - ai_ * wi
                    Z[oi + j] = ar * wi + ai_ * wr
                t += k * tw
        sr, si, dr, di = dr, di, sr, si
        ell *= p
    if sr != zr:
        for i in range(m):
            Z[zr + i] = Z[sr + i]
            Z[zi + i] = Z[si + i]


@njit(cache=CACHE, error_model="numpy", inline="always")
def _complex_fft(Z, zr, zi, m, WL, ints, nrad, T, cos0, sin0):
    """The forward complex FFT of size ``m`` in place (module docstring)."""
    if nrad:
        _stockham(Z, zr, zi, m, WL, ints, T, cos0, sin0)
    else:
        _cfft(Z, zr, zi, m, WL, ints, T, cos0, sin0)


@njit(cache=CACHE, error_model="numpy", inline="always")
def _cfft(Z, zr, zi, m, WL, rev, T, cos0, sin0):
    """In-place radix-2 forward complex FFT of ``Z[zr:zr+m] + i Z[zi:zi+m]``."""
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
    ints, nrad, cos0 = P[k, REV], P[k, MIXED], P[k, TWID]
    sin0 = cos0 + n
    for i in range(m_):
        b = idx[i] * A
        x, y = b + P[k, X], b + P[k, Y]
        zr = (b + P[k, SCR]) // 2
        zi = zr + m
        for j in range(m):
            Z[zr + j] = S[x + 2 * j]
            Z[zi + j] = S[x + 2 * j + 1]
        _complex_fft(Z, zr, zi, m, WL, ints, nrad, T, cos0, sin0)
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
    ints, nrad, cos0 = P[k, REV], P[k, MIXED], P[k, TWID]
    sin0 = cos0 + n
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
        _complex_fft(Z, zr, zi, m, WL, ints, nrad, T, cos0, sin0)
        scale = 1.0 / m
        for j in range(m):
            S[y + 2 * j] = Z[zr + j] * scale
            S[y + 2 * j + 1] = -Z[zi + j] * scale
        if not all_finite(S, y, P[k, NO]):
            flag_nonfinite(L, b)
    return 0
