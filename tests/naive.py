"""A slow, obvious float64 oracle written from the equations (ONNX/PyTorch docs).

Independent of edgernn's engine: it reads only the layer dataclasses' public
fields and implements each step with plain numpy.
"""

import numpy as np

import edgernn


def act(a: edgernn.Activation, x):
    n, al, be = a.name, a.alpha, a.beta
    if n == "linear":
        return x
    if n == "relu":
        return np.maximum(x, 0)
    if n in ("tanh", "tanh_litert"):   # LiteRT's kernels: within 5 ulp of the function
        return np.tanh(x)
    if n in ("sigmoid", "sigmoid_litert"):
        return 1 / (1 + np.exp(-x))
    if n == "softmax":
        e = np.exp(x - x.max())
        return e / e.sum()
    if n == "leaky_relu":
        return np.where(x >= 0, x, al * x)
    if n == "elu":
        return np.where(x >= 0, x, al * (np.exp(x) - 1))
    if n == "hard_sigmoid":
        return np.clip(al * x + be, 0, 1)
    if n == "softsign":
        return x / (1 + np.abs(x))
    if n == "softplus":
        return np.log1p(np.exp(x))
    if n == "affine":
        return al * x + be
    if n == "thresholded_relu":
        return np.where(x > al, x, 0)
    if n == "scaled_tanh":
        return al * np.tanh(be * x)
    if n == "log_softmax":
        z = x - x.max()
        return z - np.log(np.exp(z).sum())
    if n == "l2_normalize":
        return x / np.sqrt(max((x * x).sum(), al))
    raise ValueError(n)


def _b(b, n):
    return np.zeros(n) if b is None else b.astype(np.float64)


def _clip(x, c):
    return x if c is None else np.clip(x, -c, c)


def step(layer, x, st):
    """One step of ``layer``; ``st`` is a dict of float64 state vectors (updated)."""
    if isinstance(layer, edgernn.Activation):
        return act(layer, x)
    if isinstance(layer, edgernn.Dense):
        return act(layer.activation, layer.weight @ x + _b(layer.bias, layer.output_size))
    if isinstance(layer, edgernn.Embedding):
        return layer.weight[int(x[0])].astype(np.float64)
    H = layer.hidden_size
    h = st.setdefault("h", np.zeros(H))
    wi, wh = layer.weight_ih.astype(np.float64), layer.weight_hh.astype(np.float64)
    bi, bh = _b(layer.bias_ih, wi.shape[0]), _b(layer.bias_hh, wi.shape[0])
    if isinstance(layer, edgernn.RNN):
        st["h"] = act(layer.nonlinearity, _clip(wi @ x + bi + wh @ h + bh, layer.clip))
        return st["h"]
    if isinstance(layer, edgernn.LSTM):
        c = st.setdefault("c", np.zeros(H))
        f_, g_, h_ = layer.activations
        z = wi @ x + bi + wh @ h + bh
        i, f, g, o = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
        P = layer.peephole
        if P is not None:
            i = i + P[0] * c
            f = f + P[1] * c
        i, f, g = (_clip(v, layer.clip) for v in (i, f, g))
        i = act(f_, i)
        f = 1 - i if layer.input_forget else act(f_, f)
        c = f * c + i * act(g_, g)
        if layer.cell_clip is not None:
            c = np.clip(c, -layer.cell_clip, layer.cell_clip)
        if P is not None:
            o = o + P[2] * c
        o = act(f_, _clip(o, layer.clip))
        st["c"], st["h"] = c, o * act(h_, c)
        return st["h"]
    if isinstance(layer, edgernn.GRU):
        f_, g_ = layer.activations
        xi = wi @ x + bi
        r = act(f_, _clip(xi[:H] + wh[:H] @ h + bh[:H], layer.clip))
        z = act(f_, _clip(xi[H:2 * H] + wh[H:2 * H] @ h + bh[H:2 * H], layer.clip))
        if layer.linear_before_reset:
            n = xi[2 * H:] + r * (wh[2 * H:] @ h + bh[2 * H:])
        else:
            n = xi[2 * H:] + wh[2 * H:] @ (r * h) + bh[2 * H:]
        n = act(g_, _clip(n, layer.clip))
        st["h"] = (1 - z) * n + z * h
        return st["h"]
    raise TypeError(type(layer))


def run_layer(layer, xs):
    if isinstance(layer, edgernn.Bidirectional):
        yf = run_layer(layer.forward, xs)
        yb = run_layer(layer.backward, xs[::-1])[::-1]
        if not layer.return_sequences:
            yf, yb = yf[-1:], yb[:1]
        return {"concat": lambda: np.concatenate([yf, yb], 1), "sum": lambda: yf + yb,
                "mul": lambda: yf * yb, "ave": lambda: (yf + yb) / 2}[layer.merge_mode]()
    st = {}
    return np.stack([step(layer, x, st) for x in xs])


def run_node(op, inputs):
    """float64[T, size]: one graph node over whole sequences ``inputs`` (list of [T, n])."""
    name = type(op).__name__
    if name == "Concat":
        return np.concatenate(inputs, axis=1)
    if name == "Slice":
        return inputs[0][:, op.start:op.stop]
    if name in ("Add", "Sub", "Mul", "Div"):  # a [T, 1] operand broadcasts
        a = inputs[0]
        b = inputs[1] if op.constant is None else op.constant.astype(np.float64)
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
                "Div": np.divide}[name](a, b)
    if name == "Reverse":
        return run_layer(op.layer, inputs[0][::-1])[::-1]
    if name in _STEPWISE:
        return np.stack([_STEPWISE[name](op, x) for x in inputs[0]])
    if name == "CausalConv1d":  # zeros before the first step, then a valid convolution
        x = inputs[0]
        k, d = op.kernel_size, op.dilation
        xp = np.concatenate([np.zeros(((k - 1) * d, x.shape[1])), x])
        return _act(op.activation, _conv1d(op.weight, op.bias, xp.T, 1, d, op.groups,
                                           (0, 0)).T)
    return run_layer(op, inputs[0])


