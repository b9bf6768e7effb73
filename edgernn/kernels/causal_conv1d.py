"""Causal 1-D convolution over time (RNNoise 0.2's convolutions, TCNs).

With ``x_t`` float32[C_in] the step's input, ``K`` taps and dilation ``d``::

    y_t = act(b + sum_{j=0}^{K-1} W_j x_{t - (K-1-j) d})       W_j = weight[:, :, j]

(``torch.nn.Conv1d`` applied to the sequence padded with ``(K-1) d`` zero frames
on the left: the first steps see zeros). The last ``(K-1) d`` inputs are the
op's state, oldest first, at HIST; reset zeroes them. Per step: the K taps are
gathered into a window float32[K * C_in] (tap-major) in the scratch after the
output's ``pad8(C_out)`` floats, ``y = W2 @ window + b`` with ``W2[o, j C_in + c] =
weight[o, c, j]`` as panels at WOFF (bias at BOFF), then the activation, and
the history shifts by one frame. Both ``step`` and ``run`` take this path, so
they agree bit for bit.
"""

from .abi import kernel, pad8, views
from .dense import finish
from .linalg import copy, load_bias
from .optable import BOFF, NI, NO, QM0, SCR, WOFF, X, Y
from .qlinalg import times_x
from .spec.causal_conv1d import DIL, HIST, KSIZE  # noqa: F401


@kernel()
def causal_conv1d_kernel(desc, k, t):
    """Run the causal-convolution row ``P[k]`` for the descriptor's streams."""
    P, W, S, L, A, idx, m = views(desc)
    x, ci, co, scr = P[k, X], P[k, NI], P[k, NO], P[k, SCR]
    hist, K, d = P[k, HIST], P[k, KSIZE], P[k, DIL]
    nh = (K - 1) * d                   # frames of history
    win = scr + pad8(co)
    for i in range(m):
        b = idx[i] * A
        for j in range(K):
            f = j * d
            copy(S, b + (hist + f * ci if f < nh else x), S, b + win + j * ci, ci)
    load_bias(W, P[k, BOFF], pad8(co), S, A, idx, m, scr)
    times_x(desc, P, k, WOFF, co, win, K * ci, scr, QM0)
    for i in range(m):
        b = idx[i] * A
        finish(desc, P, k, W, S, L, b, scr, P[k, Y], co)
        if nh > 0:
            copy(S, b + hist + ci, S, b + hist, (nh - 1) * ci)   # oldest frame out
            copy(S, b + x, S, b + hist + (nh - 1) * ci, ci)      # this input in
    return 0
