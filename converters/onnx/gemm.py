"""Gemm and MatMul -> :class:`edgernn.Dense`.

``MatMul(x, W)`` with ``W: float32[in, out]`` an initializer gives
``Dense(W.T)``; ``Gemm(x, B, C)`` with ``transA=0`` gives
``Dense(alpha * op(B).T, beta * C)``. A bias ``Add``, a ``Mul``/``Div``/``Sub``
by a constant and an activation right after fold into that Dense when the
model is built (:mod:`converters.onnx.fold`).
"""

from __future__ import annotations

import numpy as np

import edgernn

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
    t = ctx.apply(node, edgernn.Dense(weight, bias), seq.tensor)
    return [seq.with_tensor(t, seq.sizes[:-1] + (weight.shape[0],))]


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


OPS = {"MatMul": convert_matmul, "Gemm": convert_gemm}
