"""Elementwise binary ops on two tensors, or a tensor and a constant.

    ADD: y = a + b      SUB: y = a - b      MUL: y = a * b

``a`` at X (length NO); ``b`` at X2 in the stream's arena, or, when CONST >= 0,
the constant float32[NO] at CONST in the weight arena (a scalar constant is
stored broadcast). A non-finite result raises the stream's non-finite flag.
"""

from numba import njit

from .linalg import U
from .mathfn import all_finite
from .optable import ADD, CONST, MUL, NO, OP, S_FLAG, SUB, X2, X, Y


@njit(cache=True, error_model="numpy")
def binary_f32(P, k, W, S, L, A, idx, m):
    """Run ADD/SUB/MUL row ``P[k]`` for streams ``idx[:m]``."""
    op, n = P[k, OP], U(P[k, NO])
    const = P[k, CONST]
    for i in range(m):
        b = U(idx[i] * A)
        a, y = b + U(P[k, X]), b + U(P[k, Y])
        if const >= 0:
            src, o = W, U(const)
        else:
            src, o = S, b + U(P[k, X2])
        if op == ADD:
            for j in range(n):
                S[y + j] = S[a + j] + src[o + j]
        elif op == SUB:
            for j in range(n):
                S[y + j] = S[a + j] - src[o + j]
        elif op == MUL:
            for j in range(n):
                S[y + j] = S[a + j] * src[o + j]
        if not all_finite(S, y, n):
            L[b // U(2) + U(S_FLAG)] = 1
