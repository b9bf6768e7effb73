"""LSTM step (gates i, f, g, o as PyTorch; ONNX options on the general path).

    [i; f; g; o] = W [x; h] + b                 W: float32[4H, I+H], b: float32[4H]
    i += p_i * c ; f += p_f * c                 (peephole, p: float32[3, H] at PEEP)
    i, f, g = clip(i, f, g)                      (ONNX clip)
    i = act_f(i) ; f = act_f(f) or 1 - i (input_forget) ; g = act_g(g)
    c' = clip(f * c + i * g, cell_clip)
    o = act_f(clip(o + p_o * c'))
    h' = o * act_h(c')

x at X (length I = NI), h (the output) at Y, c at STATE_C, gates in the scratch
float32[R8(4H)] at SCR; W as panels at WOFF, b (``bias_ih + bias_hh``) at BOFF.
With the default activations and no options one fused loop runs.
"""

from numba import njit

from .linalg import U, copy, load_bias, matvec
from .mathfn import all_finite, apply_act, clip_inplace, sigmoid_fast, tanh_fast
from .optable import (
    ACT_CODE,
    AG,
    AH,
    BOFF,
    F_CELL_CLIP,
    F_CLIP,
    F_INPUT_FORGET,
    F_PEEPHOLE,
    FLAGS,
    NI,
    NO,
    PAR,
    PEEP,
    S_FLAG,
    SCR,
    STATE_C,
    WOFF,
    X,
    Y,
)


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _lstm_fused(S, g, c, h, H):
    g, c, h, H = U(g), U(c), U(h), U(H)
    bad = S[g] - S[g]
    for j in range(H):
        i = sigmoid_fast(S[g + j])
        f = sigmoid_fast(S[g + H + j])
        cn = f * S[c + j] + i * tanh_fast(S[g + U(2) * H + j])
        S[c + j] = cn
        hn = sigmoid_fast(S[g + U(3) * H + j]) * tanh_fast(cn)
        S[h + j] = hn
        bad += cn - cn
    return bad == 0


@njit(cache=True, error_model="numpy")
def _lstm_general(P, k, W, S, g, c, h, H):
    flags = P[k, FLAGS]
    par = P[k, PAR]
    af, ag, ah = P[k, ACT_CODE], P[k, AG], P[k, AH]
    gu, cu, hu, Hu = U(g), U(c), U(h), U(H)
    gf, gg, go = gu + Hu, gu + U(2) * Hu, gu + U(3) * Hu
    if flags & F_PEEPHOLE:
        pp = U(P[k, PEEP])
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
        po = U(P[k, PEEP]) + U(2) * Hu
        for j in range(Hu):
            S[go + j] += W[po + j] * S[cu + j]
    if flags & F_CLIP:
        clip_inplace(S, g + 3 * H, H, W[par + 6])
    apply_act(S, g + 3 * H, H, af, W[par], W[par + 1])
    copy(S, c, S, g + 2 * H, H)
    apply_act(S, g + 2 * H, H, ah, W[par + 4], W[par + 5])
    for j in range(Hu):
        S[hu + j] = S[go + j] * S[gg + j]
    return all_finite(S, h, H) and all_finite(S, c, H)


@njit(cache=True, error_model="numpy")
def lstm_f32(P, k, W, S, L, A, idx, m):
    """Run LSTM row ``P[k]`` for streams ``idx[:m]``; non-finite h or c raises the stream's flag."""
    x, ni, h, H, g, c = P[k, X], P[k, NI], P[k, Y], P[k, NO], P[k, SCR], P[k, STATE_C]
    load_bias(W, P[k, BOFF], -(-4 * H // 8) * 8, S, A, idx, m, g)
    matvec(W, P[k, WOFF], 4 * H, ni, H, S, A, idx, m, x, h, g)
    fused = P[k, FLAGS] == 0 and P[k, ACT_CODE] == 3 and P[k, AG] == 2 and P[k, AH] == 2
    for i in range(m):
        b = idx[i] * A
        if fused:
            ok = _lstm_fused(S, b + g, b + c, b + h, H)
        else:
            ok = _lstm_general(P, k, W, S, b + g, b + c, b + h, H)
        if not ok:
            L[U(b) // U(2) + U(S_FLAG)] = 1
