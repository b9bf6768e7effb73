"""Elementwise binary ops on two tensors, or a tensor and a constant.

    ADD: y = a + b      SUB: y = a - b      MUL: y = a * b      DIV: y = a / b

(column FUNC)

``a`` at X (length NI); ``b`` at X2 (length NI2) in the stream's arena, or, when
CONST >= 0, the constant float32[NO] at CONST in the weight arena (a scalar
constant is stored broadcast). A tensor operand of length 1 when the output has
NO > 1 is one value per step, broadcast (``x - mean(x)``). A non-finite result
raises the stream's non-finite flag.
"""

from numba import njit

from .abi import flag_nonfinite, kernel, views
from .cache import CACHE
from .linalg import U
from .mathfn import all_finite
from .optable import CONST, FUNC, NI, NI2, NO, X2, X, Y
from .spec.elementwise import ADD, DIV, MUL, SUB  # noqa: F401


@njit(cache=CACHE, error_model="numpy", inline="always")
def _apply(op, u, v):
    if op == ADD:
        return u + v
    if op == SUB:
        return u - v
    if op == MUL:
        return u * v
    return u / v


@njit(cache=CACHE, error_model="numpy", inline="always")
def _same(S, src, op, a, o, y, n):
    """Operands of one length: one loop per function (they vectorise)."""
    if op == ADD:
        for j in range(n):
            S[y + j] = S[a + j] + src[o + j]
    elif op == SUB:
        for j in range(n):
            S[y + j] = S[a + j] - src[o + j]
    elif op == MUL:
        for j in range(n):
            S[y + j] = S[a + j] * src[o + j]
    elif op == DIV:
        for j in range(n):
            S[y + j] = S[a + j] / src[o + j]


@kernel()
def binary_kernel(desc, k, t):
    """Run the ADD/SUB/MUL/DIV row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    op, n = P[k, FUNC], U(P[k, NO])
    const = P[k, CONST]
    for i in range(m):
        b = idx[i] * A
        a, y = U(b + P[k, X]), U(b + P[k, Y])
        if const >= 0:
            src, o = W, U(const)
        else:
            src, o = S, U(b + P[k, X2])
        if P[k, NI] == n and (const >= 0 or P[k, NI2] == n):
            _same(S, src, op, a, o, y, n)
        else:  # one operand is one value per step
            sa = U(0) if P[k, NI] == 1 else U(1)
            sb = U(0) if const < 0 and P[k, NI2] == 1 else U(1)
            for j in range(n):
                S[y + j] = _apply(op, S[a + sa * j], src[o + sb * j])
        if not all_finite(S, b + P[k, Y], P[k, NO]):
            flag_nonfinite(L, b)
    return 0
