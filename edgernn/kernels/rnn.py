"""Elman RNN step.

    h' = act(clip(W [x; h] + b))

W: panels of float32[H, I + H] at WOFF (``[weight_ih | weight_hh]``), b: float32[R8]
(``bias_ih + bias_hh``) at BOFF; x at X (length I = NI), h (the output) at Y,
scratch float32[R8] at SCR. A non-finite h raises the stream's flag.
"""


from .abi import flag_nonfinite, kernel, pad8, views
from .linalg import copy, load_bias
from .mathfn import act, all_finite, clip_inplace
from .optable import ACT_CODE, BOFF, F_CLIP, FLAGS, NI, NO, PAR, QM0, QM1, SCR, WOFF, X, Y
from .qlinalg import gates_xh


@kernel()
def rnn_kernel(desc, k, t):
    """Run RNN row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    x, ni, h, hs, g = P[k, X], P[k, NI], P[k, Y], P[k, NO], P[k, SCR]
    par = P[k, PAR]
    load_bias(W, P[k, BOFF], pad8(hs), S, A, idx, m, g)
    gates_xh(desc, P, k, WOFF, hs, x, ni, h, hs, g, QM0, QM1)
    for i in range(m):
        b = idx[i] * A
        if P[k, FLAGS] & F_CLIP:
            clip_inplace(S, b + g, hs, W[par + 2])
        act(desc, P, W, S, b + g, hs, P[k, ACT_CODE], par)
        if not all_finite(S, b + g, hs):
            flag_nonfinite(L, b)
        copy(S, b + g, S, b + h, hs)
    return 0
