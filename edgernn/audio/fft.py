"""A small real FFT in Numba for the audio front end (power-of-two sizes).

numpy's FFT cannot be called from inside a Numba kernel, and calling it from
Python costs an allocation and a few microseconds of call overhead per frame,
more than the transform itself at these sizes. This file packs a real frame of
``n = 2 m`` samples into ``m`` complex values, runs an iterative radix-2
complex FFT of size ``m`` and untangles the result (the standard real-FFT
split), so one 512-point real transform is about 1.2k butterflies.

Tables (`make_tables`, from :mod:`edgernn.audio.layout`): ``rev`` int64[m]
bit-reversal permutation, ``cos_t``/``sin_t`` float64[m] with ``cos(2 pi k / n)``,
``sin(2 pi k / n)`` for ``k < m`` (the complex transform of size m uses every
second entry).

Conventions are numpy's: ``rfft(x)[k] = sum_t x[t] exp(-2 pi i k t / n)``,
``irfft`` is its inverse including the ``1/n``.
"""

from __future__ import annotations

from numba import njit

from ..kernels.cache import CACHE
from .layout import make_tables

__all__ = ["make_tables", "rfft", "irfft"]


@njit(cache=CACHE, nogil=True)
def _cfft(re, im, rev, cos_t, sin_t):
    """In-place forward complex FFT of size m = re.size (twiddles from an n = 2m table)."""
    m = re.size
    for i in range(m):
        j = rev[i]
        if j > i:
            re[i], re[j] = re[j], re[i]
            im[i], im[j] = im[j], im[i]
    size = 2
    while size <= m:
        half = size // 2
        step = 2 * (m // size)          # table is for n = 2 m
        for start in range(0, m, size):
            for k in range(half):
                wr = cos_t[k * step]
                wi = -sin_t[k * step]
                a = start + k
                b = a + half
                tr = wr * re[b] - wi * im[b]
                ti = wr * im[b] + wi * re[b]
                re[b] = re[a] - tr
                im[b] = im[a] - ti
                re[a] += tr
                im[a] += ti
        size *= 2


@njit(cache=CACHE, nogil=True)
def rfft(x, out_re, out_im, zr, zi, rev, cos_t, sin_t):
    """Real forward FFT.

    x : float[n] ; out_re, out_im : float[n/2 + 1] (written) ;
    zr, zi : float64[n/2] scratch.
    """
    m = zr.size
    for t in range(m):
        zr[t] = x[2 * t]
        zi[t] = x[2 * t + 1]
    _cfft(zr, zi, rev, cos_t, sin_t)
    out_re[0] = zr[0] + zi[0]
    out_im[0] = 0.0
    out_re[m] = zr[0] - zi[0]
    out_im[m] = 0.0
    for k in range(1, m):
        ar, ai = zr[k], zi[k]
        br, bi = zr[m - k], -zi[m - k]          # conj(Z[m-k])
        er, ei = 0.5 * (ar + br), 0.5 * (ai + bi)
        dr, di = 0.5 * (ar - br), 0.5 * (ai - bi)
        # odd part: (d / i) * exp(-2 pi i k / n) = (di - i dr) (c - i s)
        c, s = cos_t[k], sin_t[k]
        orr = di * c - dr * s
        oi = -dr * c - di * s
        out_re[k] = er + orr
        out_im[k] = ei + oi


@njit(cache=CACHE, nogil=True)
def irfft(in_re, in_im, y, zr, zi, rev, cos_t, sin_t):
    """Inverse of :func:`rfft`: float[n/2 + 1] x 2 -> y float[n] (includes 1/n)."""
    m = zr.size
    for k in range(m):
        ar, ai = in_re[k], in_im[k]
        br, bi = in_re[m - k], -in_im[m - k]     # conj(X[m-k])
        er, ei = 0.5 * (ar + br), 0.5 * (ai + bi)
        dr, di = 0.5 * (ar - br), 0.5 * (ai - bi)
        c, s = cos_t[k], sin_t[k]
        # odd part O = d * exp(+2 pi i k / n) ; Z = E + i O ; store conj(Z) for the inverse
        orr = dr * c - di * s
        oi = dr * s + di * c
        zr[k] = er - oi
        zi[k] = -(ei + orr)
    _cfft(zr, zi, rev, cos_t, sin_t)
    scale = 1.0 / m
    for t in range(m):
        y[2 * t] = zr[t] * scale
        y[2 * t + 1] = -zi[t] * scale
