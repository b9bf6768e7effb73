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

from .linalg import copy, load_bias, matvec_acc
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


@njit(cache=True, fastmath={"reassoc", "contract"})
def _lstm_fused(S, g, c, h, y, H):
    gi, gf = S[g:g + H], S[g + H:g + 2 * H]
    gg, go = S[g + 2 * H:g + 3 * H], S[g + 3 * H:g + 4 * H]
    cv, hv, yv = S[c:c + H], S[h:h + H], S[y:y + H]
    for j in range(H):
        i = sigmoid_fast(gi[j])
        f = sigmoid_fast(gf[j])
        cn = f * cv[j] + i * tanh_fast(gg[j])
        cv[j] = cn
        hn = sigmoid_fast(go[j]) * tanh_fast(cn)
        hv[j] = hn
        yv[j] = hn


@njit(cache=True)
def _lstm_general(P, k, W, S, g, c, h, H):
    flags = P[k, L_FLAGS]
    par = P[k, L_PAR]
    af, ag, ah = P[k, L_AF], P[k, L_AG], P[k, L_AH]
    pp = P[k, L_PEEP]
    gi, gf = S[g:g + H], S[g + H:g + 2 * H]
    gg, go = S[g + 2 * H:g + 3 * H], S[g + 3 * H:g + 4 * H]
    cv, hv = S[c:c + H], S[h:h + H]
    if flags & F_PEEPHOLE:
        pi, pf = W[pp:pp + H], W[pp + H:pp + 2 * H]
        for j in range(H):
            gi[j] += pi[j] * cv[j]
            gf[j] += pf[j] * cv[j]
    if flags & F_CLIP:
        clip_inplace(S, g, 3 * H, W[par + 6])
    apply_act(S, g, H, af, W[par], W[par + 1])
    if not flags & F_INPUT_FORGET:
        apply_act(S, g + H, H, af, W[par], W[par + 1])
    apply_act(S, g + 2 * H, H, ag, W[par + 2], W[par + 3])
    lim = W[par + 7]
    coupled = flags & F_INPUT_FORGET
    for j in range(H):
        i = gi[j]
        f = 1.0 - i if coupled else gf[j]
        cn = f * cv[j] + i * gg[j]
        if flags & F_CELL_CLIP:
            cn = min(max(cn, -lim), lim)
        cv[j] = cn
    if flags & F_PEEPHOLE:
        po = W[pp + 2 * H:pp + 3 * H]
        for j in range(H):
            go[j] += po[j] * cv[j]
    o = g + 3 * H
    if flags & F_CLIP:
        clip_inplace(S, o, H, W[par + 6])
    apply_act(S, o, H, af, W[par], W[par + 1])
    copy(S, c, S, g + 2 * H, H)
    apply_act(S, g + 2 * H, H, ah, W[par + 4], W[par + 5])
    for j in range(H):
        hv[j] = go[j] * gg[j]


@njit(cache=True)
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
    S[h:h + H] = 0.0  # rare path
    S[c:c + H] = 0.0
    return False
