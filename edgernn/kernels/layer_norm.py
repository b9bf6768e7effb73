"""Layer normalisation over the last axis of a tensor seen as (rows, n).

Per row ``x: float32[n]`` (sums in float64)::

    mean = sum(x) / n          var = sum((x - mean)**2) / n           (population variance)
    y = (x - mean) / sqrt(var + eps) * gamma + beta

``gamma``/``beta`` float32[n] at WOFF/BOFF (-1: 1 and 0); ``eps`` at ``W[PAR]``.
DTLN's instant layer norm is this with ``eps = 1e-7``; ``torch.nn.LayerNorm`` and
ONNX ``LayerNormalization`` default to ``1e-5``.
"""

import math

import numpy as np

from .abi import flag_nonfinite, kernel, views
from .linalg import U
from .mathfn import all_finite
from .optable import BOFF, NO, PAR, WOFF, X, Y
from .spec.layer_norm import NORM  # noqa: F401


@kernel()
def layer_norm_kernel(desc, k, t):
    """Run the layer-norm row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    n, total = P[k, NORM], P[k, NO]
    g0, b0 = P[k, WOFF], P[k, BOFF]
    eps = float(W[P[k, PAR]])
    for i in range(m):
        base = idx[i] * A
        for r in range(total // n):
            x, y = U(base + P[k, X] + r * n), U(base + P[k, Y] + r * n)
            acc = 0.0
            for j in range(U(n)):
                acc += float(S[x + j])
            mean = acc / n
            acc = 0.0
            for j in range(U(n)):
                v = float(S[x + j]) - mean
                acc += v * v
            inv = 1.0 / math.sqrt(acc / n + eps)
            for j in range(U(n)):
                v = (float(S[x + j]) - mean) * inv
                if g0 >= 0:
                    v *= float(W[U(g0) + j])
                if b0 >= 0:
                    v += float(W[U(b0) + j])
                S[y + j] = np.float32(v)
        if not all_finite(S, base + P[k, Y], total):
            flag_nonfinite(L, base)
    return 0
