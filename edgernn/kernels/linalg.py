"""Matrix-vector product and copies on the arenas.

``S[y:y+rows] += A @ S[x:x+cols]`` where ``A = W[w:w+rows*cols].reshape(cols, rows).T``:
the weight arena stores each matrix **transposed** (column-major, ``[cols, rows]``),
so the inner loop is an axpy over the long, contiguous output dimension
(``rows`` = gates x hidden_size). It vectorises for any size, needs no
reassociation, and sums in a fixed order: results do not depend on the vector
width. (Row-major dot products left rows of 48 floats -- LSTM 16->32 --
unvectorised at 2 GMAC/s.)

Indexing convention of every kernel: offsets are converted to ``uint64`` and
arrays are indexed directly. Unsigned indices need no negative-index
wrap-around (which blocks vectorisation) and, unlike slicing views, no
reference counting (two atomic operations per view, per call).
"""

import numpy as np
from numba import njit

U = np.uint64


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def matvec_acc(W, w_off, rows, cols, S, x_off, y_off):
    """Accumulate ``A @ S[x_off:x_off+cols]`` into ``S[y_off:y_off+rows]``.

    Four columns are folded into each pass over ``y`` (fewer loads and stores
    of ``y`` per multiply-add); the summation order is fixed.

    Parameters
    ----------
    W : float32[:]   weight arena; ``A.T`` is float32[cols, rows] at ``w_off``
    S : float32[:]   state arena holding x and y (they must not overlap)
    """
    R, C = U(rows), U(cols)
    xo, yo = U(x_off), U(y_off)
    b = U(w_off)
    c = U(0)
    while c + U(4) <= C:
        x0, x1, x2, x3 = S[xo + c], S[xo + c + U(1)], S[xo + c + U(2)], S[xo + c + U(3)]
        b1 = b + R
        b2 = b1 + R
        b3 = b2 + R
        for r in range(R):
            S[yo + r] += W[b + r] * x0 + W[b1 + r] * x1 + W[b2 + r] * x2 + W[b3 + r] * x3
        b = b3 + R
        c += U(4)
    while c < C:
        xv = S[xo + c]
        for r in range(R):
            S[yo + r] += W[b + r] * xv
        b += R
        c += U(1)


@njit(cache=True, error_model="numpy")
def load_bias(W, b_off, S, y_off, n):
    """``S[y_off:y_off+n] = W[b_off:b_off+n]`` (zeros when ``b_off < 0``)."""
    yo, N = U(y_off), U(n)
    if b_off < 0:
        for i in range(N):
            S[yo + i] = 0.0
    else:
        bo = U(b_off)
        for i in range(N):
            S[yo + i] = W[bo + i]


@njit(cache=True, error_model="numpy")
def copy(src, s_off, dst, d_off, n):
    """``dst[d_off:d_off+n] = src[s_off:s_off+n]``."""
    so, do = U(s_off), U(d_off)
    for i in range(U(n)):
        dst[do + i] = src[so + i]


@njit(cache=True, error_model="numpy")
def fill(S, off, n, value):
    """``S[off:off+n] = value``."""
    o = U(off)
    for i in range(U(n)):
        S[o + i] = value
