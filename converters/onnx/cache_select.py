"""Frames of a convolution cache (:mod:`converters.onnx.cache`) picked, moved and written
back: Slice, Split and Gather along a time or packing axis, Transpose, Unsqueeze and
Squeeze that leave the axes a frame holds in order, and ScatterND/ScatterElements
writing whole frames into a cache (torch's in-place ``conv_cache[:, :, a:b] = ...`` and
``conv_cache[0] = ...``; TorchScript's Expand and Reshape of the frames to their own
shape and ScatterND of every value; Shape and Size, static). Each is the operation on
the object array of frames; every other value goes to the op's usual handler.
"""

from __future__ import annotations

import numpy as np

from .cache import as_frames, cells_of
from .chomp import convert_slice as _slice
from .regroup import convert_reshape as _reshape
from .select import convert_gather as _gather
from .select import convert_split as _split
from .shape_ops import OPS as _SHAPE_OPS
from .values import Const, Frames

_BIG = 2 ** 31 - 1


def _along(ctx, node, v: Frames, k: int, what: str) -> None:
    if v.held(k):
        raise ctx.unsupported(node, f"{what} along axis {k} of a cache's frames (from "
                                    f"{v.producer}), which each frame holds ({v.size(k)} "
                                    f"values); only along time or a packing axis")


