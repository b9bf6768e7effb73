"""Shape plumbing around the recurrent ops, tracked on symbolic values.

Transpose, Squeeze, Unsqueeze, Reshape, Flatten, Identity, Dropout and Cast
move labelled axes of a :class:`Seq` or of state tensors (:class:`StateIn`,
:class:`StateOut`), or pass zero tensors on; none of them changes the per-step
data. What would (mixing time and batch, splitting the features) raises
UnsupportedOpError. Shape, ConstantOfShape and Expand only build zero initial
states (Expand also broadcasts an L2 norm, see :mod:`converters.onnx.norms`).
Slice, Gather and Split are :mod:`converters.onnx.select`, Concat
:mod:`converters.onnx.concat`. Nodes whose inputs are all constant never reach
this module: the walker folds them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from onnx import numpy_helper

from . import statepack
from .statepack import StatePack
from .values import Const, Norm, Seq, ShapeOf, StateIn, Zeros


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
    n = ctx.rank(node, v)
    perm = list(at.get("perm", range(n)[::-1]))
    if sorted(perm) != list(range(n)):
        raise ctx.bad(node, f"perm {perm} is not a permutation of the {n} axes of its "
                            f"input (expected each of 0..{n - 1} once)")
    if isinstance(v, Seq):
        labels = ctx.labels(v)
        if ctx.inner_length(v) > 1 and perm.index(labels.index("F")) > perm.index(
                labels.index("L")) and v.sizes[labels.index("F")] != 1:
            raise ctx.unsupported(node, f"Transpose {perm} swaps the channels and the length "
                                        f"of steps that hold (channels, length); only "
                                        f"transposes keeping their order")
        return [v.with_axes([v.axes[p] for p in perm], [v.sizes[p] for p in perm])]
    if isinstance(v, StatePack):
        return [statepack.transpose(v, perm)]
    return [replace(v, axes=tuple(v.axes[p] for p in perm))]


def _squeeze(ctx, node, ins):
    v = ins[0]
    at = ctx.check_attrs(node, ("axes",))
    if isinstance(v, Zeros):
        return [v]
    axes = ctx.ints(node, 1, "axes", at, "axes")
    n = ctx.rank(node, v)
    if axes is None:
        if not isinstance(v, Seq) or None in v.sizes:
            raise ctx.unsupported(node, "Squeeze without axes of a tensor of runtime shape")
        axes = [k for k, s in enumerate(v.sizes) if s == 1]
    axes = sorted(set(ctx.axes(node, axes, n, "axes")))
    keep = [k for k in range(n) if k not in axes]
    if isinstance(v, Seq):
        new = list(v.axes)
        for k in axes:
            lab = ctx.label(v.axes[k])
            if lab == "F" and v.sizes[k] == 1:
                # one channel: the step's length (or a remaining unit axis) becomes its
                # feature axis
                unit = [j for j in keep if ctx.label(v.axes[j]) == "L"] or [
                    j for j in keep if ctx.label(v.axes[j]) == "U" and v.sizes[j] == 1]
                if unit:
                    new[unit[-1]] = "F"
                    continue
            if lab == "F" or (v.sizes[k] not in (None, 1)) or (lab == "D" and v.sizes[k] != 1):
                raise ctx.unsupported(node, f"Squeeze of axis {k} ({lab!r}, size "
                                            f"{v.sizes[k]}) which is not of size 1")
            if lab.startswith("?"):
                ctx.binding[lab] = "U"
        return [v.with_axes([new[k] for k in keep], [v.sizes[k] for k in keep])]
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
    if isinstance(v, StatePack):
        return [statepack.squeeze(ctx, node, v, axes)]
    for k in axes:
        if v.axes[k] == "R" and len(v.parts) != 1 or v.axes[k] == "F":
            raise ctx.unsupported(node, f"Squeeze of state axis {v.axes[k]!r} of size > 1")
    return [replace(v, axes=tuple(v.axes[k] for k in keep))]


def _unsqueeze(ctx, node, ins):
    v = ins[0]
    at = ctx.check_attrs(node, ("axes",))
    if isinstance(v, Zeros):
        return [v]
    axes = ctx.ints(node, 1, "axes", at, "axes")
    n = ctx.rank(node, v) + len(axes)
    axes = sorted(ctx.axes(node, axes, n, "axes"))
    if isinstance(v, StatePack):
        return [statepack.unsqueeze(v, axes)]
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
    shape_in = ctx.value(node.input[1]) if len(node.input) > 1 else None
    if isinstance(shape_in, ShapeOf):
        target = probed_target(ctx, node, shape_in)
    else:
        target = ctx.ints(node, 1, "shape", at, "shape")
    if not isinstance(v, Seq):
        raise ctx.unsupported(node, f"Reshape of a {type(v).__name__} value")
    return _reshape_seq(ctx, node, v, target)


def _flatten(ctx, node, ins):
    v = ins[0]
    at = ctx.check_attrs(node, ("axis",))
    axis = int(at.get("axis", 1))
    if isinstance(v, Seq) and len(v.axes) == 2 and axis in (1, -1):
        return [v]
    raise ctx.unsupported(node, f"Flatten(axis={axis}) of a rank-{ctx.rank(node, v)} value; only a "
                                f"no-op Flatten of [N, features] is supported")


#: the values a runtime dimension takes in the two evaluations of a ShapeOf's probes
PROBES = ((1009, 1013, 1019, 1021, 1031, 1033), (2003, 2011, 2017, 2027, 2029, 2039))


def _probes(ctx, node, dims) -> tuple | None:
    """Shape / Size with runtime dimensions set to the primes of :data:`PROBES`."""
    runtime = [j for j, d in enumerate(dims) if d is None]
    if len(runtime) > len(PROBES[0]):
        return None
    out = []
    for p in PROBES:
        filled = list(dims)
        for k, j in enumerate(runtime):
            filled[j] = p[k]
        if node.op_type == "Size":
            out.append(np.array(int(np.prod(filled)), np.int64))
        else:
            at = ctx.attrs(node)
            start, end = int(at.get("start", 0)), at.get("end")
            out.append(np.array(filled[start:None if end is None else int(end)], np.int64))
    return tuple(out)


def probed_target(ctx, node, v: ShapeOf) -> list:
    """A Reshape target computed from runtime shapes, as constants where its two probes
    agree and ``-1`` (inferred) in the one entry where they differ."""
    if v.probes is None or np.shape(v.probes[0]) != np.shape(v.probes[1]) or \
            np.ndim(v.probes[0]) != 1:
        raise ctx.unsupported(node, "input 1 (shape) is computed from runtime shapes in a way "
                                    "edgernn does not follow")
    a, b = (np.asarray(p, np.int64) for p in v.probes)
    differ = np.flatnonzero(a != b)
    if len(differ) > 1:
        raise ctx.unsupported(node, f"input 1 (shape) has {len(differ)} entries that depend "
                                    f"on runtime sizes; at most one can be inferred (-1)")
    target = [int(d) for d in a]
    for j in differ:
        target[j] = -1
    return target


def _shape(ctx, node, ins):
    """Shape / Size: a constant when every dimension is known (input shapes given at
    conversion), else a runtime shape (zero states are built from it)."""
    v = ins[0]
    dims = None
    if isinstance(v, Seq):
        dims = list(v.sizes)
        if ctx.static_inputs:  # one stream a step: a batch of one
            dims = [1 if d is None and ctx.label(a) in ("B", "U") else d
                    for a, d in zip(v.axes, dims, strict=True)]
    elif isinstance(v, StateIn):
        dims = [1 if o is None else len(v.sel[o]) if o in v.sel else v.shape[o]
                for o in v.axes]
    if dims is None:
        return [ShapeOf()]
    if None in dims:
        return [ShapeOf(_probes(ctx, node, dims))]
    if node.op_type == "Size":
        return [Const(np.array(int(np.prod(dims)), np.int64))]
    at = ctx.attrs(node)
    start, end = int(at.get("start", 0)), at.get("end")
    return [Const(np.array(dims[start:None if end is None else int(end)], np.int64))]


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
    "Reshape": _reshape, "Flatten": _flatten, "Shape": _shape, "Size": _shape,
    "ConstantOfShape": _constant_of_shape, "Expand": _expand,
}

__all__ = ["OPS"]
