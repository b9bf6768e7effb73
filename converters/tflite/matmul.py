"""FULLY_CONNECTED and BATCH_MATMUL by a constant matrix.

One row per step is a :class:`edgernn.Dense` (int8 FC weights as LiteRT's hybrid
kernel, :func:`.simple_ops.convert_fully_connected`). Several rows ``[M, K]`` in
the walk share one weight matrix as a :class:`edgernn.Conv1d`: a kernel of 1 over
``M`` positions when the rows lie channels-first (after a convolution), else one
channel of length ``M * K`` read by a kernel of ``K`` with stride ``K``; the
output lies ``(O, M)``. BATCH_MATMUL ``x @ W`` (``adj_y``: ``x @ W.T``) is the
FC with weights ``W.T``; a data right-hand side or ``adj_x`` is refused.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from .activations import fused_layers
from .simple_ops import convert_fully_connected


def dense_on(w, op, x, layers):
    """``layers`` (a Dense) on one row ``x`` of places; the output as the file's shape."""
    y = w.apply(op, layers, w.tensor(op, x))
    return w.wrap(op, y, w.out_shape(op))


def _rows(w, op, x, weight, bias, keep):
    """``weight[O, K]`` on each of the ``M`` rows of ``x`` (float)."""
    o, k = weight.shape
    rows = x.reshape(-1, k)
    m = rows.shape[0]
    reg = w.region(rows.T)
    if reg is not None and np.array_equal(reg[1].reshape(-1), np.arange(x.size)):
        t, conv = reg[0], edgernn.Conv1d(weight[:, :, None], bias, m)
    else:
        t, conv = w.tensor(op, rows), edgernn.Conv1d(weight[:, None, :], bias, m * k, stride=k)
    y = w.apply(op, [conv, *fused_layers(op)], t)
    out = [*x.shape[:-1], o] if keep else [m, o]
    return w.wrap_as(y, (o, m), (1, 0)).reshape(out)


def _fully_connected(w, op):
    x = w.data(op, 0)
    w_t = w.sg.tensors[op.inputs[1]]
    real = w_t.real()
    if real is None:
        raise UnsupportedOpError(f"{op}: weights {w_t.name!r} are not a constant")
    k = real.shape[-1]
    if x.size % k:
        raise UnsupportedOpError(f"{op}: input {list(x.shape)} for weights of {k} inputs")
    if x.size == k:
        return [dense_on(w, op, x, convert_fully_connected(w.sg, op))]
    if w_t.type_code != 0:
        raise UnsupportedOpError(f"{op}: int8 weights on {x.size // k} rows a step; "
                                 f"supported: float32 (int8 on one row)")
    bias = w.const(op, 2, "the bias").astype(np.float32) if len(op.inputs) > 2 and \
        op.inputs[2] >= 0 else None
    return [_rows(w, op, x, real.astype(np.float32), bias, bool(op.opt("KeepNumDims", False)))]


def _constant_rhs(sg, op):
    """``W.T``: float32[N, K] for ``x @ W`` (refusing what is not that)."""
    if op.opt("AdjX", False):
        raise UnsupportedOpError(f"{op}: adj_x (a transposed data operand) is not supported")
    w_t = sg.tensors[op.inputs[1]]
    c = sg.const(op.inputs[1])
    if c is None or sg.const(op.inputs[0]) is not None:
        raise UnsupportedOpError(f"{op}: {'data' if c is None else 'a constant'} @ "
                                 f"{'data' if c is None else 'data'}; supported: data @ a "
                                 f"constant matrix")
    if w_t.type_code != 0:
        raise UnsupportedOpError(f"{op}: {np.dtype(w_t.dtype).name} right-hand side "
                                 f"{w_t.name!r}; supported: float32")
    if c.ndim < 2 or any(d != 1 for d in c.shape[:-2]):
        raise UnsupportedOpError(f"{op}: right-hand side {list(c.shape)}; supported: one "
                                 f"matrix [K, N]")
    c = c.reshape(c.shape[-2:]).astype(np.float32)
    return c if op.opt("AdjY", False) else np.ascontiguousarray(c.T)


def flat_batch_matmul(sg, op):
    """A sequence model's per-step ``[.., K] @ W[K, N]``."""
    return [edgernn.Dense(_constant_rhs(sg, op))]


def _batch_matmul(w, op):
    x = w.data(op, 0)
    weight = _constant_rhs(w.sg, op)
    if x.shape[-1] != weight.shape[1]:
        raise UnsupportedOpError(f"{op}: {list(x.shape)} @ a matrix of {weight.shape[1]} rows")
    if x.size == weight.shape[1]:
        return [dense_on(w, op, x, [edgernn.Dense(weight)])]
    return [_rows(w, op, x, weight, None, True)]


FLAT = {"BATCH_MATMUL": flat_batch_matmul}
WALK = {"FULLY_CONNECTED": _fully_connected, "BATCH_MATMUL": _batch_matmul}

__all__ = ["FLAT", "WALK", "dense_on"]
