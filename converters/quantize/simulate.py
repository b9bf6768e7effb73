"""Running layers over calibration sequences, float or quantised.

Float layers, and quantised ones once the runtime has int8 (``edgernn.QuantParams``),
run in the edgernn engine (``Model([layer]).stream().run``, one step at a time,
state carried). A :class:`~converters.quantize.qlayer.QuantizedLayer` stand-in
runs here in numpy, float32, with the arithmetic of QUANT_SPEC.md, batched over
the sequences of equal length:

    v_q = clip(rint(v * float32(1 / s_v)) + zp, -128, 127)
    y   = float32(sum_k W_q[r, k] (v_q[k] - zp)) * float32(s_w[r] s_v) + b[r]
"""

from __future__ import annotations

import numpy as np

import edgernn

from .qlayer import QuantizedLayer, kind

F32 = np.float32


def _act(a, v):
    n, al, be = a.name, F32(a.alpha), F32(a.beta)
    if n == "linear":
        return v
    if n == "relu":
        return np.maximum(v, F32(0))
    if n == "tanh":
        return np.tanh(v)
    if n == "sigmoid":
        return F32(1) / (F32(1) + np.exp(-v))
    if n in ("softmax", "log_softmax"):
        z = v - v.max(axis=-1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=-1, keepdims=True)
        return e / s if n == "softmax" else z - np.log(s)
    if n == "l2_normalize":
        return v / np.sqrt(np.maximum((v * v).sum(axis=-1, keepdims=True), al))
    table = {"leaky_relu": lambda: np.where(v >= 0, v, al * v),
             "elu": lambda: np.where(v >= 0, v, al * (np.exp(v) - 1)),
             "hard_sigmoid": lambda: np.clip(al * v + be, 0, 1),
             "softsign": lambda: v / (1 + np.abs(v)),
             "softplus": lambda: np.logaddexp(F32(0), v),
             "affine": lambda: al * v + be,
             "thresholded_relu": lambda: np.where(v > al, v, 0),
             "scaled_tanh": lambda: al * np.tanh(be * v)}
    return table[n]().astype(F32)


def _clip(v, c):
    return v if c is None else np.clip(v, F32(-c), F32(c))


def _product(wq_t, s_w, v, q):
    """float32[N, R]: one quantised product for the rows of ``v`` float32[N, K]."""
    if q.mode == "int8-weights" and q.dynamic_zp:
        lo = np.minimum(v.min(axis=1), F32(0))
        hi = np.maximum(v.max(axis=1), F32(0))
        s_v = np.where(hi > lo, ((hi - lo) / F32(255)).astype(F32), F32(1)).astype(F32)
        zp = np.clip(np.rint(F32(-128) - lo / s_v), -128, 127)[:, None]
    elif q.mode == "int8-weights":
        m = np.abs(v).max(axis=1)
        s_v = np.where(m > 0, (m / F32(127)).astype(F32), F32(1)).astype(F32)
        zp = 0
    else:
        s_v = np.full(v.shape[0], F32(q.scale), F32)
        zp = q.zp
    inv = (F32(1) / s_v).astype(F32)
    vq = np.clip(np.rint(v * inv[:, None]) + zp, -128, 127)
    acc = (vq.astype(np.float64) - zp) @ wq_t
    return acc.astype(F32) * (s_w[None, :] * s_v[:, None]).astype(F32)


class _Side:
    """The input side of a product: mode and static scale / zero point."""

    def __init__(self, mode, scale, zp, dynamic_zp=False):
        self.mode, self.scale, self.zp, self.dynamic_zp = mode, scale, int(zp), dynamic_zp


def _b(b, n):
    return np.zeros(n, F32) if b is None else np.asarray(b, F32)


