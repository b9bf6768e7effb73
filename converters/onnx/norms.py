"""L2-normalisation heads -> ``Activation("l2_normalize", alpha)``.

``LpNormalization(p=2)`` over the feature axis maps directly. The patterns
exporters write out are tracked on a :class:`~converters.onnx.values.Norm`
value: ``ReduceL2`` (or ``ReduceSumSquare``, or ``ReduceSum`` of ``x * x`` or
``Pow(x, 2)``, then ``Sqrt``) over the feature axis with ``keepdims=1``,
optionally floored by ``Clip(min=eps)`` or ``Max(., eps)`` before or after the
square root, optionally ``Expand``-ed back to the data's shape, and finally
``Div(x, norm)`` of the very data it was computed from.
``torch.nn.functional.normalize`` exports as ``ReduceL2 -> Clip(eps) -> Expand
-> Div``.

The floor becomes the activation's ``alpha`` (a floor on the sum of squares:
``eps**2`` for a floor on the norm). Without a floor ``alpha`` is the
runtime's default 1e-24: an all-zero vector then gives zeros where ONNX
Runtime gives NaN. A norm used in any other way is data: ``edgernn.Reduce("l2")``
(``"sum_square"``) of the features, floored by ``Unary("max")``
(``ConversionContext.as_seq``). ``ReduceSum`` of data that is not a square is
``Reduce("sum")``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

import edgernn

from .activations import apply_activation
from .reduce import convert_reduce as plain_reduce
from .values import Const, Norm, Seq


def _feature_axis_only(ctx, node, seq: Seq, axes) -> None:
    """``axes`` (ints, or None for all) must be exactly the last (feature) axis."""
    n = len(seq.axes)
    labels = ctx.labels(seq)
    red = set(range(n)) if axes is None else set(ctx.axes(node, axes, n, "axes"))
    if n - 1 not in red or any(seq.sizes[k] != 1 for k in red - {n - 1}) or \
            labels[-1] != "F" or seq.tokens:
        raise ctx.unsupported(node, f"{node.op_type} over axes {axes} of a rank-{n} tensor "
                                    f"with axes {list(labels)}; only over the last (feature) "
                                    f"axis")
    if any(lab == "D" and s != 1 for lab, s in zip(labels, seq.sizes, strict=True)):
        raise ctx.unsupported(node, f"{node.op_type} over each direction of a bidirectional "
                                    f"output")


def _reduce_axes(ctx, node, at):
    if len(node.input) > 1 and node.input[1]:
        return [int(a) for a in np.asarray(ctx.const(node, 1, "axes")).reshape(-1)]
    return None if at.get("axes") is None else [int(a) for a in at["axes"]]


def square(ctx, node, ins):
    """``Pow(x, 2)`` of the data: ``x * x``, which may be summed into a norm."""
    ctx.check_attrs(node, ())
    e = ins[1].value if isinstance(ins[1], Const) else None
    if e is None or np.asarray(e).size != 1 or float(np.asarray(e).reshape(-1)[0]) != 2:
        raise ctx.unsupported(node, "Pow of the data; only Pow(x, 2)")
    seq = ctx.as_seq(node, ins[0])
    ctx.feature_axis(node, seq)
    t = ctx.apply(node, edgernn.Mul(), seq.tensor, seq.tensor)
    return [Seq(t, seq.axes, seq.sizes, last=seq.last, square_of=seq)]


def convert_reduce(ctx, node, ins):
    """ReduceL2 / ReduceSumSquare of the data (ReduceSum of its square) over its
    feature axis, keepdims=1."""
    at = ctx.check_attrs(node, ("axes", "keepdims", "noop_with_empty_axes"))
    squared = node.op_type != "ReduceL2"
    if node.op_type == "ReduceSum":
        if not (isinstance(ins[0], Seq) and ins[0].square_of is not None):
            return plain_reduce(ctx, node, ins)   # a sum of the data
        ins = [ins[0].square_of]
    seq = ctx.as_seq(node, ins[0])
    if not int(at.get("keepdims", 1)):
        raise ctx.unsupported(node, f"{node.op_type} with keepdims=0; only keepdims=1 (as "
                                    f"the L2-normalisation pattern x / ReduceL2(x))")
    axes = _reduce_axes(ctx, node, at)
    if axes is None and int(at.get("noop_with_empty_axes", 0)):
        raise ctx.unsupported(node, "noop_with_empty_axes=1 without axes")
    _feature_axis_only(ctx, node, seq, axes)
    return [Norm(seq, squared=squared)]


def _norm_input(ctx, node, v) -> Norm:
    if not isinstance(v, Norm):
        raise ctx.unsupported(node, f"{node.op_type} of a {type(v).__name__} value; only as "
                                    f"part of an L2-normalisation x / max(ReduceL2(x), eps)")
    return v


def convert_sqrt(ctx, node, ins):
    """Sqrt of ReduceSumSquare: the norm."""
    ctx.check_attrs(node, ())
    v = _norm_input(ctx, node, ins[0])
    if not v.squared:
        raise ctx.unsupported(node, "Sqrt of a norm; only of a sum of squares")
    return [replace(v, squared=False, floor=math.sqrt(v.floor))]


def _floor(ctx, node, v: Norm, eps) -> list:
    eps = np.asarray(eps, np.float64)
    if eps.size != 1 or not np.isfinite(eps).all() or float(eps.reshape(-1)[0]) < 0:
        raise ctx.unsupported(node, f"{node.op_type} of a norm by {eps.tolist()}; only by "
                                    f"one non-negative constant")
    return [replace(v, floor=max(v.floor, float(eps.reshape(-1)[0])))]


def convert_clip(ctx, node, ins):
    """Clip(norm, min=eps) with no upper bound."""
    at = ctx.check_attrs(node, ("min", "max"))
    v = _norm_input(ctx, node, ins[0])
    lo = ctx.const(node, 1, "min", optional=True) if ctx.opset >= 11 else at.get("min")
    hi = ctx.const(node, 2, "max", optional=True) if ctx.opset >= 11 else at.get("max")
    if hi is not None and float(np.asarray(hi, np.float64).reshape(-1)[0]) < 3.0e38:
        raise ctx.unsupported(node, "Clip of a norm with an upper bound")
    return _floor(ctx, node, v, 0.0 if lo is None else lo)


def convert_max(ctx, node, ins):
    """Max(norm, eps) in either order."""
    ctx.check_attrs(node, ())
    if len(ins) != 2 or sum(isinstance(v, Const) for v in ins) != 1:
        raise ctx.unsupported(node, "Max must take a norm and one constant")
    c, v = (ins[0], ins[1]) if isinstance(ins[0], Const) else (ins[1], ins[0])
    return _floor(ctx, node, _norm_input(ctx, node, v), c.value)


def _l2(floor: float) -> edgernn.Activation:
    return edgernn.Activation("l2_normalize", floor * floor if floor > 0 else None)


def divide_by_norm(ctx, node, ins):
    """Div(x, norm of x) -> l2_normalize."""
    if not (isinstance(ins[0], Seq) and isinstance(ins[1], Norm)):
        raise ctx.unsupported(node, f"Div of {type(ins[0]).__name__} by "
                                    f"{type(ins[1]).__name__}; the data may be divided only by "
                                    f"constants or by its own L2 norm")
    seq = ctx.as_seq(node, ins[0])
    n = ins[1]
    if n.squared:
        raise ctx.unsupported(node, "Div by a sum of squares (no Sqrt); only by the L2 norm")
    if n.seq != seq:
        raise ctx.unsupported(node, "Div by the norm of other data; only x / ReduceL2(x)")
    return [apply_activation(ctx, node, seq, _l2(n.floor))]


def convert_lp_normalization(ctx, node, ins):
    """LpNormalization(p=2) over the feature axis."""
    at = ctx.check_attrs(node, ("axis", "p"))
    seq = ctx.as_seq(node, ins[0])
    if int(at.get("p", 2)) != 2:
        raise ctx.unsupported(node, f"p={at.get('p')}; only p=2")
    _feature_axis_only(ctx, node, seq, [int(at.get("axis", -1))])
    return [apply_activation(ctx, node, seq, _l2(0.0))]


OPS = {
    "ReduceL2": convert_reduce,
    "ReduceSumSquare": convert_reduce,
    "ReduceSum": convert_reduce,
    "Pow": square,
    "Sqrt": convert_sqrt,
    "Clip": convert_clip,
    "Max": convert_max,
    "LpNormalization": convert_lp_normalization,
}

__all__ = ["OPS", "divide_by_norm", "square"]
