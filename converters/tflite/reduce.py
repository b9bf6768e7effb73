"""Reductions: MEAN, SUM, REDUCE_MAX, REDUCE_MIN -> :class:`edgernn.Reduce`.

In a sequence model (``FLAT``) only the features (the last axis) can be reduced;
over time would need the whole sequence. In the walk (``WALK``) any set of axes
whose values lie together reduces: the reduced block last in memory (each row to
one value) or first (each column), whatever the TFLite axis order.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

_FUNC = {"MEAN": "mean", "SUM": "sum", "REDUCE_MAX": "max", "REDUCE_MIN": "min"}


def _axes(op, axes, rank):
    if axes is None:
        raise UnsupportedOpError(f"{op}: the axes are not a constant")
    return sorted({int(a) % rank for a in np.asarray(axes).reshape(-1)})


def flat_reduce(sg, op):
    """Over the last axis of ``[.., F]`` (and any axes of size 1)."""
    shape = sg.tensors[op.inputs[0]].shape
    axes = _axes(op, sg.const(op.inputs[1]), len(shape))
    over = [a for a in axes if shape[a] != 1]
    if over != [len(shape) - 1]:
        raise UnsupportedOpError(f"{op}: reduces axes {axes} of {list(shape)}; supported in a "
                                 f"sequence model: the features (axis {len(shape) - 1}); over "
                                 f"time it would need the whole sequence")
    return [edgernn.Reduce(_FUNC[op.name], int(shape[-1]))]


def _walk(w, op):
    x = w.data(op, 0)
    axes = _axes(op, w.const(op, 1, "axes"), x.ndim)
    kept = [a for a in range(x.ndim) if a not in axes]
    nr = int(np.prod([x.shape[a] for a in axes]))
    nk = x.size // max(nr, 1)
    out = [1 if a in axes else d for a, d in enumerate(x.shape)] if op.opt("KeepDims") \
        else [x.shape[a] for a in kept]
    func = _FUNC[op.name]
    if nr == 1:
        return [x.reshape(out)]
    tries = [(x.transpose(kept + axes), nr, -1), (x.transpose(axes + kept), nk, 0)]
    for places, cols, axis in tries:   # the layout the values already have, if any
        reg = w.region(places)
        if reg is not None and np.array_equal(reg[1].reshape(-1), np.arange(x.size)):
            y = w.apply(op, [edgernn.Reduce(func, cols, axis)], reg[0])
            return [w.wrap(op, y, out)]
    y = w.apply(op, [edgernn.Reduce(func, nr, -1)], w.tensor(op, tries[0][0]))
    return [w.wrap(op, y, out)]


FLAT = {n: flat_reduce for n in _FUNC}
WALK = {n: _walk for n in _FUNC}

__all__ = ["FLAT", "WALK"]
