"""A layer normalisation spelled out in elementwise ops -> :class:`edgernn.LayerNorm`.

LiteRT writes a Keras ``LayerNormalization`` over the features as MEAN (keepdims)
of ``x``, SQUARED_DIFFERENCE with it, MEAN, ADD of ``epsilon``, RSQRT, then MULs by
``gamma``, SUB from ``beta`` and ADD (Keras 2 and 3 differ in the order; an
instance layer norm without ``gamma``/``beta`` has neither). From each MEAN over
the last axis of a sequence model's value ``x``, the region of such ops fed only
by ``x``, constants and each other is collected; it is taken as one LayerNorm when
it ends in one tensor shaped as ``x``, reads ``epsilon`` from the ADD on the
variance, and computes, on random inputs, ``(x - mean) / sqrt(var + eps) * gamma
+ beta`` for the ``gamma`` and ``beta`` fitted from two of them (checked on a
third within 1e-6). Anything else stays op by op.
"""

from __future__ import annotations

import numpy as np

import edgernn

_OPS = {"MEAN", "SQUARED_DIFFERENCE", "SUB", "ADD", "MUL", "RSQRT", "NEG", "SQRT", "DIV",
        "SQUARE"}
_BINARY = {"SQUARED_DIFFERENCE": lambda a, b: (a - b) ** 2, "SUB": np.subtract,
           "ADD": np.add, "MUL": np.multiply, "DIV": np.divide}
_UNARY = {"RSQRT": lambda v: 1 / np.sqrt(v), "NEG": np.negative, "SQRT": np.sqrt,
          "SQUARE": np.square}
TOL = 1e-6


def _last_axis_mean(sg, op):
    if op.name != "MEAN" or not op.opt("KeepDims", False):
        return False
    axes, rank = sg.const(op.inputs[1]), len(sg.tensors[op.inputs[0]].shape)
    return axes is not None and {int(a) % rank for a in np.asarray(axes).reshape(-1)} == \
        {rank - 1}


def find_layer_norms(sg, used):
    """``[(op indices, last op, [LayerNorm], input tensor, output tensor)]``; ops in
    ``used`` (other units) are left alone."""
    units = []
    for op in sg.ops:
        if op.index in used or not _last_axis_mean(sg, op):
            continue
        unit = _unit(sg, op, used)
        if unit is not None:
            units.append(unit)
            used = used | set(unit[0])
    return units


def _unit(sg, anchor, used):
    x = anchor.inputs[0]
    region, tensors = [anchor], {anchor.outputs[0]}  # every op fed by x and the region
    grew = True
    while grew:
        grew = False
        for op in sg.ops:
            if op in region or op.index in used or op.name not in _OPS:
                continue
            data = [t for t in op.inputs if t >= 0 and sg.const(t) is None]
            if any(t in tensors for t in data) and all(t in tensors or t == x for t in data):
                if op.name == "MEAN" and not _last_axis_mean(sg, op):
                    continue
                region.append(op)
                tensors |= set(op.outputs)
                grew = True
    region.sort(key=lambda op: op.index)
    for end in reversed(region):        # the last op that closes a norm (not a residual)
        y = end.outputs[0]
        if sg.tensors[y].shape != sg.tensors[x].shape:
            continue
        sub = [op for op in region if op.index in _ancestors(region, y)]
        inside = {op.index for op in sub}
        sinks = [t for op in sub for t in op.outputs if t in sg.outputs or
                 any(c.index not in inside for c in sg.consumers.get(t, []))]
        if sinks != [y] or anchor not in sub:
            continue
        layer = _fit(sg, sub, x, y)
        if layer is not None:
            return sorted(inside), sub[-1], [layer], x, y
    return None


def _ancestors(region, t):
    """Indices of the ops of ``region`` that ``t`` depends on (itself included)."""
    made = {u: op for op in region for u in op.outputs}
    seen, stack = set(), [t]
    while stack:
        op = made.get(stack.pop())
        if op is not None and op.index not in seen:
            seen.add(op.index)
            stack.extend(op.inputs)
    return seen


def _eps(sg, region):
    means = {op.outputs[0] for op in region if op.name == "MEAN"}
    for op in region:
        if op.name == "ADD":
            c = [sg.const(t) for t in op.inputs]
            if any(t in means for t in op.inputs) and any(v is not None and np.size(v) == 1
                                                          for v in c):
                return float(next(v for v in c if v is not None).reshape(-1)[0])
    return None


def _run(sg, region, x, y, v):
    env = {x: v}

    def get(t):
        return env[t] if t in env else sg.const(t).astype(np.float64)
    for op in region:
        if op.name == "MEAN":
            env[op.outputs[0]] = get(op.inputs[0]).mean(-1, keepdims=True)
        elif op.name in _BINARY:
            env[op.outputs[0]] = _BINARY[op.name](get(op.inputs[0]), get(op.inputs[1]))
        else:
            env[op.outputs[0]] = _UNARY[op.name](get(op.inputs[0]))
        if op.opt("FusedActivationFunction", 0):
            return None
    return env[y]


def _fit(sg, region, x, y):
    """The LayerNorm the region computes, or None."""
    eps = _eps(sg, region)
    n = sg.tensors[x].shape[-1]
    if eps is None or n < 2:
        return None
    rng = np.random.default_rng(0)
    vs = [rng.standard_normal((1, 3, n)) * s + o for s, o in ((1, 0), (3, 1), (0.5, -2))]
    with np.errstate(all="ignore"):
        ys = [_run(sg, region, x, y, v) for v in vs]
        if any(o is None or np.shape(o) != v.shape for o, v in zip(ys, vs, strict=True)):
            return None
        ns = [(v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + eps)
              for v in vs]
        gamma = ((ys[0] - ys[1]) / (ns[0] - ns[1]))[0, 0]
        beta = (ys[0] - ns[0] * gamma)[0, 0]
        if not np.all(np.isfinite(gamma)) or not np.all(np.isfinite(beta)) or \
                np.abs(ys[2] - (ns[2] * gamma + beta)).max() > TOL * (1 + np.abs(ys[2]).max()):
            return None
    gamma, beta = gamma.astype(np.float32), beta.astype(np.float32)
    return edgernn.LayerNorm(n, None if np.all(gamma == 1) else gamma,
                             None if np.all(beta == 0) else beta, eps)


__all__ = ["find_layer_norms"]
