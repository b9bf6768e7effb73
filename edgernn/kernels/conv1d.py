"""1-D convolution within a step (ONNX ``Conv`` on [1, C, L], Silero's STFT and encoder).

The input at X is ``x: float32[C_in, L_in]`` (row-major, flat), the output at Y
``y: float32[C_out, L_out]`` with ``L_out = (L_in + pb + pe - d (K - 1) - 1) // s + 1``::

    y[o, l] = act(b[o] + sum_{c < C_in/G} sum_{j < K} W[o, c, j] x[g(o) C_in/G + c, l s + j d - pb])

(zero outside ``0 <= . < L_in``; ``g(o) = o // (C_out / G)`` its group). ``b`` at
BOFF (-1: none). Per group ``g`` and output position ``l`` the window
``col[c K + j] = x[g C_in/G + c, l s + j d - pb]`` (float32[C_in/G * K]) is gathered
into the scratch after ``pad8(C_out/G)`` floats, and ``W_g @ col`` is one panel
product (:func:`edgernn.kernels.linalg.matvec`): ``W_g = W[g C_out/G:(g+1) C_out/G]``
seen as float32[C_out/G, C_in/G * K], the groups' panels one after another at WOFF.
"""

from .abi import flag_nonfinite, kernel, pad8, views
from .linalg import TAIL, U, fill, matvec
from .mathfn import act, all_finite
from .optable import ACT_CODE, BOFF, NO, PAR, SCR, WOFF, X, Y
from .spec.conv1d import CIN, COUT, DIL, GROUPS, KSIZE, LIN, PADB, STRIDE  # noqa: F401


@kernel()
def conv1d_kernel(desc, k, t):
    """Run the convolution row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    lin, K, s, d, pb = P[k, LIN], P[k, KSIZE], P[k, STRIDE], P[k, DIL], P[k, PADB]
    G, ci, co, n = P[k, GROUPS], P[k, CIN], P[k, COUT], P[k, NO]
    b0, scr = P[k, BOFF], P[k, SCR]
    cig, per, lout = ci // G, co // G, n // co
    ncol = cig * K
    col = scr + pad8(per)
    panel = -(-per // TAIL) * TAIL * ncol
    zero = W[P[k, WOFF]] * 0  # (a float32 zero)
    for g in range(G):
        for l in range(lout):
            p0 = l * s - pb
            for i in range(m):
                base = idx[i] * A
                xg = base + P[k, X] + g * cig * lin
                c0 = base + col
                for c in range(cig):
                    for j in range(K):
                        p = p0 + j * d
                        S[U(c0 + c * K + j)] = (S[U(xg + c * lin + p)]
                                                if p >= 0 and p < lin else zero)
                fill(S, base + scr, pad8(per), zero)
            matvec(desc, P, P[k, WOFF] + g * panel, per, ncol, 0, col, col, scr)
            for i in range(m):
                base = idx[i] * A
                y = base + P[k, Y] + g * per * lout + l
                for o in range(per):
                    v = S[U(base + scr + o)]
                    if b0 >= 0:
                        v += W[U(b0 + g * per + o)]
                    S[U(y + o * lout)] = v
    for i in range(m):
        y = idx[i] * A + P[k, Y]
        act(desc, P, W, S, y, n, P[k, ACT_CODE], P[k, PAR])
        if not all_finite(S, y, n):
            flag_nonfinite(L, idx[i] * A)
    return 0
