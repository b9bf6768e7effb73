"""Gemm, MatMul and a following bias Add -> :class:`edgernn.Dense`.

``MatMul(x, W)`` with ``W: float32[in, out]`` an initializer gives
``Dense(W.T)``; an ``Add`` of a constant ``[out]`` vector to a Dense output
that has no activation yet folds into its bias. ``Gemm(x, B, C)`` with
``transA=0`` gives ``Dense(alpha * op(B).T, beta * C)``. ``Mul``/``Div``/``Sub``
by a constant right after fold into that Dense too. Division of the data by
its own L2 norm is :func:`converters.onnx.norms.divide_by_norm`.
"""

from __future__ import annotations

import numpy as np

import edgernn

from .norms import divide_by_norm, square
from .values import Const, Seq


def _check_features(ctx, node, seq: Seq, n_in: int) -> None:
    labels = ctx.labels(seq)
    if seq.tokens or labels[-1] != "F":
        raise ctx.unsupported(node, "the data's last axis must be its feature axis")
    if any(lab == "D" and s != 1 for lab, s in zip(labels, seq.sizes, strict=True)):
        raise ctx.unsupported(node, "a matmul over each direction of a bidirectional Y "
                                    "(transpose/reshape it to [T, B, 2H] first)")
    if seq.sizes[-1] != n_in:
        raise ctx.bad(node, f"data has {seq.sizes[-1]} features, the weight expects {n_in}")


def _dense(ctx, node, seq: Seq, weight, bias) -> list:
    ctx.append(edgernn.Dense(weight, bias))
    sizes = seq.sizes[:-1] + (weight.shape[0],)
    return [Seq(seq.axes, sizes, ctx.head, last=seq.last, dense_open=True)]


def convert_matmul(ctx, node, ins):
    """MatMul(data, W[in, out]) -> Dense(W.T)."""
    ctx.check_attrs(node, ())
    if not isinstance(ins[1], Const) or isinstance(ins[0], Const):
        raise ctx.unsupported(node, "MatMul must multiply the data (left) by a constant "
                                    "weight matrix (right)")
    seq = ctx.as_seq(node, ins[0])
    w = np.asarray(ins[1].value, np.float32)
    if w.ndim != 2:
        raise ctx.unsupported(node, f"MatMul weight of rank {w.ndim}; only 2-D weights")
    _check_features(ctx, node, seq, w.shape[0])
    return _dense(ctx, node, seq, w.T, None)


def convert_add(ctx, node, ins):
    """Add(dense_output, c[out]) -> the Dense's bias."""
    ctx.check_attrs(node, ())
    consts = [v for v in ins if isinstance(v, Const)]
    if len(consts) != 1:
        raise ctx.unsupported(node, "Add must add a constant bias to the data (adding two "
                                    "data tensors, e.g. a residual connection, is not "
                                    "supported)")
    seq = ctx.as_seq(node, ins[1] if isinstance(ins[0], Const) else ins[0])
    prev = ctx.layers[-1] if ctx.layers else None
    if not (seq.dense_open and isinstance(prev, edgernn.Dense)):
        raise ctx.unsupported(node, "Add of a constant is supported only as the bias of a "
                                    "preceding MatMul/Gemm")
    c = np.asarray(consts[0].value, np.float32)
    n = prev.output_size
    if c.size != n or (c.ndim and c.shape[-1] != n) or c.ndim > len(seq.axes):
        raise ctx.unsupported(node, f"Add of a constant of shape {c.shape}; expected a bias "
                                    f"vector of {n} values")
    bias = c.reshape(n) + (0 if prev.bias is None else prev.bias)
    ctx.replace(-1, edgernn.Dense(prev.weight, bias, prev.activation))
    return [Seq(seq.axes, seq.sizes, ctx.head, last=seq.last, dense_open=True)]


def convert_gemm(ctx, node, ins):
    """Gemm(data[N, in], B, C) with transA=0 -> Dense."""
    at = ctx.check_attrs(node, ("alpha", "beta", "transA", "transB"))
    if int(at.get("transA", 0)):
        raise ctx.unsupported(node, "transA=1; supported: transA=0")
    seq = ctx.as_seq(node, ins[0])
    w = ctx.const(node, 1, "B").astype(np.float32)
    w = w if int(at.get("transB", 0)) else w.T
    _check_features(ctx, node, seq, w.shape[1])
    if len(seq.axes) != 2:
        raise ctx.bad(node, f"Gemm needs a rank-2 input, got rank {len(seq.axes)}")
    c = ctx.const(node, 2, "C", optional=True)
    bias = None
    if c is not None:
        c = np.asarray(c, np.float32)
        if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise ctx.unsupported(node, f"Gemm C of shape {c.shape}; expected a bias row")
        bias = np.broadcast_to(c.reshape(-1), (w.shape[0],)) * np.float32(at.get("beta", 1.0))
    return _dense(ctx, node, seq, w * np.float32(at.get("alpha", 1.0)), bias)


def convert_scale(ctx, node, ins):
    """Mul / Div / Sub of a Dense output (no activation yet) by a constant scalar or
    ``[out]`` vector: folds into the Dense's weight and bias."""
    ctx.check_attrs(node, ())
    k = [isinstance(v, Const) for v in ins]
    if node.op_type == "Mul" and k == [False, False]:
        return square(ctx, node, ins)
    if k != [False, True] and not (k == [True, False] and node.op_type == "Mul"):
        if node.op_type == "Div":
            return divide_by_norm(ctx, node, ins)
        raise ctx.unsupported(node, f"{node.op_type} must combine the data with one constant")
    seq = ctx.as_seq(node, ins[1] if k[0] else ins[0])
    c = np.asarray(ins[0 if k[0] else 1].value, np.float32)
    prev = ctx.layers[-1] if ctx.layers else None
    if not (seq.dense_open and isinstance(prev, edgernn.Dense)):
        raise ctx.unsupported(node, f"{node.op_type} by a constant is supported only right "
                                    f"after a MatMul/Gemm (+bias), before its activation")
    n = prev.output_size
    if c.size not in (1, n) or (c.ndim and c.shape[-1] != c.size) or c.ndim > len(seq.axes):
        raise ctx.unsupported(node, f"{node.op_type} by a constant of shape {c.shape}; "
                                    f"expected a scalar or {n} values")
    c = np.broadcast_to(c.reshape(-1), (n,)).astype(np.float32)
    bias = np.zeros(n, np.float32) if prev.bias is None else prev.bias
    if node.op_type == "Sub":
        w, b = prev.weight, bias - c
    else:
        if node.op_type == "Div" and not np.all(c):
            raise ctx.bad(node, "division by zero")
        c = np.float32(1) / c if node.op_type == "Div" else c
        w, b = prev.weight * c[:, None], bias * c
    ctx.replace(-1, edgernn.Dense(w, b, prev.activation))
    return [Seq(seq.axes, seq.sizes, ctx.head, last=seq.last, dense_open=True)]


OPS = {
    "MatMul": convert_matmul,
    "Add": convert_add,
    "Gemm": convert_gemm,
    "Mul": convert_scale,
    "Div": convert_scale,
    "Sub": convert_scale,
}