def _sim(layer, xs, state=None):
    """float32[N, T, O]: a quantised stand-in over xs float32[N, T, I], from zero state
    (or from ``state`` {"h", "c": float32[N, H]}, which is updated)."""
    q, k = layer.quant, kind(layer)
    dz = bool(getattr(q, "dynamic_zero_point", False))
    sx = _Side(q.mode, q.input_scale, q.input_zero_point, dz)
    sh = _Side(q.mode, q.state_scale, q.state_zero_point, dz)
    N, T, _ = xs.shape
    if k == "Dense":
        w = np.asarray(layer.weight, np.float64).T
        y = _product(w, q.scales["weight"], xs.reshape(N * T, -1), sx)
        y = _act(layer.activation, y + _b(layer.bias, y.shape[1]))
        return y.reshape(N, T, -1)
    H = layer.hidden_size
    wi = np.asarray(layer.weight_ih, np.float64).T
    wh = np.asarray(layer.weight_hh, np.float64).T
    si, shs = q.scales["weight_ih"], q.scales["weight_hh"]
    bi, bh = _b(layer.bias_ih, wi.shape[1]), _b(layer.bias_hh, wi.shape[1])
    gx_all = (_product(wi, si, xs.reshape(N * T, -1), sx) + bi).reshape(N, T, -1)
    st = {} if state is None else state
    h = st.get("h", np.zeros((N, H), F32))
    c = st.get("c", np.zeros((N, H), F32))
    out = np.empty((N, T, H), F32)
    for t in range(T):
        gx = gx_all[:, t]
        if k == "RNN":
            h = _act(layer.nonlinearity, _clip(gx + _product(wh, shs, h, sh) + bh, layer.clip))
        elif k == "LSTM":
            f_, g_, h_ = layer.activations
            z = gx + _product(wh, shs, h, sh) + bh
            i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
            P = layer.peephole
            if P is not None:
                i, f = i + P[0] * c, f + P[1] * c
            i, f, g = (_clip(v, layer.clip) for v in (i, f, g))
            i = _act(f_, i)
            f = F32(1) - i if layer.input_forget else _act(f_, f)
            c = f * c + i * _act(g_, g)
            if layer.cell_clip is not None:
                c = _clip(c, layer.cell_clip)
            if P is not None:
                o = o + P[2] * c
            h = _act(f_, _clip(o, layer.clip)) * _act(h_, c)
        else:  # GRU
            f_, g_ = layer.activations
            if layer.linear_before_reset:
                gh = _product(wh, shs, h, sh) + bh
            else:
                gh = _product(wh[:, :2 * H], shs[:2 * H], h, sh) + bh[:2 * H]
            r = _act(f_, _clip(gx[:, :H] + gh[:, :H], layer.clip))
            z = _act(f_, _clip(gx[:, H:2 * H] + gh[:, H:2 * H], layer.clip))
            if layer.linear_before_reset:
                n = gx[:, 2 * H:] + r * gh[:, 2 * H:]
            else:
                n = gx[:, 2 * H:] + _product(wh[:, 2 * H:], shs[2 * H:], r * h, sh) + bh[2 * H:]
            n = _act(g_, _clip(n, layer.clip))
            h = (F32(1) - z) * n + z * h
        out[:, t] = h
    st["h"], st["c"] = h, c
    return out


class SimStream:
    """A stream over a stack of float layers and quantised stand-ins, state carried
    from ``run`` to ``run`` (the part of ``edgernn.Stream`` the quantiser needs)."""

    def __init__(self, layers):
        self.layers = list(layers)
        self.reset()

    def reset(self):
        self._states = [{} if isinstance(lay, (QuantizedLayer, edgernn.Activation)) else
                        edgernn.Model([lay]).stream() for lay in self.layers]

    def run(self, xs) -> np.ndarray:
        cur = xs
        for lay, st in zip(self.layers, self._states, strict=True):
            if isinstance(lay, edgernn.Activation):
                cur = _act(lay, np.asarray(cur, F32))
            elif isinstance(lay, QuantizedLayer):
                cur = _sim(lay, np.asarray(cur, F32)[None], st)[0]
            else:
                cur = st.run(cur)
        return cur

    def step(self, x) -> np.ndarray:
        return self.run(np.asarray(x)[None])[0]


def _engine(layer, seqs):
    if isinstance(layer, edgernn.Activation):  # sizeless: not a model on its own
        return [_act(layer, np.asarray(s, F32)) for s in seqs]
    model = edgernn.Model([layer])
    return [model.stream().run(s) for s in seqs]


def run_layer(layer, seqs: list) -> list:
    """The outputs of ``layer`` over each sequence (from zero state), float32[T, O]."""
    if not isinstance(layer, QuantizedLayer):
        return _engine(layer, seqs)
    out: list = [None] * len(seqs)
    by_len: dict[int, list] = {}
    for i, s in enumerate(seqs):
        by_len.setdefault(len(s), []).append(i)
    for idx in by_len.values():
        ys = _sim(layer, np.stack([np.asarray(seqs[i], F32) for i in idx]))
        for j, i in enumerate(idx):
            out[i] = ys[j]
    return out


def trace(layers, seqs: list, upto: int | None = None) -> list:
    """[inputs of layer 0, output of layer 0, ...]: each a list of per-sequence arrays."""
    cur, out = seqs, [seqs]
    for layer in list(layers)[:upto]:
        cur = run_layer(layer, cur)
        out.append(cur)
    return out
