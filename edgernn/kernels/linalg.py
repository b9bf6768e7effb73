"""Matrix-vector product on the arenas.

``S[y:y+rows] += A @ S[x:x+cols]`` where ``A = W[w:w+rows*cols].reshape(cols, rows).T``:
the weight arena stores each matrix **transposed** (column-major, ``[cols, rows]``),
so the inner loop is an axpy over the long, contiguous output dimension
(``rows`` = gates x hidden_size). It vectorises for any size, needs no
reassociation, and sums in a fixed order: results do not depend on the
vector width. (Row-major dot products left rows of 48 floats -- LSTM 16->32 --
unvectorised at 2 GMAC/s; this layout measures 17-28 GMAC/s on AVX-512.)
"""

from numba import njit


@njit(cache=True, fastmath={"contract"})
def matvec_acc(W, w_off, rows, cols, S, x_off, y_off):
    """Accumulate ``A @ S[x_off:x_off+cols]`` into ``S[y_off:y_off+rows]``.

    Four columns are folded into each pass over ``y`` (fewer loads and stores
    of ``y`` per multiply-add); the summation order is fixed.

    Parameters
    ----------
    W : float32[:]   weight arena; ``A.T`` is float32[cols, rows] at ``w_off``
    S : float32[:]   state arena holding x and y (they must not overlap)
    """
    y = S[y_off:y_off + rows]
    x = S[x_off:x_off + cols]
    c = 0
    while c + 4 <= cols:
        x0, x1, x2, x3 = x[c], x[c + 1], x[c + 2], x[c + 3]
        b = w_off + c * rows
        w0 = W[b:b + rows]
        w1 = W[b + rows:b + 2 * rows]
        w2 = W[b + 2 * rows:b + 3 * rows]
        w3 = W[b + 3 * rows:b + 4 * rows]
        for r in range(rows):
            y[r] += w0[r] * x0 + w1[r] * x1 + w2[r] * x2 + w3[r] * x3
        c += 4
    while c < cols:
        xv = x[c]
        w = W[w_off + c * rows:w_off + (c + 1) * rows]
        for r in range(rows):
            y[r] += w[r] * xv
        c += 1


@njit(cache=True)
def load_bias(W, b_off, S, y_off, n):
    """``S[y_off:y_off+n] = W[b_off:b_off+n]`` (zeros when ``b_off < 0``)."""
    y = S[y_off:y_off + n]
    if b_off < 0:
        for i in range(n):
            y[i] = 0.0
    else:
        b = W[b_off:b_off + n]
        for i in range(n):
            y[i] = b[i]


@njit(cache=True)
def copy(src, s_off, dst, d_off, n):
    """``dst[d_off:d_off+n] = src[s_off:s_off+n]`` (an explicit loop: numba's slice
    assignment costs ~50 ns more per call)."""
    a = src[s_off:s_off + n]
    b = dst[d_off:d_off + n]
    for i in range(n):
        b[i] = a[i]
