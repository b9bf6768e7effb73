"""Dense (fully connected) and stand-alone activation ops.

Dense:       y = act(W x + b)        W: float32[NO, NI] at WOFF, b: float32[NO] at BOFF
Activation:  y = act(x)              (softmax over the whole vector)
"""

from numba import njit

from .linalg import copy, load_bias, matvec_acc
from .mathfn import apply_act
from .optable import A_ACT, A_PAR, BOFF, D_ACT, D_PAR, NI, NO, WOFF, X, Y


@njit(cache=True, error_model="numpy")
def dense_f32(P, k, W, S):
    """Run Dense op row ``P[k]`` on arena ``S``."""
    x, ni, y, no = P[k, X], P[k, NI], P[k, Y], P[k, NO]
    load_bias(W, P[k, BOFF], S, y, no)
    matvec_acc(W, P[k, WOFF], no, ni, S, x, y)
    par = P[k, D_PAR]
    apply_act(S, y, no, P[k, D_ACT], W[par], W[par + 1])


@njit(cache=True, error_model="numpy")
def activation_f32(P, k, W, S):
    """Run Activation op row ``P[k]``: copy x to y, then apply in place."""
    x, y, n = P[k, X], P[k, Y], P[k, NO]
    copy(S, x, S, y, n)
    par = P[k, A_PAR]
    apply_act(S, y, n, P[k, A_ACT], W[par], W[par + 1])
