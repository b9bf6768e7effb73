"""A slow, obvious oracle of the int8 arithmetic of :mod:`edgernn.ir.quant`
(QUANT_SPEC.md and the QuantParams fields added since).

Written from the equations, independent of edgernn's engine and of the
quantiser. A quantised layer is read through its public fields only: its
weight matrices (``weight`` / ``weight_ih`` / ``weight_hh``) are int8
``[rows, cols]`` in the canonical (PyTorch) layout, biases and everything else
float32, and ``layer.quant`` carries

    mode                 "int8-weights" (dynamic range) or "int8" (static)
    scales               weight field name -> float32[rows] (per output row, > 0)
    input_scale, input_zero_point    static: scale and zero point of the input x
    state_scale, state_zero_point    static, recurrent: scale and zero point of h
    dynamic_zero_point   dynamic: asymmetric per-call ranges (below)
    round_half_away      round half away from zero (LiteRT) instead of half to even
    output_scale, output_zero_point  Dense: the output (after its activation) put on
                         its int8 grid, ``(clip(rint(y / s) + zp, -128, 127) - zp) * s``

A layer whose ``quant`` is missing or None is float and runs :mod:`tests.naive`.
The layer kind is ``layer.kind`` when present (a stand-in object), else the
class name ("Dense", "RNN", "LSTM", "GRU").

One quantised product ``y = W v + b`` (``W_q``: int8[R, K], ``s_w``: float32[R]):

    dynamic:  s_v = float32(max|v| / 127)   (1 when max|v| == 0), zp = 0
    static:   s_v, zp from QuantParams (input_* for x, state_* for h)
    v_q    = clip(rint(v / s_v) + zp, -128, 127)                   (float32 quotient)
    acc[r] = sum_k W_q[r, k] * (v_q[k] - zp)                       (exact integers)
    y[r]   = acc[r] * float32(s_w[r] * s_v) + b[r]                  (float64 here)

Recurrent layers quantise x and h separately and add the two products. A GRU
with ``linear_before_reset=False`` multiplies its candidate rows ``W_hn`` by
``r * h``: that vector is quantised as h is (static: the state scale and zero
point; dynamic: its own per-call scale). Everything after the products (gate
activations, clip, peepholes, cell state) is the float cell of
:mod:`tests.naive`, in float64.
"""

from __future__ import annotations

import numpy as np

from tests import naive


def kind_of(layer) -> str:
    return getattr(layer, "kind", None) or type(layer).__name__


def quant_of(layer):
    return getattr(layer, "quant", None)


def _round(t, away: bool):
    """Round to integers, half to even (``rint``) or half away from zero."""
    t = np.asarray(t)
    return np.sign(t) * np.floor(np.abs(t) + t.dtype.type(0.5)) if away else np.rint(t)


def quantize_vector(v, mode: str, scale=None, zero_point: int = 0, dynamic_zp: bool = False,
                    away: bool = False):
    """(v_q int64[K], s_v float32, zp int): the input side of one product.

    ``dynamic_zp`` ("int8-weights" with ``dynamic_zero_point``, as LiteRT's and ONNX
    Runtime's dynamic-range kernels do): per call ``lo = min(min v, 0)``,
    ``hi = max(max v, 0)``, ``s_v = float32((hi - lo) / 255)``,
    ``zp = clip(rint(-128 - lo / s_v), -128, 127)``. ``away``: ``v / s_v`` is
    rounded half away from zero instead of to even (the zero point is added after).
    """
    v = np.asarray(v, dtype=np.float32)
    if mode == "int8-weights" and dynamic_zp:
        lo = np.float32(min(float(v.min()), 0.0)) if v.size else np.float32(0)
        hi = np.float32(max(float(v.max()), 0.0)) if v.size else np.float32(0)
        s = np.float32((hi - lo) / np.float32(255)) if hi > lo else np.float32(1)
        zp = int(np.clip(np.rint(np.float32(-128) - lo / s), -128, 127))
    elif mode == "int8-weights":
        m = np.float32(np.max(np.abs(v))) if v.size else np.float32(0)
        s = np.float32(m / np.float32(127)) if m > 0 else np.float32(1)
        zp = 0
    elif mode == "int8":
        s, zp = np.float32(scale), int(zero_point)
    else:
        raise ValueError(f"mode {mode!r}")
    q = np.clip(_round(v / s, away) + zp, -128, 127).astype(np.int64)
    return q, s, zp


