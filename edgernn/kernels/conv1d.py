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
"""

from .abi import flag_nonfinite, kernel, pad8, views, views64
from .linalg import TAIL, U, fill, matvec_impl
from .mathfn import act, all_finite
from .optable import ACT_CODE, BOFF, NO, PAR, SCR, WOFF, X, Y
from .spec.conv1d import CIN, COUT, DIL, GROUPS, KSIZE, LIN, PADB, POS, STRIDE  # noqa: F401


@kernel()
def conv1d_kernel(desc, k, t):
    """Run the convolution row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    WL = views64(desc)[1]
    lin, K, s, d, pb = P[k, LIN], P[k, KSIZE], P[k, STRIDE], P[k, DIL], P[k, PADB]
    G, ci, co, n = P[k, GROUPS], P[k, CIN], P[k, COUT], P[k, NO]
    b0, scr = P[k, BOFF], P[k, SCR]
    cig, per, lout = ci // G, co // G, n // co
    ncol = cig * K
    step = ncol + pad8(per)          # a position's window, then its outputs
    pos = WL[P[k, POS]:P[k, POS] + lout]
    panel = -(-per // TAIL) * TAIL * ncol
    zero = W[P[k, WOFF]] * 0  # (a float32 zero)
    for i in range(m):
        base = idx[i] * A
        for g in range(G):
            xg = base + P[k, X] + g * cig * lin
            for l in range(lout):
                c0 = base + scr + l * step
                p0 = l * s - pb
                for c in range(cig):
                    for j in range(K):
                        p = p0 + j * d
                        S[U(c0 + c * K + j)] = (S[U(xg + c * lin + p)]
                                                if p >= 0 and p < lin else zero)
                fill(S, c0 + ncol, pad8(per), zero)
            matvec_impl(W, P[k, WOFF] + g * panel, per, ncol, 0, S, step, pos, lout,
                        base + scr, base + scr, base + scr + ncol)
            for l in range(lout):
                y = base + P[k, Y] + g * per * lout + l
                o0 = base + scr + l * step + ncol
                for o in range(per):
                    v = S[U(o0 + o)]
                    if b0 >= 0:
                        v += W[U(b0 + g * per + o)]
                    S[U(y + o * lout)] = v
    for i in range(m):
        y = idx[i] * A + P[k, Y]
        act(desc, P, W, S, y, n, P[k, ACT_CODE], P[k, PAR])
        if not all_finite(S, y, n):
            flag_nonfinite(L, idx[i] * A)
    return 0
