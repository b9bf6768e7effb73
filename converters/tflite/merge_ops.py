"""Ops that combine data: CONCATENATION (features axis), ADD, SUB, MUL.

Each converter takes (subgraph, op, args), ``args`` holding per op input the
edgernn Tensor it carries or, for a constant, its array; it returns the output
Tensor. A constant must broadcast over time and batch (a scalar or one value
per feature); data operands must have equal sizes. A fused activation
(NONE, RELU, TANH) becomes an :class:`edgernn.Activation` after the op.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

from .simple_ops import fused_activation

_BINARY = {"ADD": edgernn.Add, "SUB": edgernn.Sub, "MUL": edgernn.Mul}


def _node(op, fn, *args):
    try:
        return fn(*args)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{op}: {exc}") from None


def _fused(op, t):
    act = fused_activation(op)
    return t if act == "linear" else _node(op, edgernn.Activation(act), t)


def _constant(sg, op, c, size):
    c = np.asarray(c)
    rank = len(sg.tensors[op.outputs[0]].shape)
    if c.ndim > rank or any(d != 1 for d in c.shape[:-1]) or \
            (c.ndim and c.shape[-1] not in (1, size)):
        raise UnsupportedOpError(f"{op}: a constant of shape {list(c.shape)}; only a scalar or "
                                 f"one value per feature ({size})")
    c = c.astype(np.float32).reshape(-1)
    return c.reshape(()) if c.size == 1 else c


def convert_concatenation(sg, op, args):
    """CONCATENATION along the last (feature) axis of data tensors."""
    rank = len(sg.tensors[op.outputs[0]].shape)
    axis = op.opt("Axis", 0)
    if rank == 0 or axis % rank != rank - 1:
        raise UnsupportedOpError(f"{op}: concatenates along axis {axis} of rank-{rank} "
                                 f"tensors; only along the last (feature) axis")
    if any(isinstance(a, np.ndarray) for a in args):
        raise UnsupportedOpError(f"{op}: concatenates a constant; only data tensors")
    return _fused(op, _node(op, edgernn.Concat(), *args))


def convert_binary(sg, op, args):
    """ADD, SUB, MUL of two data tensors, or of data and a constant."""
    cls = _BINARY[op.name]
    data = [a for a in args if not isinstance(a, np.ndarray)]
    if len(args) != 2 or not data:
        raise UnsupportedOpError(f"{op}: expected two operands, data with data or with a "
                                 f"constant")
    if len(data) == 2:
        if data[0].size != data[1].size:
            raise UnsupportedOpError(f"{op}: data of {data[0].size} and {data[1].size} "
                                     f"features; broadcasting is not supported")
        return _fused(op, _node(op, cls(), *data))
    x = data[0]
    c = _constant(sg, op, args[1] if args[0] is x else args[0], x.size)
    if cls is edgernn.Sub and args[1] is x:  # c - x
        neg = _node(op, edgernn.Mul(np.float32(-1)), x)
        return _fused(op, _node(op, edgernn.Add(c), neg))
    return _fused(op, _node(op, cls(c), x))


MERGE_OPS = {"CONCATENATION": convert_concatenation, "ADD": convert_binary,
             "SUB": convert_binary, "MUL": convert_binary}

__all__ = ["MERGE_OPS"]