def qmatvec(w_q, s_w, v, mode: str, scale=None, zero_point: int = 0, dynamic_zp=False,
            away=False):
    """float64[R]: ``W v`` through int8 (no bias). ``w_q`` int8[R, K], ``s_w`` float32[R]."""
    q, s_v, zp = quantize_vector(v, mode, scale, zero_point, dynamic_zp, away)
    acc = np.asarray(w_q, dtype=np.int64) @ (q - zp)
    mult = (np.asarray(s_w, dtype=np.float32) * s_v).astype(np.float32)
    return acc.astype(np.float64) * mult.astype(np.float64)


def flip_bound(w_q, s_w, s_v) -> np.ndarray:
    """float64[R]: how far one ``rint`` flip of one input element can move each output
    (``max_k |W_q[r, k]| * s_w[r] * s_v``; the contract's test tolerance)."""
    return np.abs(np.asarray(w_q, np.int64)).max(axis=1) * np.float64(s_w) * float(s_v)


def _b(b, n):
    return np.zeros(n) if b is None else np.asarray(b, np.float64)


def _x(q):
    return (q.input_scale, q.input_zero_point, bool(getattr(q, "dynamic_zero_point", False)),
            bool(getattr(q, "round_half_away", False)))


def _h(q):
    return (q.state_scale, q.state_zero_point, bool(getattr(q, "dynamic_zero_point", False)),
            bool(getattr(q, "round_half_away", False)))


def _requantize(y, q):
    """A Dense's output on its int8 grid when ``q.output_scale`` is set."""
    s = getattr(q, "output_scale", None)
    if s is None:
        return y
    s, zp = np.float32(s), int(q.output_zero_point)
    t = np.asarray(y, np.float32) / s
    return (np.clip(np.rint(t) + zp, -128, 127) - zp) * np.float64(s)


def step(layer, x, st):
    """One step of ``layer`` (quantised or float); ``st`` holds float64 state (updated)."""
    q = quant_of(layer)
    if q is None:
        return naive.step(layer, x, st)
    kind, mode = kind_of(layer), q.mode
    sc = q.scales
    if kind == "Dense":
        y = qmatvec(layer.weight, sc["weight"], x, mode, *_x(q))
        return _requantize(naive.act(layer.activation, y + _b(layer.bias, y.size)), q)
    if kind == "CausalConv1d":
        return _causal_conv(layer, x, st, q)
    if kind == "Conv1d":
        return _conv(layer, x, q)
    H = layer.hidden_size
    h = st.setdefault("h", np.zeros(H))
    gx = qmatvec(layer.weight_ih, sc["weight_ih"], x, mode, *_x(q))
    gx = gx + _b(layer.bias_ih, gx.size)
    bh = _b(layer.bias_hh, gx.size)
    clip = naive._clip
    if kind == "RNN":
        gh = qmatvec(layer.weight_hh, sc["weight_hh"], h, mode, *_h(q))
        st["h"] = naive.act(layer.nonlinearity, clip(gx + gh + bh, layer.clip))
        return st["h"]
    if kind == "LSTM":
        c = st.setdefault("c", np.zeros(H))
        f_, g_, h_ = layer.activations
        z = gx + qmatvec(layer.weight_hh, sc["weight_hh"], h, mode, *_h(q)) + bh
        i, f, g, o = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
        P = None if layer.peephole is None else np.asarray(layer.peephole, np.float64)
        if P is not None:
            i = i + P[0] * c
            f = f + P[1] * c
        i, f, g = (clip(v, layer.clip) for v in (i, f, g))
        i = naive.act(f_, i)
        f = 1 - i if layer.input_forget else naive.act(f_, f)
        c = f * c + i * naive.act(g_, g)
        if layer.cell_clip is not None:
            c = np.clip(c, -layer.cell_clip, layer.cell_clip)
        if P is not None:
            o = o + P[2] * c
        o = naive.act(f_, clip(o, layer.clip))
        st["c"], st["h"] = c, o * naive.act(h_, c)
        return st["h"]
    if kind == "GRU":
        f_, g_ = layer.activations
        w_hh, s_hh = np.asarray(layer.weight_hh), np.asarray(sc["weight_hh"])
        if layer.linear_before_reset:
            gh = qmatvec(w_hh, s_hh, h, mode, *_h(q)) + bh
        else:
            gh = qmatvec(w_hh[:2 * H], s_hh[:2 * H], h, mode, *_h(q)) + bh[:2 * H]
        r = naive.act(f_, clip(gx[:H] + gh[:H], layer.clip))
        z = naive.act(f_, clip(gx[H:2 * H] + gh[H:2 * H], layer.clip))
        if layer.linear_before_reset:
            n = gx[2 * H:] + r * gh[2 * H:]
        else:
            n = gx[2 * H:] + qmatvec(w_hh[2 * H:], s_hh[2 * H:], r * h, mode,
                                     *_h(q)) + bh[2 * H:]
        n = naive.act(g_, clip(n, layer.clip))
        st["h"] = (1 - z) * n + z * h
        return st["h"]
    raise TypeError(f"no quantised oracle for {kind}")


