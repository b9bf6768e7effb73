"""Elementwise ONNX ops real exports carry that edgernn computes by one op or a few.

==============  ==============================================================
ONNX            edgernn
==============  ==============================================================
Erf, Sign,      :class:`edgernn.Unary` (``erf`` ... ``round``); torch's exact
Floor, Ceil,    GELU exports as ``Div -> Erf -> Add -> Mul -> Mul``, each of
Round           which converts on its own
Gelu (20)       ``0.5 x (1 + erf(x / sqrt 2))`` (``approximate="tanh"``:
                ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``) written
                out in Mul/Add/Unary/Activation nodes
HardSwish       ``x * hard_sigmoid(x; 1/6, 1/2)`` (an Activation and a Mul)
Selu, Celu      ``gamma * elu(x; alpha)``; ``alpha * elu(x / alpha; 1)``
Mish (18)       ``x * tanh(softplus(x))``
PRelu           ``max(x, 0) + slope * min(x, 0)`` (Unary max/min, Mul by the
                slope, Add): exact, since one of the two terms is 0
==============  ==============================================================

A per-channel constant (PRelu's slope ``[C, 1]`` on ``[N, C, L]`` data) is
spread over the step's values with :func:`step_constant`.
"""

from __future__ import annotations

import math

import numpy as np

import edgernn

from .values import Seq


def step_constant(ctx, node, seq: Seq, c, what: str):
    """``c`` (broadcastable to the ONNX tensor ``seq``) as one float32 per value of a
    step (the channels times the length ``L``, row-major), or a scalar when it is one
    value; refuses a constant that varies along time, batch or another axis."""
    c = np.asarray(c, np.float32)
    labels, n = ctx.labels(seq), len(seq.axes)
    ctx.feature_axis(node, seq)
    if c.ndim > n:
        raise ctx.unsupported(node, f"{what} of shape {list(c.shape)} broadcasts the rank-{n} "
                                    f"data to more axes")
    if c.size == 1:
        return c.reshape(())
    full = c.reshape((1,) * (n - c.ndim) + c.shape)
    for ax, d in enumerate(full.shape):
        if d == 1:
            continue
        if labels[ax] not in ("F", "L"):
            raise ctx.unsupported(node, f"{what} of shape {list(c.shape)} varies along axis "
                                        f"{ax} ({labels[ax]!r}) of data with sizes "
                                        f"{list(seq.sizes)}; only along the channels/features "
                                        f"and the length within a step")
        if d != seq.sizes[ax]:
            raise ctx.bad(node, f"{what} of shape {list(c.shape)} does not broadcast to data "
                                f"of sizes {list(seq.sizes)} (axis {ax}: {d} vs "
                                f"{seq.sizes[ax]})")
    keep = [labels.index("F")] + ([labels.index("L")] if "L" in labels else [])
    sub = full[tuple(slice(None) if j in keep else 0 for j in range(n))]
    return np.ascontiguousarray(np.broadcast_to(sub, [seq.sizes[j] for j in keep])).reshape(-1)


def _data(ctx, node, v) -> Seq:
    seq = ctx.as_seq(node, v)
    if seq.tokens:
        raise ctx.unsupported(node, f"{node.op_type} of token ids")
    ctx.feature_axis(node, seq)
    return seq


def _pointwise(func):
    def convert(ctx, node, ins):
        ctx.check_attrs(node, ())
        seq = _data(ctx, node, ins[0])
        return [seq.with_tensor(ctx.apply(node, edgernn.Unary(func), seq.tensor))]
    convert.__doc__ = f"ONNX {func.title()} of data -> edgernn.Unary({func!r})."
    return convert


def _gelu_of(ctx, node, t, approximate: str):
    f32 = np.float32
    half = ctx.apply(node, edgernn.Mul(f32(0.5)), t)
    if approximate == "none":
        u = ctx.apply(node, edgernn.Mul(f32(1 / math.sqrt(2))), t)
        g = ctx.apply(node, edgernn.Unary("erf"), u)
    else:
        cube = ctx.apply(node, edgernn.Mul(f32(0.044715)), ctx.apply(node, edgernn.Unary(
            "square"), t))
        inner = ctx.apply(node, edgernn.Mul(), t, ctx.apply(node, edgernn.Add(f32(1)), cube))
        u = ctx.apply(node, edgernn.Mul(f32(math.sqrt(2 / math.pi))), inner)
        g = ctx.apply(node, edgernn.Activation("tanh"), u)
    return ctx.apply(node, edgernn.Mul(), half, ctx.apply(node, edgernn.Add(f32(1)), g))


