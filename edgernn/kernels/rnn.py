"""Elman RNN step.

    h' = act(clip(W [x; h] + b))

W: float32[H, I + H] at WOFF (``[weight_ih | weight_hh]``), b: float32[H]
(``bias_ih + bias_hh``) at BOFF; x at X (length I = NI), h right after it.
"""

from numba import njit

from .linalg import copy, fill, load_bias, matvec_acc
from .mathfn import all_finite, apply_act, clip_inplace
from .optable import BOFF, F_CLIP, NI, NO, R_ACT, R_FLAGS, R_GOFF, R_PAR, WOFF, X, Y


@njit(cache=True, error_model="numpy")
def rnn_f32(P, k, W, S):
    """Run RNN op row ``P[k]``; returns False (and zeroes h) if h became non-finite."""
    x, ni, y, hs = P[k, X], P[k, NI], P[k, Y], P[k, NO]
    h = x + ni
    g = P[k, R_GOFF]
    par = P[k, R_PAR]
    load_bias(W, P[k, BOFF], S, g, hs)
    matvec_acc(W, P[k, WOFF], hs, ni + hs, S, x, g)
    if P[k, R_FLAGS] & F_CLIP:
        clip_inplace(S, g, hs, W[par + 2])
    apply_act(S, g, hs, P[k, R_ACT], W[par], W[par + 1])
    ok = all_finite(S, g, hs)
    copy(S, g, S, y, hs)
    if ok:
        copy(S, g, S, h, hs)
    else:
        fill(S, h, hs, 0.0)
    return ok
