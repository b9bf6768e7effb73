"""GRU step (gates r, z, n as PyTorch; ONNX's two reset variants).

    [r; z] = act_f(clip(W_rz [x; h] + b_rz))     W_rz: float32[2H, I+H], b_rz: float32[2H]
    linear_before_reset:
        n = act_g(clip(W_in x + b_in + r * (W_hn h + b_hn)))
    otherwise:
        n = act_g(clip(W_in x + b_in + W_hn (r * h) + b_hn))
    h' = (1 - z) * n + z * h

Weights: W_rz at WOFF, W_in float32[H, I] at G_WIN, W_hn float32[H, H] at G_WHN.
Biases at BOFF: b_rz (``bias_ih + bias_hh``), b_in, b_hn: float32[4H].
Scratch float32[5H] at G_GOFF: r, z, n_x, n_h, r*h.
"""

from numba import njit

from .linalg import U, fill, load_bias, matvec_acc
from .mathfn import all_finite, apply_act, clip_inplace, sigmoid_fast, tanh_fast
from .optable import (
    BOFF,
    F_CLIP,
    F_LBR,
    G_AF,
    G_AG,
    G_FLAGS,
    G_GOFF,
    G_PAR,
    G_WHN,
    G_WIN,
    NI,
    NO,
    WOFF,
    X,
    Y,
)


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _gru_fused_lbr(S, g, h, y, H):
    g, h, y, H = U(g), U(h), U(y), U(H)
    for j in range(H):
        r = sigmoid_fast(S[g + j])
        z = sigmoid_fast(S[g + H + j])
        n = tanh_fast(S[g + U(2) * H + j] + r * S[g + U(3) * H + j])
        hn = n + z * (S[h + j] - n)
        S[h + j] = hn
        S[y + j] = hn


@njit(cache=True, error_model="numpy")
def gru_f32(P, k, W, S):
    """Run GRU op row ``P[k]``; returns False (and zeroes h) if h became non-finite."""
    x, ni, y, H = P[k, X], P[k, NI], P[k, Y], P[k, NO]
    h = x + ni
    g = P[k, G_GOFF]
    flags = P[k, G_FLAGS]
    af, ag = P[k, G_AF], P[k, G_AG]
    par = P[k, G_PAR]
    nx, nh, rh = g + 2 * H, g + 3 * H, g + 4 * H
    w_hn = P[k, G_WHN]
    load_bias(W, P[k, BOFF], S, g, 4 * H)
    matvec_acc(W, P[k, WOFF], 2 * H, ni + H, S, x, g)
    matvec_acc(W, P[k, G_WIN], H, ni, S, x, nx)
    if flags == F_LBR and af == 3 and ag == 2:
        matvec_acc(W, w_hn, H, H, S, h, nh)
        _gru_fused_lbr(S, g, h, y, H)
    else:
        Hu, gu, hu, nxu, nhu, rhu = U(H), U(g), U(h), U(nx), U(nh), U(rh)
        if flags & F_CLIP:
            clip_inplace(S, g, 2 * H, W[par + 4])
        apply_act(S, g, 2 * H, af, W[par], W[par + 1])
        if flags & F_LBR:
            matvec_acc(W, w_hn, H, H, S, h, nh)
            for j in range(Hu):
                S[nxu + j] += S[gu + j] * S[nhu + j]
        else:
            for j in range(Hu):
                S[rhu + j] = S[gu + j] * S[hu + j]
            matvec_acc(W, w_hn, H, H, S, rh, nh)
            for j in range(Hu):
                S[nxu + j] += S[nhu + j]
        if flags & F_CLIP:
            clip_inplace(S, nx, H, W[par + 4])
        apply_act(S, nx, H, ag, W[par + 2], W[par + 3])
        zu, yu = gu + Hu, U(y)
        for j in range(Hu):
            z = S[zu + j]
            hn = (1.0 - z) * S[nxu + j] + z * S[hu + j]
            S[hu + j] = hn
            S[yu + j] = hn
    if all_finite(S, h, H):
        return True
    fill(S, h, H, 0.0)
    return False
