"""Dense (fully connected) and stand-alone activation ops.

Dense:       y = act(W x + b)        W: panels of float32[NO, NI] at WOFF, b: float32[R8] at BOFF
Activation:  y = act(x)              (softmax and the other vector activations over all of x)

The product lands in the scratch ``S[SCR:SCR+R8]`` (R8: NO rounded up to 8),
the activation is applied there, and the NO valid values are copied to ``y``.
A non-finite output raises the stream's non-finite flag.
"""

import numpy as np
from numba import njit

from .abi import flag_nonfinite, kernel, pad8, views
from .cache import CACHE
from .linalg import U, copy, load_bias
from .mathfn import act, all_finite
from .optable import ACT_CODE, BOFF, NI, NO, PAR, QM0, QP_OUT, QPAR, SCR, WOFF, X, Y
from .qlinalg import times_x


@njit(cache=CACHE, error_model="numpy", inline="always")
def finish(desc, P, k, W, S, L, b, src, dst, n):
    """Activation of row ``k`` on ``S[b+src:]``, copy to ``S[b+dst:]``, flag non-finite."""
    act(desc, P, W, S, b + src, n, P[k, ACT_CODE], P[k, PAR])
    q = P[k, QPAR]
    if q >= 0 and W[q + QP_OUT] > 0:  # an int8 model's Dense output, re-quantised
        s, zp = W[q + QP_OUT], W[q + QP_OUT + 1]
        o = U(b + src)
        for i in range(U(n)):
            v = min(max(np.rint(S[o + i] / s) + zp, np.float32(-128)), np.float32(127))
            S[o + i] = (v - zp) * s
    if not all_finite(S, b + src, n):
        flag_nonfinite(L, b)
    if src != dst:
        copy(S, b + src, S, b + dst, n)


@kernel()
def dense_kernel(desc, k, t):
    """Run Dense row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    x, ni, y, no, g = P[k, X], P[k, NI], P[k, Y], P[k, NO], P[k, SCR]
    load_bias(W, P[k, BOFF], pad8(no), S, A, idx, m, g)
    times_x(desc, P, k, WOFF, no, x, ni, g, QM0)
    for i in range(m):
        finish(desc, P, k, W, S, L, idx[i] * A, g, y, no)
    return 0


@kernel()
def activation_kernel(desc, k, t):
    """Run Activation row ``P[k]``: copy x to y, then apply in place."""
    P, W, S, L, A, idx, m = views(desc)
    x, y, n = P[k, X], P[k, Y], P[k, NO]
    for i in range(m):
        b = idx[i] * A
        copy(S, b + x, S, b + y, n)
        finish(desc, P, k, W, S, L, b, y, y, n)
    return 0
