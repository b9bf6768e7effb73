"""CONCATENATION of a sequence model's per-step feature vectors (the elementwise
ops of two operands are :mod:`.elementwise`).

Each converter takes (subgraph, op, args), ``args`` holding per op input the
edgernn Tensor it carries or, for a constant, its array; it returns the output
Tensor. A fused activation (NONE, RELU, TANH) becomes an
:class:`edgernn.Activation` after the op.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

from .simple_ops import fused_activation


def _node(op, fn, *args):
    try:
        return fn(*args)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{op}: {exc}") from None


def _fused(op, t):
    act = fused_activation(op)
    return t if act == "linear" else _node(op, edgernn.Activation(act), t)


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


__all__ = ["convert_concatenation"]
