"""1-D convolution within a step (ONNX ``Conv`` on [1, C, L], Silero's STFT and encoder).

The input at X is ``x: float32[C_in, L_in]`` (row-major, flat), the output at Y
``y: float32[C_out, L_out]`` with ``L_out = (L_in + pb + pe - d (K - 1) - 1) // s + 1``::

    y[o, l] = act(b[o] + sum_{c < C_in/G} sum_{j < K} W[o, c, j] x[g(o) C_in/G + c, l s + j d - pb])

(zero outside ``0 <= . < L_in``; ``g(o) = o // (C_out / G)`` its group). ``W``
float32[C_out, C_in/G, K] as stored, at WOFF; ``b`` at BOFF (-1: none).
"""

from .abi import flag_nonfinite, kernel, views
from .linalg import U
from .mathfn import act, all_finite
from .optable import ACT_CODE, BOFF, C0, NO, PAR, WOFF, X, Y

#: op-specific columns: L_in, K, stride, dilation, left padding, groups, C_in, C_out
LIN, KSIZE, STRIDE, DIL, PADB, GROUPS, CIN, COUT = range(C0 + 5, C0 + 13)


@kernel()
def conv1d_kernel(desc, k, t):
    """Run the convolution row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    lin, K, s, d, pb = P[k, LIN], P[k, KSIZE], P[k, STRIDE], P[k, DIL], P[k, PADB]
    G, ci, co, n = P[k, GROUPS], P[k, CIN], P[k, COUT], P[k, NO]
    w0, b0 = P[k, WOFF], P[k, BOFF]
    cig, per, lout = ci // G, co // G, n // co
    for i in range(m):
        base = idx[i] * A
        x, y = base + P[k, X], base + P[k, Y]
        for o in range(co):
            cb = (o // per) * cig
            bias = W[b0 + o] if b0 >= 0 else W[w0] * 0  # (a float32 zero)
            for l in range(lout):
                acc = bias
                for c in range(cig):
                    wrow = U(w0 + (o * cig + c) * K)
                    xrow = U(x + (cb + c) * lin)
                    p0 = l * s - pb
                    for j in range(K):
                        p = p0 + j * d
                        if p >= 0 and p < lin:
                            acc += W[wrow + U(j)] * S[xrow + U(p)]
                S[U(y + o * lout + l)] = acc
        act(desc, P, W, S, y, n, P[k, ACT_CODE], P[k, PAR])
        if not all_finite(S, y, n):
            flag_nonfinite(L, base)
    return 0
