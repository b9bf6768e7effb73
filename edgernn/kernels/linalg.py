"""Matrix products over the arenas, for one stream or a batch of streams.

A packed matrix ``A: float32[R, K]`` (``K = K1 + K2`` input columns: the first
``K1`` multiply one vector, the next ``K2`` another, e.g. ``[W_ih | W_hh]`` times
``x`` and ``h``) is stored as panels of row tiles (:mod:`edgernn.kernels.tile`):
``R8 = 8 * ceil(R / 8)`` rows, ``R8 // 32`` tiles of 32 rows, then the rest in
tiles of 8 rows, each panel ``float32[K, rows]`` contiguous. Rows past ``R`` are
zero. :func:`panel_size` floats in all.

Streams: ``S`` is the flat float32 view of every stream's arena, stream ``s``
at ``s * A``; ``idx[0:m]`` lists the streams to advance. Ops loop over tiles
outside and streams inside, so a weight panel is read from memory once per
timestep for the whole batch and then from cache.

Indexing convention of every kernel: offsets are converted to ``uint64`` and
arrays are indexed directly (no wrap-around checks, no reference counting).
"""

import numpy as np
from numba import njit, types

from .abi import call_ptr, kernel, views
from .cache import CACHE
from .optable import H_MATVEC
from .spec.linalg import pack_panels, panel_size  # noqa: F401
from .tile import (
    MULTI,
    STREAMS,
    TAIL,
    TILE,
    mac8,
    mac8t2,
    mac8t3,
    mac16x2,
    mac32,
    mac32t2,
    mac32t3,
    mac32t4,
    mac32x4,
)

CHUNK = 256  # columns per pass over a panel chunk (32 rows x 256 x 4 B = 32 KB)
GROUP = 8    # streams that share a pass over the panel chunks

U = np.uint64


