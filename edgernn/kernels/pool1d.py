"""Max and average pooling within a step (ONNX ``MaxPool`` / ``AveragePool`` on [1, C, L]).

The input at X is ``x: float32[C, L_in]`` (row-major, flat), the output at Y
``y: float32[C, L_out]``, ``L_out = (L_in + pb + pe - d (K - 1) - 1) // s + 1``.
The window of output ``l`` holds the positions ``p_j = l s + j d - pb`` (``j < K``)
that fall inside ``0 <= p_j < L_in``; ``n`` is their count::

    MAX: y[c, l] = max_j x[c, p_j]
    AVG: y[c, l] = (sum_j x[c, p_j]) / (K if count_include_pad else n)

(the sum in float32, in any order). Padding positions never take part in the max
(ONNX pads MaxPool with -inf).
"""

import numpy as np

from .abi import flag_nonfinite, kernel, views
from .linalg import U
from .mathfn import all_finite
from .optable import FUNC, NO, X, Y
from .spec.pool1d import AVG, CH, DIL, INCL, KSIZE, LIN, LOUT, MAX, PADB, STRIDE  # noqa: F401


@kernel()
def pool1d_kernel(desc, k, t):
    """Run the pooling row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    f, lin, K, s, d = P[k, FUNC], P[k, LIN], P[k, KSIZE], P[k, STRIDE], P[k, DIL]
    pb, C, lout, incl = P[k, PADB], P[k, CH], P[k, LOUT], P[k, INCL]
    for i in range(m):
        b = idx[i] * A
        for c in range(C):
            x, y = U(b + P[k, X] + c * lin), U(b + P[k, Y] + c * lout)
            for o in range(lout):
                acc = np.float32(-np.inf) if f == MAX else np.float32(0.0)
                n = 0
                for j in range(K):
                    p = o * s + j * d - pb
                    if 0 <= p < lin:
                        v = S[x + U(p)]
                        n += 1
                        if f == MAX:
                            if v > acc or v != v:
                                acc = v
                        else:
                            acc += v
                if f == AVG:
                    acc = acc / np.float32(K if incl else n)
                S[y + U(o)] = acc
        if not all_finite(S, b + P[k, Y], P[k, NO]):
            flag_nonfinite(L, b)
    return 0
