"""The front end's compiled code (numba): one analysis hop and one synthesis hop.

``_analyze`` and ``_synthesize`` are the kernels :class:`edgernn.audio.frontend.FrontEnd`
runs (its docstring gives the workspace and table layout). Each also has a C entry,
a ``cfunc`` of the engine's entry signature (:data:`edgernn.kernels.image.WRAPPER_IR`)::

    int64 analyze_c(ctx, hop, n_hop, features, n_features, 0)
    int64 synthesize_c(ctx, gains, n_gains, out, n_out, 0)

``ctx``: the address of an int64[:data:`CTX`]: the addresses of the workspace
(float64), the int64 and float64 tables and ``dims`` (int64[7]), then the
synthesis floor (a float64's bits); the arrays are float32 addresses and sizes.
They return 0, or 1 (sizes that do not fit, nothing done). The image holds their
object code (items :data:`ANALYZE`, :data:`SYNTHESIZE`) and the engine's Python
wrapper calls them, so a warm process runs the front end without numba; this
module is imported only to compile them, or where the image is off.
"""

from __future__ import annotations

import numpy as np
from numba import cfunc, njit, types

from ..kernels import image
from ..kernels.cache import CACHE
from ..kernels.pointers import view1
from . import fft
from .layout import ANALYZE, CTX, SYNTHESIZE

ENTRY_SIG = types.int64(*[types.int64] * 6)


@njit(cache=CACHE, nogil=True)
def _views(ws, itab, ftab, dims):
    n, f, k, m, b = dims[0], dims[1], dims[2], dims[3], dims[4]
    frame, ola = ws[:n], ws[n:2 * n]
    o = 2 * n
    buf = ws[o:o + f]
    o += f
    re, im, pre, pim = ws[o:o + k], ws[o + k:o + 2 * k], ws[o + 2 * k:o + 3 * k], \
        ws[o + 3 * k:o + 4 * k]
    o += 4 * k
    zr, zi = ws[o:o + m], ws[o + m:o + 2 * m]
    o += 2 * m
    gb, energy, prev_log = ws[o:o + b], ws[o + b:o + 2 * b], ws[o + 2 * b:o + 3 * b]
    rev, band_lo = itab[:m], itab[m:m + k]
    cos_t, sin_t, band_frac, window = ftab[:m], ftab[m:2 * m], ftab[2 * m:2 * m + k], \
        ftab[2 * m + k:2 * m + k + n]
    return (frame, ola, buf, re, im, pre, pim, zr, zi, gb, energy, prev_log, rev, band_lo,
            cos_t, sin_t, band_frac, window)


@njit(cache=CACHE, nogil=True)
def _analyze(hop, ws, itab, ftab, dims, feats):
    (frame, ola, buf, re, im, pre, pim, zr, zi, gb, energy, prev_log, rev, band_lo,
     cos_t, sin_t, band_frac, window) = _views(ws, itab, ftab, dims)
    min_lag, max_lag = dims[5], dims[6]
    n_win = frame.size
    h = hop.size
    for t in range(n_win - h):
        frame[t] = frame[t + h]
    for t in range(h):
        frame[n_win - h + t] = hop[t]
    for t in range(n_win):
        buf[t] = frame[t] * window[t]
    for t in range(n_win, buf.size):
        buf[t] = 0.0
    fft.rfft(buf, re, im, zr, zi, rev, cos_t, sin_t)
    nb, nk = energy.size, re.size
    for b in range(nb):
        energy[b] = 0.0
    for k in range(nk):
        p = re[k] * re[k] + im[k] * im[k]
        pre[k] = p
        b = band_lo[k]
        f = band_frac[k]
        energy[b] += (1.0 - f) * p
        energy[b + 1] += f * p
    for b in range(nb):
        lg = np.log10(energy[b] + 1e-9)
        feats[b] = lg
        feats[nb + b] = lg - prev_log[b]
        prev_log[b] = lg
    # voicing: autocorrelation = inverse FFT of the power spectrum (buf is free now)
    for k in range(nk):
        pim[k] = 0.0
    fft.irfft(pre, pim, buf, zr, zi, rev, cos_t, sin_t)
    best = 0.0
    r0 = buf[0]
    if r0 > 1e-12:
        for lag in range(min_lag, max_lag + 1):
            r = buf[lag] / r0 * n_win / (n_win - lag)
            if r > best:
                best = r
    feats[2 * nb] = min(best, 1.0)


@njit(cache=CACHE, nogil=True)
def _synthesize(gains, floor, ws, itab, ftab, dims, out):
    (frame, ola, buf, re, im, pre, pim, zr, zi, gb, energy, prev_log, rev, band_lo,
     cos_t, sin_t, band_frac, window) = _views(ws, itab, ftab, dims)
    nb, nk = gb.size, re.size
    for b in range(nb):
        g = gains[b]
        if not g >= floor:                       # also catches NaN
            g = floor
        if g > 1.0:
            g = 1.0
        gb[b] = g
    for k in range(nk):
        b = band_lo[k]
        f = band_frac[k]
        g = (1.0 - f) * gb[b] + f * gb[b + 1]
        pim[k] = im[k] * g
        pre[k] = re[k] * g
    fft.irfft(pre, pim, buf, zr, zi, rev, cos_t, sin_t)
    n_win = ola.size
    h = out.size
    for t in range(n_win):
        ola[t] += buf[t] * window[t]
    for t in range(h):
        out[t] = ola[t]
    for t in range(n_win - h):
        ola[t] = ola[t + h]
    for t in range(n_win - h, n_win):
        ola[t] = 0.0


@njit(cache=CACHE, nogil=True)
def _context(ctx):
    """``(ws, itab, ftab, dims)`` viewed from the addresses in ``ctx``."""
    c = view1(ctx, CTX, np.int64)
    dims = view1(c[3], 7, np.int64)
    n, f, k, m, b = dims[0], dims[1], dims[2], dims[3], dims[4]
    return (view1(c[0], 2 * n + f + 4 * k + 2 * m + 3 * b, np.float64),
            view1(c[1], m + k, np.int64), view1(c[2], 2 * m + k + n, np.float64), dims)


def analyze_c(ctx, x, nx, y, ny, t):
    ws, itab, ftab, dims = _context(ctx)
    if nx > dims[0] or ny != 2 * dims[4] + 1:
        return 1
    _analyze(view1(x, nx, np.float32), ws, itab, ftab, dims, view1(y, ny, np.float32))
    return 0


def synthesize_c(ctx, x, nx, y, ny, t):
    ws, itab, ftab, dims = _context(ctx)
    if nx < dims[4] or ny > dims[0]:
        return 1
    floor = view1(ctx, CTX, np.float64)[CTX - 1]
    _synthesize(view1(x, nx, np.float32), floor, ws, itab, ftab, dims,
                view1(y, ny, np.float32))
    return 0


_CFUNCS: dict = {}


def compiled(name: str):
    """The ``cfunc`` of item ``name`` (:data:`ANALYZE` or :data:`SYNTHESIZE`), compiled or
    loaded from numba's cache, and written into the native image with the engine's
    Python wrapper, for the next process to load without numba."""
    if name not in _CFUNCS:
        fn = {ANALYZE: analyze_c, SYNTHESIZE: synthesize_c}[name]
        cf = _CFUNCS[name] = cfunc(ENTRY_SIG, cache=CACHE)(fn)
        image.save_cfunc(name, cf)
        image.save_wrapper()
    return _CFUNCS[name]
