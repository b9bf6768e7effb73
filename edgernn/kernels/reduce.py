"""Reductions over one axis of a tensor seen as (rows, cols) (ONNX ``Reduce*``,
TFLite ``MEAN``/``SUM``/``REDUCE_MAX``).

    axis -1: y[r] = f(x[r, :])   (rows outputs)      axis 0: y[c] = f(x[:, c])   (cols outputs)

``f`` (column FUNC): MEAN, SUM, MAX, MIN, L2 (``sqrt(sum x**2)``), SUM_SQUARE.
Sums are taken in float64 and rounded once; MEAN_LITERT is LiteRT's builtin
``MEAN``: a float32 sum in order, element by element, divided by the count in float32.
"""

import math

import numpy as np

from .abi import flag_nonfinite, kernel, views
from .mathfn import all_finite, strict_add, strict_div
from .optable import FUNC, NI, NO, X, Y
from .spec.reduce import (  # noqa: F401
    COLS,
    L2,
    LAST,
    MAX,
    MEAN,
    MEAN_LITERT,
    MIN,
    SUM,
    SUM_SQUARE,
)


@kernel()
def reduce_kernel(desc, k, t):
    """Run the reduction row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    f, cols, last = P[k, FUNC], P[k, COLS], P[k, LAST]
    rows = P[k, NI] // cols
    n_out, n_in = (rows, cols) if last else (cols, rows)
    step_in, step_out = (1, cols) if last else (cols, 1)   # along the axis, between outputs
    for i in range(m):
        base = idx[i] * A
        for o in range(n_out):
            x0 = base + P[k, X] + o * step_out
            if f == MAX or f == MIN:
                best = S[x0]
                for j in range(1, n_in):
                    v = S[x0 + j * step_in]
                    best = max(best, v) if f == MAX else min(best, v)
                S[base + P[k, Y] + o] = best
                continue
            if f == MEAN_LITERT:
                acc32 = np.float32(0.0)
                for j in range(n_in):
                    acc32 = strict_add(acc32, S[x0 + j * step_in])
                S[base + P[k, Y] + o] = strict_div(acc32, np.float32(n_in))
                continue
            acc = 0.0
            for j in range(n_in):
                v = float(S[x0 + j * step_in])
                acc += v * v if (f == L2 or f == SUM_SQUARE) else v
            if f == MEAN:
                acc /= n_in
            elif f == L2:
                acc = math.sqrt(acc)
            S[base + P[k, Y] + o] = np.float32(acc)
        if not all_finite(S, base + P[k, Y], P[k, NO]):
            flag_nonfinite(L, base)
    return 0
