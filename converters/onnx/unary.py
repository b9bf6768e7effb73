"""Elementwise math on data -> :class:`edgernn.Unary`: ``Abs``, ``Neg``, ``Exp``, ``Log``,
``Reciprocal``, and ``Sqrt``, ``Pow`` (by a constant), ``Clip`` (constant bounds),
``Max``/``Min`` (with one constant).

On an L2 norm, ``Sqrt``, ``Pow(x, 2)``, ``Clip`` and ``Max`` belong to the
normalisation pattern and go to :mod:`converters.onnx.norms` instead.
"""

from __future__ import annotations

import numpy as np

import edgernn

from . import norms
from .values import Const, Norm


def _apply(ctx, node, v, func, alpha=0.0, beta=0.0):
    seq = ctx.as_seq(node, v)
    if seq.tokens:
        raise ctx.unsupported(node, f"{node.op_type} of token ids")
    ctx.feature_axis(node, seq)
    return [seq.with_tensor(ctx.apply(node, edgernn.Unary(func, alpha, beta), seq.tensor))]


def _scalar(ctx, node, c, what) -> float:
    c = np.asarray(c, np.float64)
    if c.size != 1 or not np.isfinite(c).all():
        raise ctx.unsupported(node, f"{what} {c.tolist()!r:.80}; only one finite constant")
    return float(c.reshape(-1)[0])


def _plain(func):
    def convert(ctx, node, ins):
        ctx.check_attrs(node, ())
        return _apply(ctx, node, ins[0], func)
    convert.__doc__ = f"ONNX {func} of data -> edgernn.Unary({func!r})."
    return convert


def convert_sqrt(ctx, node, ins):
    """Sqrt of a sum of squares (a norm), or of data."""
    if isinstance(ins[0], Norm):
        return norms.convert_sqrt(ctx, node, ins)
    ctx.check_attrs(node, ())
    return _apply(ctx, node, ins[0], "sqrt")


def convert_pow(ctx, node, ins):
    """Pow(x, 2) (which may be summed into a norm), or Pow of data by another constant."""
    ctx.check_attrs(node, ())
    if not isinstance(ins[1], Const):
        raise ctx.unsupported(node, "Pow by data; only by a constant exponent")
    e = _scalar(ctx, node, ins[1].value, "Pow by")
    if e == 2:
        return norms.square(ctx, node, ins)
    return _apply(ctx, node, ins[0], "pow", e)


def convert_clip(ctx, node, ins):
    """Clip of a norm (its floor), or of data by constant bounds."""
    if isinstance(ins[0], Norm):
        return norms.convert_clip(ctx, node, ins)
    at = ctx.check_attrs(node, ("min", "max"))
    lo = ctx.const(node, 1, "min", optional=True) if ctx.opset >= 11 else at.get("min")
    hi = ctx.const(node, 2, "max", optional=True) if ctx.opset >= 11 else at.get("max")
    lo = None if lo is None else _scalar(ctx, node, lo, "Clip min")
    hi = None if hi is None else _scalar(ctx, node, hi, "Clip max")
    if lo is not None and hi is not None:
        if lo > hi:  # ONNX: every output is max
            return _apply(ctx, node, ins[0], "clip", hi, hi)
        return _apply(ctx, node, ins[0], "clip", lo, hi)
    if lo is not None:
        return _apply(ctx, node, ins[0], "max", lo)
    if hi is not None:
        return _apply(ctx, node, ins[0], "min", hi)
    return [ins[0]]


def _max_min(func):
    def convert(ctx, node, ins):
        ctx.check_attrs(node, ())
        if func == "max" and any(isinstance(v, Norm) for v in ins):
            return norms.convert_max(ctx, node, ins)
        if len(ins) != 2 or sum(isinstance(v, Const) for v in ins) != 1:
            raise ctx.unsupported(node, f"{node.op_type} of {len(ins)} inputs; only of data "
                                        f"and one constant")
        c, v = (ins[0], ins[1]) if isinstance(ins[0], Const) else (ins[1], ins[0])
        return _apply(ctx, node, v, func, _scalar(ctx, node, c.value, node.op_type))
    convert.__doc__ = f"ONNX {func.title()}(data, constant) -> edgernn.Unary({func!r})."
    return convert


OPS = {
    "Abs": _plain("abs"), "Neg": _plain("neg"), "Exp": _plain("exp"), "Log": _plain("log"),
    "Reciprocal": _plain("reciprocal"), "Sqrt": convert_sqrt, "Pow": convert_pow,
    "Clip": convert_clip, "Max": _max_min("max"), "Min": _max_min("min"),
}