def convert_gelu(ctx, node, ins):
    """Gelu (opset 20), exact or ``approximate="tanh"``."""
    at = ctx.check_attrs(node, ("approximate",))
    approximate = at.get("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    if approximate not in ("none", "tanh"):
        raise ctx.bad(node, f"approximate={approximate!r}; expected 'none' or 'tanh'")
    seq = _data(ctx, node, ins[0])
    return [seq.with_tensor(_gelu_of(ctx, node, seq.tensor, approximate))]


def convert_hard_swish(ctx, node, ins):
    """HardSwish: ``x * max(0, min(1, x / 6 + 1/2))``."""
    ctx.check_attrs(node, ())
    seq = _data(ctx, node, ins[0])
    gate = ctx.apply(node, edgernn.Activation("hard_sigmoid", 1 / 6, 0.5), seq.tensor)
    return [seq.with_tensor(ctx.apply(node, edgernn.Mul(), seq.tensor, gate))]


def convert_selu(ctx, node, ins):
    """Selu: ``gamma * (x if x > 0 else alpha * (exp(x) - 1))``."""
    at = ctx.check_attrs(node, ("alpha", "gamma"))
    seq = _data(ctx, node, ins[0])
    alpha = float(at.get("alpha", 1.67326319217681884765625))
    gamma = float(at.get("gamma", 1.05070102214813232421875))
    t = ctx.apply(node, edgernn.Activation("elu", alpha), seq.tensor)
    return [seq.with_tensor(ctx.apply(node, edgernn.Mul(np.float32(gamma)), t))]


def convert_celu(ctx, node, ins):
    """Celu: ``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` = ``alpha * elu(x /
    alpha)`` for ``alpha > 0``."""
    at = ctx.check_attrs(node, ("alpha",))
    seq = _data(ctx, node, ins[0])
    alpha = float(at.get("alpha", 1.0))
    if not alpha > 0:
        raise ctx.bad(node, f"alpha={alpha}; Celu needs alpha > 0")
    t = seq.tensor
    if alpha != 1:
        t = ctx.apply(node, edgernn.Mul(np.float32(1 / alpha)), t)
    t = ctx.apply(node, edgernn.Activation("elu", 1.0), t)
    if alpha != 1:
        t = ctx.apply(node, edgernn.Mul(np.float32(alpha)), t)
    return [seq.with_tensor(t)]


def convert_mish(ctx, node, ins):
    """Mish: ``x * tanh(softplus(x))``."""
    ctx.check_attrs(node, ())
    seq = _data(ctx, node, ins[0])
    g = ctx.apply(node, edgernn.Activation("tanh"), ctx.apply(node, edgernn.Activation(
        "softplus"), seq.tensor))
    return [seq.with_tensor(ctx.apply(node, edgernn.Mul(), seq.tensor, g))]


def convert_prelu(ctx, node, ins):
    """PRelu(x, slope) with a constant slope broadcast per channel (or one value)."""
    ctx.check_attrs(node, ())
    seq = _data(ctx, node, ins[0])
    slope = step_constant(ctx, node, seq, ctx.const(node, 1, "slope"), "slope")
    t = seq.tensor
    pos = ctx.apply(node, edgernn.Unary("max", 0.0), t)
    neg = ctx.apply(node, edgernn.Mul(slope), ctx.apply(node, edgernn.Unary("min", 0.0), t))
    return [seq.with_tensor(ctx.apply(node, edgernn.Add(), pos, neg))]


OPS = {"Erf": _pointwise("erf"), "Sign": _pointwise("sign"), "Floor": _pointwise("floor"),
       "Ceil": _pointwise("ceil"), "Round": _pointwise("round"), "Gelu": convert_gelu,
       "HardSwish": convert_hard_swish, "PRelu": convert_prelu, "Selu": convert_selu,
       "Celu": convert_celu, "Mish": convert_mish}

__all__ = ["OPS", "step_constant"]
