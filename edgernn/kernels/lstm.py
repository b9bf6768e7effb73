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

from .abi import flag_nonfinite, kernel, pad8, views
from .cache import CACHE
from .linalg import U, copy, load_bias
from .mathfn import act, all_finite, clip_inplace, sigmoid_fast, tanh_fast
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
    QM0,
    QM1,
    SCR,
    STATE_C,
    WOFF,
    X,
    Y,
)
from .qlinalg import gates_xh


@njit(cache=CACHE, error_model="numpy", fastmath={"reassoc", "contract"}, inline="always")
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


@njit(cache=CACHE, error_model="numpy", inline="always")
def _lstm_general(desc, P, k, W, S, g, c, h, H):
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
    act(desc, P, W, S, g, H, af, par)
    coupled = flags & F_INPUT_FORGET
    if not coupled:
        act(desc, P, W, S, g + H, H, af, par)
    act(desc, P, W, S, g + 2 * H, H, ag, par + 2)
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
    act(desc, P, W, S, g + 3 * H, H, af, par)
    copy(S, c, S, g + 2 * H, H)
    act(desc, P, W, S, g + 2 * H, H, ah, par + 4)
    for j in range(Hu):
        S[hu + j] = S[go + j] * S[gg + j]
    return all_finite(S, h, H) and all_finite(S, c, H)


@njit(cache=CACHE, error_model="numpy", inline="always")
def _gates(desc, P, k, W, S, A, idx, m):
    """Gate pre-activations ``W [x; h] + b`` into the scratch, for every stream."""
    H = P[k, NO]
    load_bias(W, P[k, BOFF], pad8(4 * H), S, A, idx, m, P[k, SCR])
    gates_xh(desc, P, k, WOFF, 4 * H, P[k, X], P[k, NI], P[k, Y], H, P[k, SCR], QM0, QM1)


@kernel()
def lstm_kernel(desc, k, t):
    """Run LSTM row ``P[k]`` (default activations, no options: one fused loop) for the
    descriptor's streams; a non-finite h or c raises the stream's flag."""
    P, W, S, L, A, idx, m = views(desc)
    _gates(desc, P, k, W, S, A, idx, m)
    for i in range(m):
        b = idx[i] * A
        if not _lstm_fused(S, b + P[k, SCR], b + P[k, STATE_C], b + P[k, Y], P[k, NO]):
            flag_nonfinite(L, b)
    return 0


@kernel()
def lstm_general_kernel(desc, k, t):
    """Run LSTM row ``P[k]`` with any activations and options (peephole, clip,
    cell_clip, input_forget); compiled only for models that use them."""
    P, W, S, L, A, idx, m = views(desc)
    _gates(desc, P, k, W, S, A, idx, m)
    for i in range(m):
        b = idx[i] * A
        if not _lstm_general(desc, P, k, W, S, b + P[k, SCR], b + P[k, STATE_C], b + P[k, Y],
                             P[k, NO]):
            flag_nonfinite(L, b)
    return 0
