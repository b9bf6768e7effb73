"""Padding of the last axis of a tensor seen as (rows, cols) (ONNX ``Pad``, TFLite ``PAD``).

    y[r, :] = [left pad (before) | x[r, :] | right pad (after)]        (rows, before + cols + after)

A negative ``before`` or ``after`` removes that many values there instead (a crop:
``y[r, :] = x[r, -before:cols + after]``).

Mode (column FUNC): CONSTANT (the value at ``W[PAR]``), REFLECT (mirrored without
repeating the edge: numpy's and ONNX's ``reflect``), EDGE (the edge repeated).
"""

from .abi import kernel, views
from .optable import FUNC, NI, PAR, X, Y
from .spec.pad import AFTER, BEFORE, COLS, CONSTANT, EDGE, REFLECT  # noqa: F401


@kernel()
def pad_kernel(desc, k, t):
    """Run the pad row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    mode, cols, pb, pe = P[k, FUNC], P[k, COLS], P[k, BEFORE], P[k, AFTER]
    value = W[P[k, PAR]]
    rows, wout = P[k, NI] // cols, pb + cols + pe
    for i in range(m):
        base = idx[i] * A
        for r in range(rows):
            x, y = base + P[k, X] + r * cols, base + P[k, Y] + r * wout
            for j in range(wout):
                p = j - pb
                if p < 0 or p >= cols:
                    if mode == CONSTANT:
                        S[y + j] = value
                        continue
                    if mode == REFLECT:
                        p = -p if p < 0 else 2 * (cols - 1) - p
                    else:
                        p = 0 if p < 0 else cols - 1
                S[y + j] = S[x + p]
    return 0