def _act(a, y):
    return act(a, y) if a.name not in ("linear",) else y


def _conv1d(w, b, x, stride, dilation, groups, pad):
    """``y[o, l] = b[o] + sum_c sum_j w[o, c, j] x[g(o) C/G + c, l s + j d - pb]``."""
    co, cig, k = w.shape
    xp = np.pad(x, ((0, 0), tuple(pad)))
    lout = (xp.shape[1] - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((co, lout))
    for o in range(co):
        g0 = o // (co // groups) * cig
        for j in range(k):
            taps = xp[g0:g0 + cig, j * dilation: j * dilation + stride * (lout - 1) + 1:stride]
            y[o] += w[o, :, j].astype(np.float64) @ taps
        y[o] += 0 if b is None else b[o]
    return y


def _unary(op, x):
    a, b = op.alpha, op.beta
    with np.errstate(all="ignore"):
        return {"abs": np.abs, "neg": np.negative, "sqrt": np.sqrt, "log": np.log,
                "exp": np.exp, "reciprocal": lambda v: 1 / v, "square": np.square,
                "pow": lambda v: np.power(v, a), "clip": lambda v: np.clip(v, a, b),
                "max": lambda v: np.maximum(v, a), "min": lambda v: np.minimum(v, a)
                }[op.func](x)


def _reduce(op, x):
    m = x.reshape(-1, op.cols)
    ax = 1 if op.axis == -1 else 0
    return {"mean": lambda: m.mean(ax), "mean_litert": lambda: m.mean(ax),
            "sum": lambda: m.sum(ax), "max": lambda: m.max(ax),
            "min": lambda: m.min(ax), "l2": lambda: np.sqrt((m * m).sum(ax)),
            "sum_square": lambda: (m * m).sum(ax)}[op.func]()


def _layer_norm(op, x):
    m = x.reshape(-1, op.normalized_size)
    mean = m.mean(1, keepdims=True)
    y = (m - mean) / np.sqrt(((m - mean) ** 2).mean(1, keepdims=True) + op.eps)
    y = y * (1 if op.weight is None else op.weight) + (0 if op.bias is None else op.bias)
    return y.ravel()


def _pad(op, x):
    m = x.reshape(-1, op.cols)
    kw = {"constant_values": op.value} if op.mode == "constant" else {}
    return np.pad(m, ((0, 0), (op.before, op.after)), mode=op.mode, **kw).ravel()


def _rfft(op, x):
    spec = np.fft.rfft(x, op.n_fft)
    return np.concatenate([spec.real, spec.imag])


def _irfft(op, x):
    b = op.bins
    return np.fft.irfft(x[:b] + 1j * x[b:], op.n_fft)


#: per-step ops without state: one function of a step's vector each
_STEPWISE = {
    "RFFT": _rfft, "IRFFT": _irfft,
    "Unary": _unary, "Reduce": _reduce, "LayerNorm": _layer_norm, "Pad": _pad,
    "Conv1d": lambda op, x: _act(op.activation, _conv1d(
        op.weight, op.bias, x.reshape(op.in_channels, op.length), op.stride, op.dilation,
        op.groups, op.padding)).ravel(),
}


def run(model, xs, node=None):
    """float64[T, output_size]: the model over ``xs`` (float[T, I] or int token ids [T]).

    Graphs are evaluated node by node over whole sequences (a DAG: the same as
    stepping every node in order at every timestep); ``node(op, inputs)`` evaluates
    one node (default :func:`run_node`).
    """
    node = node or run_node
    if model.graph.updates:
        return _run_with_state(model, xs)
    cur = np.asarray(xs, dtype=np.float64)
    if cur.ndim == 1:
        cur = cur[:, None]
    g = model.graph
    values, start = {}, 0
    for t in g.inputs:
        values[id(t)] = cur[:, start:start + t.size]
        start += t.size
    for t in g.nodes:
        values[id(t)] = node(t.op, [values[id(s)] for s in t.inputs])
    return np.concatenate([values[id(t)] for t in g.outputs], axis=1)


def _run_with_state(model, xs):
    """A model with state tensors (edgernn.state), step by step: each state holds its
    update's value of the step before (zeros at first)."""
    g = model.graph
    xs = np.asarray(xs, dtype=np.float64)
    prev = {id(s): np.zeros(s.size) for s, _ in g.updates}
    rec = {id(t): {} for t in g.nodes}
    out = []
    for x in xs:
        values, start = {}, 0
        for t in g.inputs:
            values[id(t)] = x[start:start + t.size]
            start += t.size
        for t in g.nodes:
            ins = [values[id(s)] for s in t.inputs]
            if t.op.carried:
                values[id(t)] = prev[id(t)]
            elif t.op.state_vectors() and type(t.op).__name__ != "CausalConv1d":
                values[id(t)] = step(t.op, ins[0], rec[id(t)])
            elif type(t.op).__name__ == "CausalConv1d":
                hist = rec[id(t)].setdefault("x", [])
                hist.append(ins[0])
                n = t.op.history() + 1
                window = ([np.zeros_like(ins[0])] * n + hist)[-n:]
                values[id(t)] = run_node(t.op, [np.stack(window)])[-1]
            else:
                values[id(t)] = run_node(t.op, [v[None] for v in ins])[0]
        for s, v in g.updates:
            prev[id(s)] = values[id(v)]
        out.append(np.concatenate([values[id(t)] for t in g.outputs]))
    return np.stack(out)
