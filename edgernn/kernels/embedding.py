"""Embedding lookup: ``y = W[token]`` with W: float32[NUM, NO] at WOFF.

The token id arrives as a float32 in ``S[X]`` (exact for ids below 2**24).
"""

from numba import njit

from .linalg import copy
from .optable import NO, NUM, WOFF, X, Y


@njit(cache=True, error_model="numpy")
def embedding_f32(P, k, W, S, A, idx, m):
    """Run Embedding row ``P[k]``; returns False when an id is out of range."""
    num, no, y = P[k, NUM], P[k, NO], P[k, Y]
    for i in range(m):
        b = idx[i] * A
        tok = S[b + P[k, X]]
        if not (tok >= 0 and tok < num) or tok != int(tok):
            return False
        copy(W, P[k, WOFF] + int(tok) * no, S, b + y, no)
    return True
