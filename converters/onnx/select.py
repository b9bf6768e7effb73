"""Slice, Gather and Split: picking indices along one axis of a value.

Along the features of data they are :func:`edgernn.slice` views (a run of
consecutive indices; several runs are concatenated); along the length of steps
holding ``(channels, length)``, a crop of each channel. Along the other axes of
data only the whole axis or the last time step (``y[-1]``, ``y[:, -1]``: a
model with ``return_sequences=False``) can be picked. Rows of recurrent state
(``Y_h``, state graph inputs) are picked freely. ``Gather`` of token ids from
a constant table is an :class:`edgernn.Embedding` lookup.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import edgernn

from .values import Const, Seq, StateIn, StateOut, Zeros

_BIG = 2 ** 31 - 1


def _features(ctx, node, v: Seq, k: int, rows: list, drop: bool):
    """Features ``rows`` (indices in range) of ``v``, whose axis ``k`` is the feature axis."""
    ctx.feature_axis(node, v)
    labels = ctx.labels(v)
    if drop and "L" in labels and len(rows) == 1:   # one channel of (channels, length):
        n = ctx.inner_length(v)                       # its length is the step's features
        t = ctx.apply(node, edgernn.Slice(rows[0] * n, (rows[0] + 1) * n), v.tensor)
        axes = ["F" if lab == "L" else a for a, lab in zip(v.axes, labels, strict=True)]
        return v.with_axes(axes[:k] + axes[k + 1:], v.sizes[:k] + v.sizes[k + 1:], tensor=t)
    if drop:
        raise ctx.unsupported(node, "picks one feature and drops the feature axis (index "
                                    "with a list, x[..., i:i+1], to keep it)")
    if not rows:
        raise ctx.unsupported(node, "selects no features at all")
    size = v.sizes[k]
    if rows == list(range(size)):
        return v
    runs, start = [], 0
    for j in range(1, len(rows) + 1):
        if j == len(rows) or rows[j] != rows[j - 1] + 1:
            runs.append((rows[start], rows[j - 1] + 1))
            start = j
    n = ctx.inner_length(v)  # channels of (channels, length) steps: n values each
    parts = [ctx.apply(node, edgernn.Slice(a * n, b * n), v.tensor) for a, b in runs]
    t = parts[0] if len(parts) == 1 else ctx.apply(node, edgernn.Concat(), *parts)
    sizes = list(v.sizes)
    sizes[k] = len(rows)
    return v.with_tensor(t, sizes)


def _positions(ctx, node, v: Seq, k: int, rows: list, drop: bool):
    """Positions ``rows`` of the length axis ``k`` of steps holding ``(channels, length)``:
    a run of consecutive positions is a crop of every channel (a :class:`edgernn.Pad` with
    negative padding)."""
    L = v.sizes[k]
    rows = [r % L for r in rows]
    if not rows or rows != list(range(rows[0], rows[0] + len(rows))):
        raise ctx.unsupported(node, f"selects positions {rows} of the length axis {k} (size "
                                    f"{L}); only a run of consecutive positions")
    t = v.tensor
    if len(rows) < L:
        t = ctx.apply(node, edgernn.Pad(L, -rows[0], rows[-1] + 1 - L), t)
    if drop:
        return v.with_axes(v.axes[:k] + v.axes[k + 1:], v.sizes[:k] + v.sizes[k + 1:],
                           tensor=t)
    sizes = list(v.sizes)
    sizes[k] = len(rows)
    return v.with_tensor(t, sizes)


def _pick_seq(ctx, node, v: Seq, k: int, rows: list, drop: bool):
    """Keep ``rows`` (resolved indices, or [-1]) along axis ``k`` of a Seq."""
    lab, size = ctx.label(v.axes[k]), v.sizes[k]
    if lab == "F":
        return [_features(ctx, node, v, k, rows, drop)]
    if lab == "L":
        return [_positions(ctx, node, v, k, rows, drop)]
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


def pick(ctx, node, v, k, idx, drop):
    """Select indices ``idx`` (a list, or a slice) along axis ``k``; ``drop``: remove
    the axis (a scalar index)."""
    if isinstance(v, Zeros):
        return [v]
    if isinstance(v, Seq):
        size = v.sizes[k]
        if not isinstance(idx, slice):
            if size is not None and any(not -size <= i < size for i in idx):
                raise ctx.bad(node, f"index {list(idx)} out of range for axis {k} of size "
                                    f"{size}")
            rows = [i % size for i in idx] if size is not None and \
                ctx.label(v.axes[k]) == "F" else list(idx)
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


def convert_gather(ctx, node, ins):
    """Gather of constant indices (one, or a list along the features); an embedding
    lookup when the indices are the token ids."""
    at = ctx.check_attrs(node, ("axis",))
    data, idx = ins[0], ins[1]
    axis = int(at.get("axis", 0))
    if isinstance(data, Const) and isinstance(idx, Seq):
        return _embedding(ctx, node, data.value, idx, axis)
    if not isinstance(idx, Const):
        raise ctx.unsupported(node, "Gather with runtime indices from a non-constant table")
    ind = np.asarray(idx.value).astype(int)
    if ind.ndim > 1:
        raise ctx.unsupported(node, f"Gather of a rank-{ind.ndim} index array; only a scalar "
                                    f"or a list of indices")
    if isinstance(data, Zeros):
        return [data]
    k = ctx.axes(node, [axis], ctx.rank(node, data))[0]
    return pick(ctx, node, data, k, ind.reshape(-1).tolist(), ind.ndim == 0)


def _embedding(ctx, node, table, idx: Seq, axis: int):
    if axis != 0 or table.ndim != 2:
        raise ctx.unsupported(node, f"Gather(axis={axis}) from a rank-{table.ndim} table; only "
                                    f"an embedding lookup (axis 0 of a 2-D table)")
    if not idx.tokens:
        raise ctx.unsupported(node, "an embedding lookup must take the integer graph input "
                                    "(token ids)")
    t = ctx.apply(node, edgernn.Embedding(table), idx.tensor)
    return [Seq(t, idx.axes + ("F",), idx.sizes + (table.shape[1],), last=idx.last)]


def convert_slice(ctx, node, ins):
    """Slice along any number of axes (each as :func:`pick` allows)."""
    v = ins[0]
    if isinstance(v, Zeros):
        ctx.check_attrs(node, ("starts", "ends", "axes", "steps"))
        return [v]
    starts, ends, axes, steps = ctx.slice_args(node)
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        k = ctx.axes(node, [a], ctx.rank(node, v), "axes")[0]
        v = pick(ctx, node, v, k, slice(s, e, st), False)[0]
    return [v]


def convert_split(ctx, node, ins):
    """Split into consecutive parts along one axis (``split`` sizes, or equal parts)."""
    at = ctx.check_attrs(node, ("axis", "split", "num_outputs"))
    v = ins[0]
    if isinstance(v, Zeros):
        return [v] * len(node.output)
    if not isinstance(v, (Seq, StateIn, StateOut)):
        raise ctx.unsupported(node, f"Split of a {type(v).__name__} value")
    k = ctx.axes(node, [int(at.get("axis", 0))], ctx.rank(node, v))[0]
    sizes = ctx.ints(node, 1, "split", at, "split")
    if isinstance(v, Seq):
        n = v.sizes[k]
    elif isinstance(v, StateOut):
        n = len(v.parts) if v.axes[k] == "R" else None
    else:
        o = v.axes[k]
        n = None if o is None else len(v.sel[o]) if o in v.sel else v.shape[o]
    if sizes is None:
        if n is None:
            raise ctx.unsupported(node, f"Split into equal parts of axis {k}, whose size is "
                                        f"known only at run time")
        parts = len(node.output)
        chunk = -(-n // parts)
        sizes = [min(chunk, n - i * chunk) for i in range(parts)]
    if n is not None and (sum(sizes) != n or min(sizes) < 0):
        raise ctx.bad(node, f"split sizes {sizes} do not add up to axis {k} of size {n}")
    outs, start = [], 0
    for s in sizes:
        outs += pick(ctx, node, v, k, slice(start, start + s, 1), False)
        start += s
    return outs


OPS = {"Slice": convert_slice, "Gather": convert_gather, "Split": convert_split}

__all__ = ["OPS", "pick"]