def convert_slice(ctx, node, ins):
    """Slice of frames along their time (or packing) axes."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _slice(ctx, node, ins)
    starts, ends, axes, steps = ctx.slice_args(node)
    cells = v.cells
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        k = ctx.axes(node, [a], len(v.axes), "axes")[0]
        if v.held(k) and s == 0 and st == 1 and (e >= _BIG or e >= v.size(k)):
            continue    # the whole of an axis each frame holds
        _along(ctx, node, v, k, "Slice")
        cells = cells[(slice(None),) * k + (slice(s, e, st),)]
    if cells.size == 0:
        raise ctx.unsupported(node, f"selects no frame of {v.producer}")
    return [as_frames(cells, v.producer)]


def convert_split(ctx, node, ins):
    """Split of frames along their time (or packing) axis."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _split(ctx, node, ins)
    at = ctx.check_attrs(node, ("axis", "split", "num_outputs"))
    k = ctx.axes(node, [int(at.get("axis", 0))], len(v.axes))[0]
    _along(ctx, node, v, k, "Split")
    sizes = ctx.ints(node, 1, "split", at, "split")
    n = v.cells.shape[k]
    if sizes is None:
        chunk = -(-n // len(node.output))
        sizes = [min(chunk, n - i * chunk) for i in range(len(node.output))]
    if sum(sizes) != n or min(sizes) < 1:
        raise ctx.bad(node, f"split sizes {sizes} do not add up to the {n} frames of "
                            f"{v.producer}")
    cuts = np.cumsum(sizes)[:-1]
    return [as_frames(c, v.producer) for c in np.split(v.cells, cuts, axis=k)]


def convert_gather(ctx, node, ins):
    """Gather of constant indices along a time or packing axis (a scalar drops it)."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _gather(ctx, node, ins)
    at = ctx.check_attrs(node, ("axis",))
    k = ctx.axes(node, [int(at.get("axis", 0))], len(v.axes))[0]
    _along(ctx, node, v, k, "Gather")
    ind = np.asarray(ctx.const(node, 1, "indices")).astype(int)
    n = v.cells.shape[k]
    if ind.ndim > 1 or np.any(ind < -n) or np.any(ind >= n):
        raise ctx.unsupported(node, f"Gather of indices {ind.tolist()} from the {n} frames "
                                    f"of {v.producer}; only a scalar or a list in range")
    cells = np.take(v.cells, ind.reshape(-1), axis=k)
    if ind.ndim == 0:
        cells = np.squeeze(cells, axis=k)
        for p in np.ndindex(cells.shape):
            f = cells[p]
            cells[p] = f.with_axes(f.axes[:k] + f.axes[k + 1:], f.sizes[:k] + f.sizes[k + 1:])
    return [as_frames(cells, v.producer)]


def convert_transpose(ctx, node, ins):
    """Transpose of frames: a relabelling while the axes a frame holds keep their order."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _SHAPE_OPS["Transpose"](ctx, node, ins)
    at = ctx.check_attrs(node, ("perm",))
    n = len(v.axes)
    perm = [int(p) for p in at.get("perm", range(n)[::-1])]
    if sorted(perm) != list(range(n)):
        raise ctx.bad(node, f"perm {perm} is not a permutation of {n} axes")
    held = [p for p in perm if v.held(p)]
    if held != sorted(held):
        raise ctx.unsupported(node, f"Transpose {perm} of a cache's frames reorders the "
                                    f"axes each frame holds; only moves of the others")
    cells = np.transpose(v.cells, perm).copy()
    for p in np.ndindex(cells.shape):
        f = cells[p]
        cells[p] = f.with_axes([f.axes[j] for j in perm], [f.sizes[j] for j in perm])
    return [as_frames(cells, v.producer)]


def _reshaped(ctx, node, ins, cells: np.ndarray) -> list:
    """``cells`` (the frames rearranged) with each frame given to the shape op itself."""
    out = np.empty(cells.shape, object)
    flat = iter(ins[0].cells.reshape(-1))
    for p in np.ndindex(cells.shape):
        out[p] = _SHAPE_OPS[node.op_type](ctx, node, [next(flat)] + list(ins[1:]))[0]
    return [as_frames(out, ins[0].producer)]


def convert_unsqueeze(ctx, node, ins):
    """Unsqueeze of frames (``torch.stack`` of caches, a cache written back in place)."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _SHAPE_OPS["Unsqueeze"](ctx, node, ins)
    axes = ctx.ints(node, 1, "axes", ctx.attrs(node), "axes")
    axes = ctx.axes(node, axes, len(v.axes) + len(axes), "axes")
    return _reshaped(ctx, node, ins, np.expand_dims(v.cells, tuple(axes)))


def convert_squeeze(ctx, node, ins):
    """Squeeze of unit axes of frames."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _SHAPE_OPS["Squeeze"](ctx, node, ins)
    axes = ctx.ints(node, 1, "axes", ctx.attrs(node), "axes")
    if axes is None:
        axes = [k for k in range(len(v.axes)) if v.size(k) == 1]
    axes = ctx.axes(node, axes, len(v.axes), "axes")
    for k in axes:
        if v.size(k) != 1:
            raise ctx.unsupported(node, f"Squeeze of axis {k} of a cache's frames, of size "
                                        f"{v.size(k)}")
    return _reshaped(ctx, node, ins, np.squeeze(v.cells, axis=tuple(axes)))


def _full(v: Frames) -> tuple:
    return tuple(v.size(k) or 1 for k in range(len(v.axes)))


def convert_shape(ctx, node, ins):
    """Shape (Size) of frames: a constant, their shape being static."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _SHAPE_OPS[node.op_type](ctx, node, ins)
    full = _full(v)
    if node.op_type == "Size":
        return [Const(np.array(int(np.prod(full)), np.int64))]
    at = ctx.attrs(node)
    start, end = int(at.get("start", 0)), at.get("end")
    return [Const(np.array(full[start:None if end is None else int(end)], np.int64))]


def convert_expand(ctx, node, ins):
    """Expand of frames to their own shape (TorchScript's in-place write): nothing."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _SHAPE_OPS["Expand"](ctx, node, ins)
    shape = [int(d) for d in np.asarray(ctx.const(node, 1, "shape")).reshape(-1)]
    if np.broadcast_shapes(_full(v), tuple(shape)) != _full(v):
        raise ctx.unsupported(node, f"Expand of a cache's frames of shape {list(_full(v))} "
                                    f"to {shape}; only to their own shape")
    return [v]


def convert_reshape(ctx, node, ins):
    """Reshape of frames that only inserts or removes unit axes: a relabelling."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _reshape(ctx, node, ins)
    target = [int(d) for d in np.asarray(ctx.const(node, 1, "shape")).reshape(-1)]
    full = _full(v)
    target = [full[k] if d == 0 and k < len(full) else d for k, d in enumerate(target)]
    if target.count(-1) == 1:
        rest = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(full)) // max(rest, 1)
    old = [k for k, d in enumerate(full) if d != 1]
    new = [j for j, d in enumerate(target) if d != 1]
    if [full[k] for k in old] != [target[j] for j in new]:
        raise ctx.unsupported(node, f"Reshape of a cache's frames of shape {list(full)} to "
                                    f"{target}; only inserting or removing unit axes")
    src = dict(zip(new, old, strict=True))
    cells = v.cells.reshape([v.cells.shape[src[j]] if j in src else 1
                             for j in range(len(target))]).copy()
    for p in np.ndindex(cells.shape):
        f = cells[p]
        cells[p] = f.with_axes([f.axes[src[j]] if j in src else "U" for j in range(len(target))],
                               [f.sizes[src[j]] if j in src else 1 for j in range(len(target))])
    return [as_frames(cells, v.producer)]


def _by_element(ctx, node, cells, upd: Frames, idx) -> None:
    """ScatterND with an index per value of the first ``m`` axes (TorchScript): each
    frame's values must go to one frame of the cache, at their own places in it."""
    m = idx.shape[-1]
    held = [k for k in range(m) if upd.held(k)]
    own = np.indices([upd.size(k) for k in held])
    for p in np.ndindex(upd.cells.shape):
        sub = idx[tuple(slice(None) if upd.held(a) else p[a] for a in range(m))]
        target = list(p)
        for a in range(m):
            col = sub[..., a]
            if upd.held(a):
                if not np.array_equal(col, own[held.index(a)]):
                    raise ctx.unsupported(node, "ScatterND moving the values inside a frame "
                                                "of a cache; only whole frames")
            elif np.all(col == col.flat[0]):
                target[a] = int(col.flat[0]) % cells.shape[a]
            else:
                raise ctx.unsupported(node, "ScatterND writing the values of one frame to "
                                            "different frames of a cache")
        cells[tuple(target)] = upd.cells[p]


def _scatter_inputs(ctx, node, ins, red):
    data, upd = ins[0], ins[2]
    if not isinstance(upd, Frames) or red != "none":
        raise ctx.unsupported(node, f"{node.op_type} (reduction {red!r}) of a "
                                    f"{type(upd).__name__} value; only a cache's frames "
                                    f"written in place")
    return cells_of(ctx, node, data, upd.first).copy(), upd


def convert_scatter_nd(ctx, node, ins):
    """ScatterND of frames into a cache: whole frames written to the places its indices
    name (torch's in-place ``conv_cache[:, :, a:b] = cat[:, :, 1:]``)."""
    at = ctx.check_attrs(node, ("reduction",))
    red = at.get("reduction", b"none")
    red = red.decode() if isinstance(red, bytes) else str(red)
    idx = np.asarray(ctx.const(node, 1, "indices")).astype(int)
    cells, upd = _scatter_inputs(ctx, node, ins, red)
    m, q = idx.shape[-1], idx.ndim - 1
    if m == q and any(upd.held(k) for k in range(m)) and idx.shape[:-1] == _full(upd)[:m] \
            and upd.cells.shape[m:] == cells.shape[m:]:
        _by_element(ctx, node, cells, upd, idx)
        return [as_frames(cells, ctx.describe(node))]
    if q != m or any(upd.held(k) for k in range(m)) or \
            upd.cells.shape[:q] != idx.shape[:-1] or upd.cells.shape[q:] != cells.shape[m:]:
        raise ctx.unsupported(node, f"ScatterND of indices of shape {list(idx.shape)} into "
                                    f"a cache; only whole frames (indices over the axes no "
                                    f"frame holds)")
    for p in np.ndindex(idx.shape[:-1]):
        cells[tuple(int(i) for i in idx[p])] = upd.cells[p]
    return [as_frames(cells, ctx.describe(node))]


def convert_scatter_elements(ctx, node, ins):
    """ScatterElements of frames into a cache along a packing axis, the same index for
    every value of a frame (torch's in-place ``conv_cache[0] = ...``)."""
    at = ctx.check_attrs(node, ("axis", "reduction"))
    red = at.get("reduction", b"none")
    red = red.decode() if isinstance(red, bytes) else str(red)
    idx = np.asarray(ctx.const(node, 1, "indices")).astype(int)
    cells, upd = _scatter_inputs(ctx, node, ins, red)
    n = len(upd.axes)
    k = ctx.axes(node, [int(at.get("axis", 0))], n)[0]
    if upd.held(k) or idx.ndim != n or upd.cells.ndim != n:
        raise ctx.unsupported(node, f"ScatterElements along axis {k} into a cache; only "
                                    f"whole frames along an axis no frame holds")
    for p in np.ndindex(upd.cells.shape):
        region = idx[tuple(slice(None) if upd.held(a) else p[a] for a in range(n))]
        if region.size == 0 or np.any(region != region.flat[0]):
            raise ctx.unsupported(node, "ScatterElements writing the values of one frame to "
                                        "different places")
        target = list(p)
        target[k] = int(region.flat[0]) % cells.shape[k]
        cells[tuple(target)] = upd.cells[p]
    return [as_frames(cells, ctx.describe(node))]


OPS = {"Slice": convert_slice, "Split": convert_split, "Gather": convert_gather,
       "Transpose": convert_transpose, "Unsqueeze": convert_unsqueeze,
       "Squeeze": convert_squeeze, "ScatterND": convert_scatter_nd,
       "ScatterElements": convert_scatter_elements, "Expand": convert_expand,
       "Reshape": convert_reshape, "Shape": convert_shape, "Size": convert_shape}

__all__ = ["OPS"]
