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
    if n == "tanh":
        return np.tanh(x)
    if n == "sigmoid":
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
    if name in ("Add", "Sub", "Mul"):
        a = inputs[0]
        b = inputs[1] if op.constant is None else op.constant.astype(np.float64)
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[name](a, b)
    if name == "Reverse":
        return run_layer(op.layer, inputs[0][::-1])[::-1]
    return run_layer(op, inputs[0])


def run(model, xs, node=None):
    """float64[T, output_size]: the model over ``xs`` (float[T, I] or int token ids [T]).

    Graphs are evaluated node by node over whole sequences (a DAG: the same as
    stepping every node in order at every timestep); ``node(op, inputs)`` evaluates
    one node (default :func:`run_node`).
    """
    node = node or run_node
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
