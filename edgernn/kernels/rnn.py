"""Elman RNN step.

    h' = act(clip(W [x; h] + b))

W: panels of float32[H, I + H] at WOFF (``[weight_ih | weight_hh]``), b: float32[R8]
(``bias_ih + bias_hh``) at BOFF; x at X (length I = NI), h (the output) at Y,
scratch float32[R8] at SCR.
"""

from numba import njit

from .linalg import U, copy, load_bias, matvec
from .mathfn import all_finite, apply_act, clip_inplace
from .optable import ACT_CODE, BOFF, F_CLIP, FLAGS, NI, NO, PAR, S_FLAG, SCR, WOFF, X, Y


@njit(cache=True, error_model="numpy")
def rnn_f32(P, k, W, S, L, A, idx, m):
    """Run RNN row ``P[k]`` for streams ``idx[:m]``; a non-finite h raises the stream's flag."""
    x, ni, h, hs, g = P[k, X], P[k, NI], P[k, Y], P[k, NO], P[k, SCR]
    par = P[k, PAR]
    load_bias(W, P[k, BOFF], -(-hs // 8) * 8, S, A, idx, m, g)
    matvec(W, P[k, WOFF], hs, ni, hs, S, A, idx, m, x, h, g)
    for i in range(m):
        b = idx[i] * A
        if P[k, FLAGS] & F_CLIP:
            clip_inplace(S, b + g, hs, W[par + 2])
        apply_act(S, b + g, hs, P[k, ACT_CODE], W[par], W[par + 1])
        if not all_finite(S, b + g, hs):
            L[U(b) // U(2) + U(S_FLAG)] = 1
        copy(S, b + g, S, b + h, hs)
