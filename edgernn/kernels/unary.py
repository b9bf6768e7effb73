"""Elementwise math on one tensor: ``y = f(x)`` (column FUNC selects f).

    ABS: |x|          NEG: -x           SQRT: sqrt(x)       LOG: ln(x)
    EXP: e**x         RECIPROCAL: 1/x   SQUARE: x * x       POW: x ** alpha
    CLIP: min(max(x, alpha), beta)      MAX: max(x, alpha)  MIN: min(x, alpha)
    ERF: erf(x) = 2 / sqrt(pi) * integral_0^x exp(-t**2) dt   (libm's, in float64)
    SIGN: 1 if x > 0, -1 if x < 0, else x (0, -0 and nan kept)
    FLOOR: the largest integer <= x    CEIL: the smallest integer >= x
    ROUND: the nearest integer, a half to the even one (ONNX Round, numpy.round)

x at X, y at Y (length NO, the same); ``alpha, beta`` float32 at ``W[PAR:PAR+2]``.
Out-of-domain inputs give what IEEE and ONNX give (``sqrt(-1)`` and ``log(-1)``
nan, ``log(0)`` -inf, ``1/0`` inf) and raise the stream's non-finite flag
(``erf(+-inf) = +-1``).
"""

import math

import numpy as np

from .abi import flag_nonfinite, kernel, views
from .linalg import U
from .mathfn import all_finite
from .optable import FUNC, NO, PAR, X, Y
from .spec.unary import (  # noqa: F401
    ABS,
    CEIL,
    CLIP,
    ERF,
    EXP,
    FLOOR,
    LOG,
    MAX,
    MIN,
    NEG,
    POW,
    RECIPROCAL,
    ROUND,
    SIGN,
    SQRT,
    SQUARE,
)


@kernel()
def unary_kernel(desc, k, t):
    """Run the unary row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    f, n = P[k, FUNC], U(P[k, NO])
    alpha, beta = W[P[k, PAR]], W[P[k, PAR] + 1]
    for i in range(m):
        b = idx[i] * A
        x, y = U(b + P[k, X]), U(b + P[k, Y])
        if f == ABS:
            for j in range(n):
                S[y + j] = abs(S[x + j])
        elif f == NEG:
            for j in range(n):
                S[y + j] = -S[x + j]
        elif f == SQRT:
            for j in range(n):
                S[y + j] = np.sqrt(S[x + j])
        elif f == LOG:
            for j in range(n):
                S[y + j] = np.log(S[x + j])
        elif f == EXP:
            for j in range(n):
                S[y + j] = np.exp(S[x + j])
        elif f == RECIPROCAL:
            for j in range(n):
                S[y + j] = np.float32(1.0) / S[x + j]
        elif f == SQUARE:
            for j in range(n):
                S[y + j] = S[x + j] * S[x + j]
        elif f == POW:
            for j in range(n):
                S[y + j] = np.float32(math.pow(S[x + j], alpha))
        elif f == CLIP:
            for j in range(n):
                S[y + j] = min(max(S[x + j], alpha), beta)
        elif f == MAX:
            for j in range(n):
                S[y + j] = max(S[x + j], alpha)
        elif f == MIN:
            for j in range(n):
                S[y + j] = min(S[x + j], alpha)
        elif f == ERF:
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
