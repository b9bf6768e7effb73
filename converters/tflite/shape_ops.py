"""Shape ops: they only move places (:mod:`.statewalk`), nothing runs for them.

RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, UNPACK, PACK, SPLIT, SPLIT_V, SLICE,
STRIDED_SLICE, CONCATENATION (any axis; a fused activation runs on the result) and
a PAD of zeros only. ``flat_transpose`` is TRANSPOSE on the per-step feature
vector of a sequence model: only a relabelling (the features stay last and in
order) converts there.
"""

from __future__ import annotations

import numpy as np

from edgernn.errors import UnsupportedOpError

from .activations import fused_layers


def _reshape(w, op):
    x = w.data(op, 0)
    shape = None
    if len(op.inputs) > 1 and op.inputs[1] >= 0 and not w.is_data(op, 1):
        shape = [int(d) for d in np.asarray(w.arg(op, 1)).reshape(-1)]
    elif op.opt("NewShapeLength", 0):
        shape = [int(d) for d in op.options.NewShapeAsNumpy()]
    if shape is None:
        shape = list(w.out_shape(op))
    if shape.count(-1) == 1:
        known = int(np.prod([d for d in shape if d != -1]))
        shape[shape.index(-1)] = x.size // max(known, 1)
    if int(np.prod(shape)) != x.size:
        raise UnsupportedOpError(f"{op}: reshapes {list(x.shape)} to {shape}")
    return [x.reshape(shape)]


def _squeeze(w, op):
    x = w.data(op, 0)
    dims = [int(d) % x.ndim for d in op.options.SqueezeDimsAsNumpy()] \
        if op.opt("SqueezeDimsLength", 0) else [a for a in range(x.ndim) if x.shape[a] == 1]
    if any(x.shape[a] != 1 for a in dims):
        raise UnsupportedOpError(f"{op}: squeezes axes {dims} of {list(x.shape)}")
    return [x.reshape([d for a, d in enumerate(x.shape) if a not in dims])]


def _expand_dims(w, op):
    x = w.data(op, 0)
    axis = int(np.asarray(w.const(op, 1, "axis")).reshape(-1)[0])
    return [np.expand_dims(x, axis % (x.ndim + 1))]


def _transpose(w, op):
    x = w.data(op, 0)
    perm = [int(p) for p in np.asarray(w.const(op, 1, "perm")).reshape(-1)]
    return [x.transpose(perm)]


def _unpack(w, op):
    x = w.data(op, 0)
    return list(np.moveaxis(x, op.opt("Axis", 0) % x.ndim, 0))


def _pack(w, op):
    parts = [w.data(op, k) for k in range(len(op.inputs))]
    return [np.stack(parts, axis=op.opt("Axis", 0) % (parts[0].ndim + 1))]


def _split(w, op):
    axis, x = w.const(op, 0, "axis"), w.data(op, 1)
    return np.split(x, len(op.outputs), axis=int(axis) % x.ndim)


def _split_v(w, op):
    x, sizes = w.data(op, 0), [int(s) for s in w.const(op, 1, "size_splits").reshape(-1)]
    axis = int(w.const(op, 2, "axis")) % x.ndim
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def _slice(w, op):
    x = w.data(op, 0)
    begin, size = (w.const(op, k, n).reshape(-1) for k, n in ((1, "begin"), (2, "size")))
    return [x[tuple(slice(int(b), None if int(s) == -1 else int(b) + int(s))
                    for b, s in zip(begin, size, strict=True))]]


def _strided_slice(w, op):
    x = w.data(op, 0)
    begin, end, strides = (w.const(op, k, n) for k, n in ((1, "begin"), (2, "end"),
                                                          (3, "strides")))
    if op.opt("EllipsisMask", 0) or op.opt("NewAxisMask", 0) or op.opt("Offset", False):
        raise UnsupportedOpError(f"{op}: ellipsis, new-axis or offset masks are not supported")
    bm, em, sm = (op.opt(n, 0) for n in ("BeginMask", "EndMask", "ShrinkAxisMask"))
    index = []
    for ax in range(x.ndim):
        if ax >= len(begin):
            index.append(slice(None))
            continue
        b, e, s = int(begin[ax]), int(end[ax]), int(strides[ax])
        if sm >> ax & 1:
            index.append(b)
        else:
            index.append(slice(None if bm >> ax & 1 else b, None if em >> ax & 1 else e, s))
    return [x[tuple(index)].reshape(w.out_shape(op))]


def _concatenation(w, op):
    parts = [w.data(op, k) for k in range(len(op.inputs))]
    y = np.concatenate(parts, axis=op.opt("Axis", 0) % parts[0].ndim)
    layers = fused_layers(op)
    return [w.elementwise(op, y, layers) if layers else y]


def zero_pad(w, op):
    """PAD/PADV2 of nothing (all pads zero)."""
    return [w.data(op, 0)]


def flat_transpose(sg, op):
    """TRANSPOSE in a sequence model: the features must stay the last axis and every
    axis longer than 1 keep its order (a relabelling, no data moves)."""
    perm = sg.const(op.inputs[1])
    shape = sg.tensors[op.inputs[0]].shape
    if perm is None:
        raise UnsupportedOpError(f"{op}: the permutation is not a constant")
    perm = [int(p) for p in np.asarray(perm).reshape(-1)]
    big = [p for p in perm if shape[p] != 1]
    if perm[-1] != len(perm) - 1 or big != sorted(big):
        raise UnsupportedOpError(f"{op}: permutation {perm} of {list(shape)} moves data "
                                 f"(features or time); supported in a sequence model: a "
                                 f"relabelling of size-1 axes")
    return []


WALK = {"RESHAPE": _reshape, "SQUEEZE": _squeeze, "EXPAND_DIMS": _expand_dims,
        "TRANSPOSE": _transpose, "UNPACK": _unpack, "PACK": _pack, "SPLIT": _split,
        "SPLIT_V": _split_v, "SLICE": _slice, "STRIDED_SLICE": _strided_slice,
        "CONCATENATION": _concatenation}

__all__ = ["WALK", "zero_pad", "flat_transpose"]
