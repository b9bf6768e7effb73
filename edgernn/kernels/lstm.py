"""LSTM step (gates i, f, g, o as PyTorch; ONNX options on the general path).

    [i; f; g; o] = W [x; h] + b                 W: float32[4H, I+H], b: float32[4H]
    i += p_i * c ; f += p_f * c                 (peephole, p: float32[3, H] at L_PEEP)
    i, f, g = clip(i, f, g)                      (ONNX clip)
    i = act_f(i) ; f = act_f(f) or 1 - i (input_forget) ; g = act_g(g)
    c' = clip(f * c + i * g, cell_clip)
    o = act_f(clip(o + p_o * c'))
    h' = o * act_h(c')

x sits at X (length I = NI), h right after it, c at L_COFF; scratch float32[4H]
at L_GOFF. With the default activations and no options a single fused loop runs.
"""

from numba import njit

from .linalg import U, copy, fill, load_bias, matvec_acc
from .mathfn import all_finite, apply_act, clip_inplace, sigmoid_fast, tanh_fast
from .optable import (
    BOFF,
    F_CELL_CLIP,
    F_CLIP,
    F_INPUT_FORGET,
    F_PEEPHOLE,
    L_AF,
    L_AG,
    L_AH,
    L_COFF,
    L_FLAGS,
    L_GOFF,
    L_PAR,
    L_PEEP,
    NI,
    NO,
    WOFF,
    X,
    Y,
)


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _lstm_fused(S, g, c, h, y, H):
    g, c, h, y, H = U(g), U(c), U(h), U(y), U(H)
    for j in range(H):
        i = sigmoid_fast(S[g + j])
        f = sigmoid_fast(S[g + H + j])
        cn = f * S[c + j] + i * tanh_fast(S[g + U(2) * H + j])
        S[c + j] = cn
        hn = sigmoid_fast(S[g + U(3) * H + j]) * tanh_fast(cn)
        S[h + j] = hn
        S[y + j] = hn


@njit(cache=True, error_model="numpy")
def _lstm_general(P, k, W, S, g, c, h, H):
    flags = P[k, L_FLAGS]
    par = P[k, L_PAR]
    af, ag, ah = P[k, L_AF], P[k, L_AG], P[k, L_AH]
    gu, cu, hu, Hu = U(g), U(c), U(h), U(H)
    gf, gg, go = gu + Hu, gu + U(2) * Hu, gu + U(3) * Hu
    if flags & F_PEEPHOLE:
        pp = U(P[k, L_PEEP])
        for j in range(Hu):
            S[gu + j] += W[pp + j] * S[cu + j]
            S[gf + j] += W[pp + Hu + j] * S[cu + j]
    if flags & F_CLIP:
        clip_inplace(S, g, 3 * H, W[par + 6])
    apply_act(S, g, H, af, W[par], W[par + 1])
    coupled = flags & F_INPUT_FORGET
    if not coupled:
        apply_act(S, g + H, H, af, W[par], W[par + 1])
    apply_act(S, g + 2 * H, H, ag, W[par + 2], W[par + 3])
    lim = W[par + 7]
    cclip = flags & F_CELL_CLIP
    for j in range(Hu):
        i = S[gu + j]
        f = 1.0 - i if coupled else S[gf + j]
        cn = f * S[cu + j] + i * S[gg + j]
        if cclip:
            cn = min(max(cn, -lim), lim)
        S[cu + j] = cn
    if flags & F_PEEPHOLE:
        po = U(P[k, L_PEEP]) + U(2) * Hu
        for j in range(Hu):
            S[go + j] += W[po + j] * S[cu + j]
    if flags & F_CLIP:
        clip_inplace(S, g + 3 * H, H, W[par + 6])
    apply_act(S, g + 3 * H, H, af, W[par], W[par + 1])
    copy(S, c, S, g + 2 * H, H)
    apply_act(S, g + 2 * H, H, ah, W[par + 4], W[par + 5])
    for j in range(Hu):
        S[hu + j] = S[go + j] * S[gg + j]


@njit(cache=True, error_model="numpy")
def lstm_f32(P, k, W, S):
    """Run LSTM op row ``P[k]``; returns False (and zeroes h, c) if they became non-finite."""
    x, ni, y, H = P[k, X], P[k, NI], P[k, Y], P[k, NO]
    h = x + ni
    g, c = P[k, L_GOFF], P[k, L_COFF]
    load_bias(W, P[k, BOFF], S, g, 4 * H)
    matvec_acc(W, P[k, WOFF], 4 * H, ni + H, S, x, g)
    if P[k, L_FLAGS] == 0 and P[k, L_AF] == 3 and P[k, L_AG] == 2 and P[k, L_AH] == 2:
        _lstm_fused(S, g, c, h, y, H)
    else:
        _lstm_general(P, k, W, S, g, c, h, H)
        copy(S, h, S, y, H)
    if all_finite(S, h, H) and all_finite(S, c, H):
        return True
    fill(S, h, H, 0.0)
    fill(S, c, H, 0.0)
    return False
