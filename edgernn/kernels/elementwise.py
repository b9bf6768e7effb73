"""Elementwise binary ops on two tensors, or a tensor and a constant.

    ADD: y = a + b      SUB: y = a - b      MUL: y = a * b      DIV: y = a / b

(column FUNC)

``a`` at X (length NO); ``b`` at X2 in the stream's arena, or, when CONST >= 0,
the constant float32[NO] at CONST in the weight arena (a scalar constant is
stored broadcast). A non-finite result raises the stream's non-finite flag.
"""


from .abi import flag_nonfinite, kernel, views
from .linalg import U
from .mathfn import all_finite
from .optable import CONST, FUNC, NO, X2, X, Y

#: the function of a row (column FUNC)
ADD, SUB, MUL, DIV = 0, 1, 2, 3


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
        if not all_finite(S, b + P[k, Y], P[k, NO]):
            flag_nonfinite(L, b)
    return 0
