"""Dense (fully connected) and stand-alone activation ops.

Dense:       y = act(W x + b)        W: panels of float32[NO, NI] at WOFF, b: float32[R8] at BOFF
Activation:  y = act(x)              (softmax and the other vector activations over all of x)

The product lands in the scratch ``S[SCR:SCR+R8]`` (R8: NO rounded up to 8),
the activation is applied there, and the NO valid values are copied to ``y``.
A non-finite output raises the stream's non-finite flag.
"""

from numba import njit

from .linalg import U, copy, load_bias, matvec
from .mathfn import all_finite, apply_act
from .optable import ACT_CODE, BOFF, NI, NO, PAR, S_FLAG, SCR, WOFF, X, Y


@njit(cache=True, error_model="numpy")
def finish(W, P, k, S, L, b, src, dst, n):
    """Activation of row ``k`` on ``S[b+src:]``, copy to ``S[b+dst:]``, flag non-finite."""
    par = P[k, PAR]
    apply_act(S, b + src, n, P[k, ACT_CODE], W[par], W[par + 1])
    if not all_finite(S, b + src, n):
        L[U(b) // U(2) + U(S_FLAG)] = 1
    if src != dst:
        copy(S, b + src, S, b + dst, n)


@njit(cache=True, error_model="numpy")
def dense_f32(P, k, W, S, L, A, idx, m):
    """Run Dense row ``P[k]`` for streams ``idx[:m]``."""
    x, ni, y, no, g = P[k, X], P[k, NI], P[k, Y], P[k, NO], P[k, SCR]
    load_bias(W, P[k, BOFF], -(-no // 8) * 8, S, A, idx, m, g)
    matvec(W, P[k, WOFF], no, ni, 0, S, A, idx, m, x, x, g)
    for i in range(m):
        finish(W, P, k, S, L, idx[i] * A, g, y, no)


@njit(cache=True, error_model="numpy")
def activation_f32(P, k, W, S, L, A, idx, m):
    """Run Activation row ``P[k]``: copy x to y, then apply in place."""
    x, y, n = P[k, X], P[k, Y], P[k, NO]
    for i in range(m):
        b = idx[i] * A
        copy(S, b + x, S, b + y, n)
        finish(W, P, k, S, L, b, y, y, n)
