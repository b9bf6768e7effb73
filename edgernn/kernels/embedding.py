"""Embedding lookup: ``y = W[token]`` with W: float32[E_NUM, NO] at E_WOFF.

The token id arrives as a float32 in ``S[X]`` (exact for ids below 2**24).
"""

from numba import njit

from .linalg import copy
from .optable import E_NUM, E_WOFF, NO, X, Y


@njit(cache=True, error_model="numpy")
def embedding_f32(P, k, W, S):
    """Run Embedding op row ``P[k]``; returns False when the id is out of range."""
    tok = S[P[k, X]]
    num = P[k, E_NUM]
    if not (tok >= 0 and tok < num) or tok != int(tok):
        return False
    no, y = P[k, NO], P[k, Y]
    base = P[k, E_WOFF] + int(tok) * no
    copy(W, base, S, y, no)
    return True
