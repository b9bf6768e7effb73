"""Elementwise math on one tensor: ``y = f(x)`` (column FUNC selects f).

    ABS: |x|          NEG: -x           SQRT: sqrt(x)       LOG: ln(x)
    EXP: e**x         RECIPROCAL: 1/x   SQUARE: x * x       POW: x ** alpha
    CLIP: min(max(x, alpha), beta)      MAX: max(x, alpha)  MIN: min(x, alpha)

x at X, y at Y (length NO, the same); ``alpha, beta`` float32 at ``W[PAR:PAR+2]``.
Out-of-domain inputs give what IEEE and ONNX give (``sqrt(-1)`` and ``log(-1)``
nan, ``log(0)`` -inf, ``1/0`` inf) and raise the stream's non-finite flag.
"""

import math

import numpy as np

from .abi import flag_nonfinite, kernel, views
from .linalg import U
from .mathfn import all_finite
from .optable import FUNC, NO, PAR, X, Y

#: the function of a row (column FUNC)
ABS, NEG, SQRT, LOG, EXP, RECIPROCAL, SQUARE, POW, CLIP, MAX, MIN = range(11)


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
        if not all_finite(S, b + P[k, Y], P[k, NO]):
            flag_nonfinite(L, b)
    return 0
