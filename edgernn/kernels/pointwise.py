"""Elementwise functions of one tensor: ``y = f(x)`` (column FUNC selects f).

    ERF:   erf(x) = 2 / sqrt(pi) * integral_0^x exp(-t**2) dt   (libm's, in float64)
    SIGN:  1 if x > 0, -1 if x < 0, else x (0, -0 and nan kept)
    FLOOR: the largest integer <= x        CEIL: the smallest integer >= x
    ROUND: the nearest integer, a half to the even one (ONNX Round, numpy.round)

x at X, y at Y (length NO, the same). Infinities and nan pass through as IEEE
gives them (erf(+-inf) = +-1); a non-finite output raises the stream's
non-finite flag.
"""

import math

import numpy as np

from .abi import flag_nonfinite, kernel, views
from .linalg import U
from .mathfn import all_finite
from .optable import FUNC, NO, X, Y

#: the function of a row (column FUNC)
ERF, SIGN, FLOOR, CEIL, ROUND = range(5)


@kernel()
def pointwise_kernel(desc, k, t):
    """Run the pointwise row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    f, n = P[k, FUNC], U(P[k, NO])
    for i in range(m):
        b = idx[i] * A
        x, y = U(b + P[k, X]), U(b + P[k, Y])
        if f == ERF:
            for j in range(n):
                S[y + j] = np.float32(math.erf(float(S[x + j])))
        elif f == SIGN:
            for j in range(n):
                v = S[x + j]
                S[y + j] = np.float32(1.0) if v > 0 else (np.float32(-1.0) if v < 0 else v)
        elif f == FLOOR:
            for j in range(n):
                S[y + j] = np.floor(S[x + j])
        elif f == CEIL:
            for j in range(n):
                S[y + j] = np.ceil(S[x + j])
        elif f == ROUND:
            for j in range(n):
                v = S[x + j]
                r = np.floor(v)
                d = v - r
                if d > np.float32(0.5) or (d == np.float32(0.5) and
                                           np.fmod(r, np.float32(2.0)) != 0):
                    r += np.float32(1.0)
                S[y + j] = r
        if not all_finite(S, b + P[k, Y], P[k, NO]):
            flag_nonfinite(L, b)
    return 0
