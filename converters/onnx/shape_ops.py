"""Shape plumbing around the recurrent ops, tracked on symbolic values.

Transpose, Squeeze, Unsqueeze, Reshape, Flatten, Slice, Gather, Concat,
Identity, Dropout and Cast move labelled axes of a :class:`Seq`, pick rows of
state tensors (:class:`StateIn`, :class:`StateOut`) or pass zero tensors on.
What would change the per-step data (a slice of the features, a step other
than the last, mixing time and batch) raises UnsupportedOpError. ``Gather`` of
token ids from a constant table becomes :class:`edgernn.Embedding`. Shape,
ConstantOfShape and Expand only build zero initial states (Expand also
broadcasts an L2 norm, see :mod:`converters.onnx.norms`). Nodes whose inputs
are all constant never reach this module: the walker folds them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from onnx import numpy_helper

import edgernn

from .values import Const, Norm, Seq, ShapeOf, StateIn, StateOut, Zeros

_BIG = 2 ** 31 - 1


def _ints(ctx, node, i, attr, at, what):
    """An int list from input ``i`` (opset >= 13 style) or attribute ``attr``."""
    if i is not None and len(node.input) > i and node.input[i]:
        return [int(v) for v in np.asarray(ctx.const(node, i, what)).reshape(-1)]
    v = at.get(attr)
    return None if v is None else [int(x) for x in v]


def _rank(v):
    return len(v.axes)


def _pass(ctx, node, ins):
    """Identity, Dropout (inference: identity), and Cast between like dtypes."""
    v = ins[0]
    if node.op_type == "Cast" and isinstance(v, Seq):
        to = int(ctx.attrs(node).get("to", 1))
        is_float = to in (1, 10, 11, 16)
        if v.tokens == is_float:
            raise ctx.unsupported(node, f"Cast of {'token ids' if v.tokens else 'float data'} "
                                        f"to ONNX dtype {to}")
    return [v]


def _transpose(ctx, node, ins):
    v = ins[0]
    at = ctx.check_attrs(node, ("perm",))
    if isinstance(v, Zeros):
        return [v]
    perm = list(at.get("perm", range(_rank(v))[::-1]))
    if isinstance(v, Seq):
        return [v.with_axes([v.axes[p] for p in perm], [v.sizes[p] for p in perm])]
    return [replace(v, axes=tuple(v.axes[p] for p in perm))]


def _squeeze(ctx, node, ins):
    v = ins[0]
    at = ctx.check_attrs(node, ("axes",))
    if isinstance(v, Zeros):
        return [v]
    axes = _ints(ctx, node, 1, "axes", at, "axes")
    n = _rank(v)
    if axes is None:
        if not isinstance(v, Seq) or None in v.sizes:
            raise ctx.unsupported(node, "Squeeze without axes of a tensor of runtime shape")
        axes = [k for k, s in enumerate(v.sizes) if s == 1]
    axes = sorted({a % n for a in axes})
    keep = [k for k in range(n) if k not in axes]
    if isinstance(v, Seq):
        for k in axes:
            lab = ctx.label(v.axes[k])
            if lab == "F" or (v.sizes[k] not in (None, 1)) or (lab == "D" and v.sizes[k] != 1):
                raise ctx.unsupported(node, f"Squeeze of axis {k} ({lab!r}, size "
                                            f"{v.sizes[k]}) which is not of size 1")
            if lab.startswith("?"):
                ctx.binding[lab] = "U"
        return [v.with_axes([v.axes[k] for k in keep], [v.sizes[k] for k in keep])]
    if isinstance(v, StateIn):
        fixed = dict(v.fixed)
        for k in axes:
            o = v.axes[k]
            if o is not None:
                rows = v.sel.get(o, range(v.shape[o] or 1))
                if len(rows) != 1:
                    raise ctx.unsupported(node, f"Squeeze of axis {k} of {v.name!r} which "
                                                f"has {len(rows)} rows")
                fixed[o] = rows[0]
        return [replace(v, axes=tuple(v.axes[k] for k in keep), fixed=fixed)]
    for k in axes:
        if v.axes[k] == "R" and len(v.parts) != 1 or v.axes[k] == "F":
            raise ctx.unsupported(node, f"Squeeze of state axis {v.axes[k]!r} of size > 1")
    return [replace(v, axes=tuple(v.axes[k] for k in keep))]


def _unsqueeze(ctx, node, ins):
    v = ins[0]
    at = ctx.check_attrs(node, ("axes",))
    if isinstance(v, Zeros):
        return [v]
    axes = _ints(ctx, node, 1, "axes", at, "axes")
    n = _rank(v) + len(axes)
    axes = sorted(a % n for a in axes)
    new = list(v.axes)
    sizes = list(v.sizes) if isinstance(v, Seq) else None
    for a in axes:
        new.insert(a, "U" if not isinstance(v, StateIn) else None)
        if sizes is not None:
            sizes.insert(a, 1)
    if isinstance(v, Seq):
        return [v.with_axes(new, sizes)]
    return [replace(v, axes=tuple(new))]


def _merge(ctx, node, atoms):
    """One output axis from the input axes ``atoms`` [(label, size)]."""
    big = [(ctx.label(a), s) for a, s in atoms if s != 1]
    if not big:
        return ("U", 1)
    if len(big) == 1:
        return next((a, s) for a, s in atoms if s != 1)
    labels = [b[0] for b in big]
    if labels == ["D", "F"] and None not in (big[0][1], big[1][1]):
        return ("F", big[0][1] * big[1][1])
    if sorted(labels) == ["B", "T"]:
        size = None if None in (big[0][1], big[1][1]) else big[0][1] * big[1][1]
        return ("*".join(labels), size)
    raise ctx.unsupported(node, f"Reshape merges axes {labels} (only a bidirectional "
                                f"output's (D, F) into features, or time and batch into "
                                f"one axis of rows)")


def _reshape_seq(ctx, node, v: Seq, target):
    src = list(zip(v.axes, v.sizes, strict=True))
    neg = [j for j, d in enumerate(target) if d == -1]
    if len(neg) > 1:
        raise ctx.bad(node, f"Reshape target {target} has more than one -1")
    stop = neg[0] if neg else len(target)

    def group(i, d, step):
        got, prod = [], 1
        while prod < d or (d == 1 and not got and 0 <= i < len(src) and src[i][1] == 1):
            if not 0 <= i < len(src) or src[i][1] is None:
                raise ctx.unsupported(node, f"Reshape to {target} needs the size of an axis "
                                            f"known only at run time")
            got.append(src[i])
            prod *= src[i][1]
            i += step
        if prod != d:
            raise ctx.unsupported(node, f"Reshape to {target} splits an axis of {v.sizes}")
        got = got[::step]
        return i, (_merge(ctx, node, got) if got else ("U", 1))

    left, i = [], 0
    for j in range(stop):
        if target[j] == 0:
            if i != j:
                raise ctx.unsupported(node, f"Reshape to {target}: 0 after a merged axis")
            left.append(src[j])
            i += 1
        else:
            i, ax = group(i, target[j], 1)
            left.append(ax)
    right, k = [], len(src) - 1
    for j in range(len(target) - 1, stop, -1):
        if target[j] == 0:
            if k != j:
                raise ctx.unsupported(node, f"Reshape to {target}: 0 after a merged axis")
            right.insert(0, src[j])
            k -= 1
        else:
            k, ax = group(k, target[j], -1)
            right.insert(0, ax)
    mid = src[i:k + 1]
    if neg:
        big = [a for a in mid if a[1] != 1]
        if len(big) == 1:
            left.append(big[0])
        else:
            left.append(_merge(ctx, node, mid))
    elif any(s != 1 for _, s in mid):
        raise ctx.unsupported(node, f"Reshape to {target} drops axes of {v.sizes}")
    out = left + right
    return [v.with_axes([a for a, _ in out], [s for _, s in out])]


def _reshape(ctx, node, ins):
    v = ins[0]
    at = ctx.check_attrs(node, ("allowzero", "shape"))
    if isinstance(v, Zeros):
        return [v]
    if int(at.get("allowzero", 0)):
        raise ctx.unsupported(node, "allowzero=1")
    target = _ints(ctx, node, 1, "shape", at, "shape")
    if not isinstance(v, Seq):
        raise ctx.unsupported(node, f"Reshape of a {type(v).__name__} value")
    return _reshape_seq(ctx, node, v, target)


def _flatten(ctx, node, ins):
    v = ins[0]
    at = ctx.check_attrs(node, ("axis",))
    axis = int(at.get("axis", 1))
    if isinstance(v, Seq) and len(v.axes) == 2 and axis in (1, -1):
        return [v]
    raise ctx.unsupported(node, f"Flatten(axis={axis}) of a rank-{_rank(v)} value; only a "
                                f"no-op Flatten of [N, features] is supported")


def _pick_seq(ctx, node, v: Seq, k: int, rows: list, drop: bool):
    """Keep ``rows`` (resolved indices, or [-1]) along axis ``k`` of a Seq."""
    lab, size = ctx.label(v.axes[k]), v.sizes[k]
    last = v.last
    if size is not None and rows == list(range(size)):
        pass
    elif lab == "T" and (rows == [-1] or (size is not None and rows == [size - 1])):
        last = True
    elif lab in ("B", "U", "D") and size == 1 and rows in ([0], [-1]):
        pass
    else:
        raise ctx.unsupported(node, f"selects {rows} along axis {k} ({lab!r}, size {size}); "
                                    f"only the last time step, or the whole axis, is supported")
    if drop:
        return [v.with_axes(v.axes[:k] + v.axes[k + 1:], v.sizes[:k] + v.sizes[k + 1:],
                            last=last)]
    sizes = list(v.sizes)
    sizes[k] = size if size is not None and rows == list(range(size)) else 1
    return [v.with_axes(v.axes, sizes, last=last)]


def _pick(ctx, node, v, k, idx, drop):
    """Select indices ``idx`` (a list, or a range for slices) along axis ``k``."""
    if isinstance(v, Zeros):
        return [v]
    if isinstance(v, Seq):
        size = v.sizes[k]
        if not isinstance(idx, slice):
            rows = list(idx)
        elif size is not None:
            rows = list(range(size))[idx]
        elif (idx.start, idx.step) == (0, 1) and idx.stop >= _BIG:
            return [v]
        elif (idx.start, idx.step) == (-1, 1) and idx.stop >= _BIG:
            rows = [-1]
        else:
            raise ctx.unsupported(node, f"slices {idx} along axis {k} of runtime size")
        return _pick_seq(ctx, node, v, k, rows, drop)
    if isinstance(v, StateIn):
        o = v.axes[k]
        if o is None:
            return [replace(v, axes=v.axes[:k] + v.axes[k + 1:])] if drop else [v]
        cur = list(v.sel.get(o, range(v.shape[o]))) if (o in v.sel or v.shape[o]) else None
        if cur is None:
            raise ctx.unsupported(node, f"slices axis {k} of {v.name!r}, whose size is known "
                                        f"only at run time")
        rows = cur[idx] if isinstance(idx, slice) else [cur[i] for i in idx]
        if drop:
            return [replace(v, axes=v.axes[:k] + v.axes[k + 1:], fixed={**v.fixed, o: rows[0]})]
        return [replace(v, sel={**v.sel, o: tuple(rows)})]
    if isinstance(v, StateOut) and v.axes[k] == "R":
        parts = v.parts[idx] if isinstance(idx, slice) else tuple(v.parts[i] for i in idx)
        axes = v.axes[:k] + v.axes[k + 1:] if drop else v.axes
        return [replace(v, parts=tuple(parts), axes=axes)]
    raise ctx.unsupported(node, f"selects along axis {k} of a {type(v).__name__} value")


def _gather(ctx, node, ins):
    at = ctx.check_attrs(node, ("axis",))
    data, idx = ins[0], ins[1]
    axis = int(at.get("axis", 0))
    if isinstance(data, Const) and isinstance(idx, Seq):
        return _embedding(ctx, node, data.value, idx, axis)
    if not isinstance(idx, Const):
        raise ctx.unsupported(node, "Gather with runtime indices from a non-constant table")
    ind = np.asarray(idx.value).astype(int)
    if ind.ndim > 1 or (ind.ndim == 1 and ind.size != 1):
        raise ctx.unsupported(node, f"Gather of indices {ind.tolist()}; only one index")
    if isinstance(data, Zeros):
        return [data]
    return _pick(ctx, node, data, axis % _rank(data), [int(ind.reshape(-1)[0])], ind.ndim == 0)


def _embedding(ctx, node, table, idx: Seq, axis: int):
    if axis != 0 or table.ndim != 2:
        raise ctx.unsupported(node, f"Gather(axis={axis}) from a rank-{table.ndim} table; only "
                                    f"an embedding lookup (axis 0 of a 2-D table)")
    if not idx.tokens or ctx.layers:
        raise ctx.unsupported(node, "an embedding lookup must be the first layer and take the "
                                    "integer graph input")
    ctx.append(edgernn.Embedding(table))
    return [Seq(idx.axes + ("F",), idx.sizes + (table.shape[1],), ctx.head, last=idx.last)]


def _slice(ctx, node, ins):
    at = ctx.check_attrs(node, ("starts", "ends", "axes", "steps"))
    v = ins[0]
    if isinstance(v, Zeros):
        return [v]
    starts = _ints(ctx, node, 1, "starts", at, "starts")
    ends = _ints(ctx, node, 2, "ends", at, "ends")
    axes = _ints(ctx, node, 3, "axes", at, "axes") or list(range(len(starts)))
    steps = _ints(ctx, node, 4, "steps", at, "steps") or [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        v = _pick(ctx, node, v, a % _rank(v), slice(s, e, st), False)[0]
    return [v]


def _concat(ctx, node, ins):
    at = ctx.check_attrs(node, ("axis",))
    axis = int(at["axis"])
    if all(isinstance(v, Zeros) or (isinstance(v, Const) and not np.any(v.value))
           for v in ins):
        return [Zeros()]
    if all(isinstance(v, StateOut) for v in ins) and len({v.axes for v in ins}) == 1:
        v0 = ins[0]
        parts = tuple(p for v in ins for p in v.parts)
        if v0.axes[axis % len(v0.axes)] == "R":
            return [replace(v0, parts=parts)]
        if v0.axes[axis % len(v0.axes)] == "F":
            return [_final_bidirectional(ctx, node, v0, parts)]
    raise ctx.unsupported(node, f"Concat of {[type(v).__name__ for v in ins]} along axis "
                                f"{axis}; only recurrent states (Y_h/Y_c) along their "
                                f"direction axis")


def _final_bidirectional(ctx, node, v: StateOut, parts) -> Seq:
    """``cat(h_n[-2], h_n[-1])`` of the last, bidirectional layer: its output
    as Keras' ``return_sequences=False`` (forward's last, backward's first)."""
    k = len(ctx.layers) - 1
    layer = ctx.layers[k] if ctx.layers else None
    if not (isinstance(layer, edgernn.Bidirectional) and layer.merge_mode == "concat"
            and parts == (f"{k}.forward.h", f"{k}.backward.h") and "R" not in v.axes):
        raise ctx.unsupported(node, f"Concat of recurrent states {list(parts)} along the "
                                    f"features; only the forward and backward h of the last "
                                    f"bidirectional layer, in that order")
    ctx.replace(k, edgernn.Bidirectional(layer.forward, layer.backward, "concat",
                                         return_sequences=False))
    sizes = tuple(None if a == "B" else 2 * v.hidden if a == "F" else 1 for a in v.axes)
    return Seq(v.axes, sizes, ctx.head, last=True)


def _shape(ctx, node, ins):
    return [ShapeOf()]


def _constant_of_shape(ctx, node, ins):
    at = ctx.check_attrs(node, ("value",))
    val = at.get("value")
    if val is not None and np.any(numpy_helper.to_array(val)):
        raise ctx.unsupported(node, "ConstantOfShape of a runtime shape with a non-zero value")
    return [Zeros()]


def _expand(ctx, node, ins):
    v = ins[0]
    if isinstance(v, Zeros) or (isinstance(v, Const) and not np.any(v.value)):
        return [Zeros()]
    if isinstance(v, Norm):  # broadcast back to the data's shape before Div
        return [v]
    raise ctx.unsupported(node, "Expand is supported only to build zero initial states and "
                                "to broadcast an L2 norm")


OPS = {
    "Identity": _pass, "Dropout": _pass, "Cast": _pass,
    "Transpose": _transpose, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Reshape": _reshape, "Flatten": _flatten, "Slice": _slice, "Gather": _gather,
    "Concat": _concat, "Shape": _shape, "Size": _shape,
    "ConstantOfShape": _constant_of_shape, "Expand": _expand,
}

__all__ = ["OPS"]