def _causal_conv(layer, x, st, q):
    """One step of an int8 causal convolution: its window of K frames (tap j: the input
    ``(K-1-j) d`` steps back, zeros before the first step), channels of group g against
    weight rows of group g, is one product's input vector, quantised as x."""
    w = np.asarray(layer.weight)
    co, cig, K = w.shape
    d, G = layer.dilation, layer.groups
    ci, per = cig * G, co // G
    past = st.setdefault("frames", [])
    past.append(np.asarray(x, np.float64))
    frames = [past[-1 - (K - 1 - j) * d] if (K - 1 - j) * d < len(past) else np.zeros(ci)
              for j in range(K)]
    del past[:-max(1, (K - 1) * d + 1)]
    w2 = np.zeros((co, K, ci), np.int8)
    for o in range(co):
        g = o // per
        w2[o, :, g * cig:(g + 1) * cig] = w[o].T
    y = qmatvec(w2.reshape(co, K * ci), q.scales["weight"], np.concatenate(frames), q.mode,
                *_x(q))
    return naive.act(layer.activation, y + _b(layer.bias, co))


def _conv(layer, x, q):
    """An int8 convolution within a step (one group): the window of each output position
    ``l`` (``col[c K + j] = x[c, l s + j d - pb]``, zero outside) quantised on its own."""
    w = np.asarray(layer.weight)
    co, ci, K = w.shape
    s, d, (pb, pe) = layer.stride, layer.dilation, layer.padding
    xp = np.pad(np.asarray(x, np.float64).reshape(ci, layer.length), ((0, 0), (pb, pe)))
    lout = (xp.shape[1] - d * (K - 1) - 1) // s + 1
    y = np.zeros((co, lout))
    for col in range(lout):
        win = np.stack([xp[:, col * s + j * d] for j in range(K)], axis=1)   # [c, j]
        y[:, col] = qmatvec(w.reshape(co, ci * K), q.scales["weight"], win.ravel(), q.mode,
                            *_x(q))
    return naive.act(layer.activation, (y + _b(layer.bias, co)[:, None]).ravel())


def run_layer(layer, xs, state=None):
    """float64[T, out]: ``layer`` over ``xs`` from zero state (or ``state``, updated)."""
    if quant_of(layer) is None and kind_of(layer) not in ("Dense", "RNN", "LSTM", "GRU"):
        return naive.run_layer(layer, np.asarray(xs, np.float64))
    st = {} if state is None else state
    return np.stack([step(layer, x, st) for x in np.asarray(xs, np.float64)])


def run_node(op, inputs):
    """float64[T, size]: one graph node (quantised or float) over whole sequences."""
    if quant_of(op) is not None:
        return run_layer(op, inputs[0])
    return naive.run_node(op, inputs)


def run(layers, xs):
    """float64[T, output_size]: a model (a stack or a graph, evaluated node by node over
    whole sequences, as :func:`tests.naive.run`) or a list of layers over ``xs``."""
    cur = np.asarray(xs, dtype=np.float64)
    if cur.ndim == 1:
        cur = cur[:, None]
    if getattr(layers, "graph", None) is not None:
        return naive.run(layers, cur, node=run_node)
    for layer in layers:
        cur = run_layer(layer, cur)
    return cur
