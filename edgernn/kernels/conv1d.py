"""1-D convolution within a step (ONNX ``Conv`` on [1, C, L], Silero's STFT and encoder).

The input at X is ``x: float32[C_in, L_in]`` (row-major, flat), the output at Y
``y: float32[C_out, L_out]`` with ``L_out = (L_in + pb + pe - d (K - 1) - 1) // s + 1``::

    y[o, l] = act(b[o] + sum_{c < C_in/G} sum_{j < K} W[o, c, j] x[g(o) C_in/G + c, l s + j d - pb])

(zero outside ``0 <= . < L_in``; ``g(o) = o // (C_out / G)`` its group). ``b`` at
BOFF (-1: none). Per group ``g``, the window of every output position ``l``,
``col_l[c K + j] = x[g C_in/G + c, l s + j d - pb]`` (float32[C_in/G * K]), is gathered
into the scratch, ``l`` at ``l * (C_in/G * K + pad8(C_out/G))`` with room for its
outputs after it, and ``W_g @ col_l`` for all ``l`` is one panel product
(:func:`edgernn.kernels.linalg.matvec_impl`, the positions taken as its streams: each
weight load serves two positions on AVX-512, and a depthwise convolution makes one
call per group, not one per group and position; every output sums as alone):
``W_g = W[g C_out/G:(g+1) C_out/G]`` seen as float32[C_out/G, C_in/G * K], the groups'
panels one after another at WOFF; the positions ``0 .. L_out-1`` as int64 at POS.

int8 (one group, :func:`conv1d_q_kernel`): the matrix at QM0, each position's window
quantised on its own (its dynamic range, or the input's static scale), the positions
the streams of one int8 product; a position's block of scratch is its window, its
outputs, then the product's scratch (:func:`edgernn.kernels.spec.qlinalg.qscratch_floats`).
"""

from numba import njit

from .abi import flag_nonfinite, kernel, pad8, qviews, views, views64
from .cache import CACHE
from .linalg import TAIL, U, fill, matvec_impl
from .mathfn import act, all_finite
from .optable import ACT_CODE, BOFF, NO, PAR, QM0, QP_X, QPAR, SCR, WOFF, X, Y
from .qlinalg import qmatvec_impl
from .spec.conv1d import CIN, COUT, DIL, GROUPS, KSIZE, LIN, PADB, POS, STRIDE  # noqa: F401
from .spec.qlinalg import qscratch_floats

_qscratch = njit(cache=CACHE, inline="always")(qscratch_floats)


@njit(cache=CACHE, error_model="numpy", inline="always")
def _windows(P, k, S, base, g, step, zero):
    """Group ``g``'s window of every output position into the scratch (position ``l``
    at ``scr + l * step``), its outputs after it zeroed."""
    lin, K, s, d, pb = P[k, LIN], P[k, KSIZE], P[k, STRIDE], P[k, DIL], P[k, PADB]
    G, ci, co, n = P[k, GROUPS], P[k, CIN], P[k, COUT], P[k, NO]
    cig, per, lout = ci // G, co // G, n // co
    xg = base + P[k, X] + g * cig * lin
    for l in range(lout):
        c0 = base + P[k, SCR] + l * step
        p0 = l * s - pb
        for c in range(cig):
            for j in range(K):
                p = p0 + j * d
                S[U(c0 + c * K + j)] = S[U(xg + c * lin + p)] if p >= 0 and p < lin else zero
        fill(S, c0 + cig * K, pad8(per), zero)


@njit(cache=CACHE, error_model="numpy", inline="always")
def _outputs(P, k, W, S, base, g, step):
    """Group ``g``'s products (after each window) plus bias into ``y[o, l]``."""
    G, co, n, b0 = P[k, GROUPS], P[k, COUT], P[k, NO], P[k, BOFF]
    per, lout = co // G, n // co
    ncol = P[k, CIN] // G * P[k, KSIZE]
    for l in range(lout):
        y = base + P[k, Y] + g * per * lout + l
        o0 = base + P[k, SCR] + l * step + ncol
        for o in range(per):
            v = S[U(o0 + o)]
            if b0 >= 0:
                v += W[U(b0 + g * per + o)]
            S[U(y + o * lout)] = v


@njit(cache=CACHE, error_model="numpy", inline="always")
def _finish(desc, P, k, W, S, L, A, idx, m):
    n = P[k, NO]
    for i in range(m):
        y = idx[i] * A + P[k, Y]
        act(desc, P, W, S, y, n, P[k, ACT_CODE], P[k, PAR])
        if not all_finite(S, y, n):
            flag_nonfinite(L, idx[i] * A)


@kernel()
def conv1d_kernel(desc, k, t):
    """Run the convolution row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    WL = views64(desc)[1]
    G, ci, co, n, K = P[k, GROUPS], P[k, CIN], P[k, COUT], P[k, NO], P[k, KSIZE]
    per, lout = co // G, n // co
    ncol = ci // G * K
    step = ncol + pad8(per)          # a position's window, then its outputs
    pos = WL[P[k, POS]:P[k, POS] + lout]
    panel = -(-per // TAIL) * TAIL * ncol
    zero = W[P[k, WOFF]] * 0  # (a float32 zero)
    for i in range(m):
        base = idx[i] * A
        for g in range(G):
            _windows(P, k, S, base, g, step, zero)
            scr = base + P[k, SCR]
            matvec_impl(W, P[k, WOFF] + g * panel, per, ncol, 0, S, step, pos, lout,
                        scr, scr, scr + ncol)
            _outputs(P, k, W, S, base, g, step)
    _finish(desc, P, k, W, S, L, A, idx, m)
    return 0


@kernel()
def conv1d_q_kernel(desc, k, t):
    """An int8 convolution (one group): each position's window is quantised on its own
    and multiplied by the int8 matrix at ``P[k, QM0]``
    (:func:`edgernn.kernels.qlinalg.qmatvec_impl`, positions as its streams); its
    scratch follows each position's outputs."""
    P, W, W8, WI, S, SB, SI, A, idx, m = qviews(desc)
    L, WL = views(desc)[3], views64(desc)[1]
    co, n, ncol = P[k, COUT], P[k, NO], P[k, CIN] * P[k, KSIZE]
    lout = n // co
    q = ncol + pad8(co)
    step = q + _qscratch(ncol, co)
    pos = WL[P[k, POS]:P[k, POS] + lout]
    zero = W[P[k, QPAR]] * 0
    pa = P[k, QPAR] + QP_X
    for i in range(m):
        base = idx[i] * A
        _windows(P, k, S, base, 0, step, zero)
        scr = base + P[k, SCR]
        qmatvec_impl(W, W8, WI, S, SB, SI, step, pos, lout, P[k, QM0], scr, pa, -1, 0, pa,
                     scr + q, scr + ncol, -1, 0, 0)
        _outputs(P, k, W, S, base, 0, step)
    _finish(desc, P, k, W, S, L, A, idx, m)
    return 0
