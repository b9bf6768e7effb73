"""Embedding lookup: ``y = W[token]`` with W: float32[NUM, NO] at WOFF.

The token id arrives as a float32 in ``S[X]`` (exact for ids below 2**24).
"""


from .abi import kernel, views
from .linalg import copy
from .optable import NO, NUM, WOFF, X, Y


@kernel()
def embedding_kernel(desc, k, t):
    """Run Embedding row ``P[k]``; returns -1 when an id is out of range."""
    P, W, S, L, A, idx, m = views(desc)
    num, no, y = P[k, NUM], P[k, NO], P[k, Y]
    for i in range(m):
        b = idx[i] * A
        tok = S[b + P[k, X]]
        if not (tok >= 0 and tok < num) or tok != int(tok):
            return -1
        copy(W, P[k, WOFF] + int(tok) * no, S, b + y, no)
    return 0

