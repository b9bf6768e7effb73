"""GRU step (gates r, z, n as PyTorch; ONNX's two reset variants).

    [r; z] = act_f(clip(W_rz [x; h] + b_rz))     W_rz: float32[2H, I+H], b_rz: float32[2H]
    linear_before_reset:
        n = act_g(clip(W_in x + b_in + r * (W_hn h + b_hn)))
    otherwise:
        n = act_g(clip(W_in x + b_in + W_hn (r * h) + b_hn))
    h' = (1 - z) * n + z * h

Weights as panels: W_rz at WOFF, W_in float32[H, I] at WIN, W_hn float32[H, H]
at WHN. Scratch at SCR, with ``R(n) = 8 * ceil(n / 8)``: rz float32[R(2H)],
n_x float32[R(H)], n_h float32[R(H)], r*h float32[H]; the biases at BOFF,
``[b_rz | b_in | b_hn]`` (``b_rz = bias_ih + bias_hh``), have the same padded
layout as the first three. x at X (length NI), h (the output) at Y.
"""

from numba import njit

from .linalg import U, load_bias, matvec
from .mathfn import apply_act, clip_inplace, sigmoid_fast, tanh_fast
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
    S_FLAG,
    SCR,
    WHN,
    WIN,
    WOFF,
    X,
    Y,
)


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
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


@njit(cache=True, error_model="numpy")
def _gru_general(P, k, W, S, rz, nx, nh, h, H):
    flags = P[k, FLAGS]
    af, ag = P[k, ACT_CODE], P[k, AG]
    par = P[k, PAR]
    Hu, rzu, hu, nxu, nhu = U(H), U(rz), U(h), U(nx), U(nh)
    if flags & F_LBR:  # (reset-before: r, z were activated before W_hn (r * h))
        if flags & F_CLIP:
            clip_inplace(S, rz, 2 * H, W[par + 4])
        apply_act(S, rz, 2 * H, af, W[par], W[par + 1])
        for j in range(Hu):
            S[nxu + j] += S[rzu + j] * S[nhu + j]
    else:
        for j in range(Hu):
            S[nxu + j] += S[nhu + j]
    if flags & F_CLIP:
        clip_inplace(S, nx, H, W[par + 4])
    apply_act(S, nx, H, ag, W[par + 2], W[par + 3])
    zu = rzu + Hu
    bad = S[hu] - S[hu]
    for j in range(Hu):
        z = S[zu + j]
        hn = (1.0 - z) * S[nxu + j] + z * S[hu + j]
        S[hu + j] = hn
        bad += hn - hn
    return bad == 0


@njit(cache=True, error_model="numpy")
def gru_f32(P, k, W, S, L, A, idx, m):
    """Run GRU row ``P[k]`` for streams ``idx[:m]``; a non-finite h raises the stream's flag."""
    x, ni, h, H, rz = P[k, X], P[k, NI], P[k, Y], P[k, NO], P[k, SCR]
    r2, r1 = -(-2 * H // 8) * 8, -(-H // 8) * 8
    nx = rz + r2
    nh = nx + r1
    rh = nh + r1
    flags = P[k, FLAGS]
    fused = flags == F_LBR and P[k, ACT_CODE] == 3 and P[k, AG] == 2
    load_bias(W, P[k, BOFF], r2 + 2 * r1, S, A, idx, m, rz)
    matvec(W, P[k, WOFF], 2 * H, ni, H, S, A, idx, m, x, h, rz)
    matvec(W, P[k, WIN], H, ni, 0, S, A, idx, m, x, x, nx)
    if flags & F_LBR:
        matvec(W, P[k, WHN], H, H, 0, S, A, idx, m, h, h, nh)
    else:
        par = P[k, PAR]
        for i in range(m):
            b = U(idx[i] * A)
            if flags & F_CLIP:
                clip_inplace(S, b + U(rz), 2 * H, W[par + 4])
            apply_act(S, b + U(rz), 2 * H, P[k, ACT_CODE], W[par], W[par + 1])
            for j in range(U(H)):
                S[b + U(rh) + j] = S[b + U(rz) + j] * S[b + U(h) + j]
        matvec(W, P[k, WHN], H, H, 0, S, A, idx, m, rh, rh, nh)
    for i in range(m):
        b = idx[i] * A
        if fused:
            ok = _gru_fused_lbr(S, b + rz, b + nx, b + nh, b + h, H)
        else:
            ok = _gru_general(P, k, W, S, b + rz, b + nx, b + nh, b + h, H)
        if not ok:
            L[U(b) // U(2) + U(S_FLAG)] = 1
