"""GRU step (gates r, z, n as PyTorch; ONNX's two reset variants).

    [r; z] = act_f(clip(W_rz [x; h] + b_rz))     W_rz: float32[2H, I+H], b_rz: float32[2H]
    linear_before_reset:
        n = act_g(clip(W_in x + b_in + r * (W_hn h + b_hn)))
    otherwise:
        n = act_g(clip(W_in x + b_in + W_hn (r * h) + b_hn))
    h' = (1 - z) * n + z * h

Weights as panels: W_rz at WOFF, W_in float32[H, I] at WIN, W_hn float32[H, H]
at WHN; a small layer with the reset after ``W_hn h`` has one block matrix at WOFF
instead (WIN < 0): ``[[W_rz], [W_in, 0], [0, W_hn]]`` over ``[x; h]``, its rows laid
out as the scratch, one product for the three gates (the zeros add exact zeros: the
same sums as three products). int8 with the reset after ``W_hn h``
(linear_before_reset): ``weight_ih`` and ``weight_hh`` whole at QM0, QM1, one product
for the three gates; otherwise W_rz's two halves, W_in, W_hn at QM0..QM3 (``W_hn (r *
h)`` waits for ``r``).
Scratch at SCR: rz, n_x, n_h and r*h as :func:`edgernn.kernels.layout.gru_scratch`
lays them out; the biases at BOFF, ``[b_rz | b_in | b_hn]`` (``b_rz = bias_ih +
bias_hh``), have the same padded layout as the first three. x at X (length NI), h (the
output) at Y.
"""

from numba import njit

from .abi import flag_nonfinite, gru_scratch, kernel, views
from .cache import CACHE
from .linalg import U, load_bias, matvec
from .mathfn import act, clip_inplace, sigmoid_fast, tanh_fast
from .optable import (
    ACT_CODE,
    AG,
    BOFF,
    F_CLIP,
    F_LBR,
    FLAGS,
    NI,
    NO,
    PAR,
    QM0,
    QM1,
    QM2,
    QM3,
    SCR,
    WHN,
    WIN,
    WOFF,
    X,
    Y,
)
from .qlinalg import gates_xh, gru_gates_int8, times_h, times_x


@njit(cache=CACHE, error_model="numpy", fastmath={"reassoc", "contract"}, inline="always")
def _gru_fused_lbr(S, rz, nx, nh, h, H):
    rz, nx, nh, h, H = U(rz), U(nx), U(nh), U(h), U(H)
    bad = S[h] - S[h]
    for j in range(H):
        r = sigmoid_fast(S[rz + j])
        z = sigmoid_fast(S[rz + H + j])
        n = tanh_fast(S[nx + j] + r * S[nh + j])
        hn = n + z * (S[h + j] - n)
        S[h + j] = hn
        bad += hn - hn
    return bad == 0


@njit(cache=CACHE, error_model="numpy", inline="always")
def _gru_general(desc, P, k, W, S, rz, nx, nh, h, H):
    flags = P[k, FLAGS]
    af, ag = P[k, ACT_CODE], P[k, AG]
    par = P[k, PAR]
    Hu, rzu, hu, nxu, nhu = U(H), U(rz), U(h), U(nx), U(nh)
    if flags & F_LBR:  # (reset-before: r, z were activated before W_hn (r * h))
        if flags & F_CLIP:
            clip_inplace(S, rz, 2 * H, W[par + 4])
        act(desc, P, W, S, rz, 2 * H, af, par)
        for j in range(Hu):
            S[nxu + j] += S[rzu + j] * S[nhu + j]
    else:
        for j in range(Hu):
            S[nxu + j] += S[nhu + j]
    if flags & F_CLIP:
        clip_inplace(S, nx, H, W[par + 4])
    act(desc, P, W, S, nx, H, ag, par + 2)
    zu = rzu + Hu
    bad = S[hu] - S[hu]
    for j in range(Hu):
        z = S[zu + j]
        hn = (1.0 - z) * S[nxu + j] + z * S[hu + j]
        S[hu + j] = hn
        bad += hn - hn
    return bad == 0


@njit(cache=CACHE, error_model="numpy", inline="always")
def _gates_lbr(desc, P, k, x, ni, h, H, rz, nx, nh, rh):
    """``[rz; n_x; n_h] += ...`` of a GRU whose reset comes after ``W_hn h``: one int8
    product, one float product of a small layer's block matrix (WIN < 0), or three."""
    if P[k, QM0] >= 0:
        gru_gates_int8(desc, P, k, x, h, rz, 2 * H, nx, nh)
    elif P[k, WIN] < 0:
        matvec(desc, P, P[k, WOFF], rh - rz, ni, H, x, h, rz)
    else:
        gates_xh(desc, P, k, WOFF, 2 * H, x, ni, h, H, rz, QM0, QM1)
        times_x(desc, P, k, WIN, H, x, ni, nx, QM2)
        times_h(desc, P, k, WHN, H, h, H, nh, QM3)


@kernel()
def gru_kernel(desc, k, t):
    """Run GRU row ``P[k]`` (linear_before_reset, default activations, no clip: one
    fused loop) for the descriptor's streams; a non-finite h raises the stream's flag."""
    P, W, S, L, A, idx, m = views(desc)
    x, ni, h, H, scr = P[k, X], P[k, NI], P[k, Y], P[k, NO], P[k, SCR]
    rz, nx, nh, rh, _ = gru_scratch(H)
    rz, nx, nh, rh = scr + rz, scr + nx, scr + nh, scr + rh
    load_bias(W, P[k, BOFF], rh - rz, S, A, idx, m, rz)
    _gates_lbr(desc, P, k, x, ni, h, H, rz, nx, nh, rh)
    for i in range(m):
        b = idx[i] * A
        if not _gru_fused_lbr(S, b + rz, b + nx, b + nh, b + h, H):
            flag_nonfinite(L, b)
    return 0


@kernel()
def gru_general_kernel(desc, k, t):
    """Run GRU row ``P[k]`` with either reset variant, any activations and clip;
    compiled only for models that use them."""
    P, W, S, L, A, idx, m = views(desc)
    x, ni, h, H, scr = P[k, X], P[k, NI], P[k, Y], P[k, NO], P[k, SCR]
    rz, nx, nh, rh, _ = gru_scratch(H)
    rz, nx, nh, rh = scr + rz, scr + nx, scr + nh, scr + rh
    flags = P[k, FLAGS]
    load_bias(W, P[k, BOFF], rh - rz, S, A, idx, m, rz)
    if flags & F_LBR:
        _gates_lbr(desc, P, k, x, ni, h, H, rz, nx, nh, rh)
    else:
        gates_xh(desc, P, k, WOFF, 2 * H, x, ni, h, H, rz, QM0, QM1)
        times_x(desc, P, k, WIN, H, x, ni, nx, QM2)
        par = P[k, PAR]
        for i in range(m):
            b = idx[i] * A
            if flags & F_CLIP:
                clip_inplace(S, b + rz, 2 * H, W[par + 4])
            act(desc, P, W, S, b + rz, 2 * H, P[k, ACT_CODE], par)
            r_, h_, rh_ = U(b + rz), U(b + h), U(b + rh)
            for j in range(U(H)):
                S[rh_ + j] = S[r_ + j] * S[h_ + j]
        times_h(desc, P, k, WHN, H, rh, H, nh, QM3)
    for i in range(m):
        b = idx[i] * A
        if not _gru_general(desc, P, k, W, S, b + rz, b + nx, b + nh, b + h, H):
            flag_nonfinite(L, b)
    return 0