@njit(cache=CACHE, error_model="numpy", inline="always")
def matvec_impl(W, w_off, rows, k1, k2, S, A, idx, m, x1, x2, y):
    """``S[s, y:y+R8] += A @ [S[s, x1:x1+k1]; S[s, x2:x2+k2]]`` for each stream ``s``.

    Parameters
    ----------
    W : float32[:]   weight arena; panels at ``w_off`` (:func:`pack_panels`)
    S : float32[:]   all streams' arenas, stream ``s`` at ``s * A``
    idx : int64[:]   stream indices; the first ``m`` are advanced
    x1, x2, y : int  offsets inside one stream's arena (y: room for R8 floats)
    """
    K1, K2 = U(k1), U(k2)
    K = K1 + K2
    r8 = U(-(-rows // TAIL) * TAIL)
    n32 = r8 // U(TILE)
    r0, wo0 = U(0), U(w_off)
    if MULTI > 1 and m == 1 and K <= U(CHUNK):  # one stream, small: tiles share the inputs
        b = U(idx[0]) * U(A)
        ts = K * U(TILE)
        while r0 + U(4 * TILE) <= n32 * U(TILE):
            mac32t4(W, wo0, K1, K2, S, b + U(x1), b + U(x2), b + U(y) + r0, ts)
            r0 += U(4 * TILE)
            wo0 += U(4) * ts
        left = n32 - r0 // U(TILE)
        if left == 3:
            mac32t3(W, wo0, K1, K2, S, b + U(x1), b + U(x2), b + U(y) + r0, ts)
        elif left == 2:
            mac32t2(W, wo0, K1, K2, S, b + U(x1), b + U(x2), b + U(y) + r0, ts)
        if left == 2 or left == 3:
            r0 += left * U(TILE)
            wo0 += left * ts
    for g0 in range(0, m, GROUP):  # a few streams at a time: their vectors and the
        g1 = min(g0 + GROUP, m)     # panel chunk they share stay in L1 together
        wo = wo0
        r = r0
        while r < r8:
            width = U(TILE) if r < n32 * U(TILE) else U(TAIL)
            tails = (r8 - r) // U(TAIL)
            if width == U(TAIL) and tails >= U(2) and K <= U(CHUNK):
                for i in range(g0, g1):   # each stream's 16 or 24 tail rows in one call
                    b = U(idx[i]) * U(A)
                    if tails == U(3):
                        mac8t3(W, wo, K1, K2, S, b + U(x1), b + U(x2), b + U(y) + r,
                               K * width)
                    else:
                        mac8t2(W, wo, K1, K2, S, b + U(x1), b + U(x2), b + U(y) + r,
                               K * width)
                wo += tails * K * width
                r += tails * width
                continue
            c0 = U(0)
            while c0 < K:
                c1 = min(c0 + U(CHUNK), K)
                a1 = min(c0, K1)
                n1 = min(c1, K1) - a1
                a2 = max(c0, K1) - K1
                n2 = c1 - K1 - a2 if c1 > K1 else U(0)
                w = wo + c0 * width
                i = g0
                if width == U(TILE):
                    while i + 4 <= g1 and STREAMS == 4:
                        b, c = U(idx[i]) * U(A), U(idx[i + 1]) * U(A)
                        d, e = U(idx[i + 2]) * U(A), U(idx[i + 3]) * U(A)
                        mac32x4(W, w, n1, n2, S, b + U(x1) + a1, b + U(x2) + a2, b + U(y) + r,
                                c + U(x1) + a1, c + U(x2) + a2, c + U(y) + r,
                                d + U(x1) + a1, d + U(x2) + a2, d + U(y) + r,
                                e + U(x1) + a1, e + U(x2) + a2, e + U(y) + r)
                        i += 4
                    while i + 2 <= g1 and STREAMS == 2:
                        b, c = U(idx[i]) * U(A), U(idx[i + 1]) * U(A)
                        for h in (U(0), U(16)):
                            mac16x2(W, w + h, n1, n2, S, b + U(x1) + a1, b + U(x2) + a2,
                                    b + U(y) + r + h, c + U(x1) + a1, c + U(x2) + a2,
                                    c + U(y) + r + h)
                        i += 2
                while i < g1:
                    b = U(idx[i]) * U(A)
                    xa, xb, yr = b + U(x1) + a1, b + U(x2) + a2, b + U(y) + r
                    if width == U(TILE):
                        mac32(W, w, n1, n2, S, xa, xb, yr)
                    else:
                        mac8(W, w, n1, n2, S, xa, xb, yr)
                    i += 1
                c0 = c1
            wo += K * width
            r += width


@kernel(types.int64(*[types.int64] * 8))
def matvec_kernel(desc, w_off, rows, k1, k2, x1, x2, y):
    """:func:`matvec_impl` on the arenas of a call descriptor (called by address)."""
    P, W, S, L, A, idx, m = views(desc)
    matvec_impl(W, w_off, rows, k1, k2, S, A, idx, m, x1, x2, y)
    return 0


@njit(cache=CACHE, error_model="numpy", inline="always")
def matvec(desc, P, w_off, rows, k1, k2, x1, x2, y):
    """:func:`matvec_impl` through the address in the op table's header
    (:func:`matvec_kernel`, compiled once)."""
    call_ptr(P[0, H_MATVEC], desc, w_off, rows, k1, k2, x1, x2, y)


@njit(cache=CACHE, error_model="numpy", inline="always")
def load_bias(W, b_off, n, S, A, idx, m, y):
    """``S[s, y:y+n] = W[b_off:b_off+n]`` (zeros when ``b_off < 0``) for each stream."""
    N = U(n)
    for i in range(m):
        yo = U(idx[i]) * U(A) + U(y)
        if b_off < 0:
            for j in range(N):
                S[yo + j] = 0.0
        else:
            bo = U(b_off)
            for j in range(N):
                S[yo + j] = W[bo + j]


@njit(cache=CACHE, error_model="numpy", inline="always")
def copy(src, s_off, dst, d_off, n):
    """``dst[d_off:d_off+n] = src[s_off:s_off+n]``."""
    so, do = U(s_off), U(d_off)
    for i in range(U(n)):
        dst[do + i] = src[so + i]


@njit(cache=CACHE, error_model="numpy", inline="always")
def fill(S, off, n, value):
    """``S[off:off+n] = value``."""
    o = U(off)
    for i in range(U(n)):
        S[o + i] = value
