"""Convolution caches carried by hand: streaming exports that pass the last frames of
each convolution's input in and out as graph tensors (GTCRN's stream model, CRN/DPCRN
and TCN stream exports, KWS CRNNs exported for streaming)::

    cat = Concat(cache_in, x_t, axis=time)        # [N, C, n + 1(, F)]
    y   = Conv(cat)                               # no zero frames over time: one frame
    cache_out = Slice(cat, 1:, axis=time)         # the last n frames, given back

The whole cache is state: each of its frames (a ``(C, F)`` or ``(C,)`` step) is an
:func:`edgernn.state` tensor read from the paired graph input and written from the
same place of the paired graph output, so the model computes exactly what the graph
computes when its outputs are fed back, whatever the graph does with the frames
(several caches packed into one tensor and sliced, dilations, caches concatenated
back, written in place). Such a value's time axis (and the packing axes of a cache
tensor) is short and static, so the converter holds it frame by frame
(:class:`~converters.onnx.values.Frames`, an object array of per-step tensors): a
Concat, Slice, Split, Gather, Transpose, Unsqueeze, Squeeze, ScatterND or
ScatterElements along those axes is that operation on the array (the frames
themselves are not touched), a Conv over time is the sum over its time taps of a
per-step op on the frame it reads (``W[:, :, j]``: a Dense, or a grouped
:class:`edgernn.Conv1d` over the channels of a 1-D conv; a :class:`edgernn.Conv1d`
over frequency for a 2-D one), and a graph output of frames gives them back as state.
Such a Conv must give one frame per step (a cache of exactly ``(kernel - 1) x
dilation`` frames before the step's).

Why frames and not a fold to :class:`edgernn.CausalConv1d`: the state is then the
graph's own cache, read and written where the graph does (no pattern that must hold,
nothing assumed about which frames the output keeps), and a cache shared between
convolutions, sliced out of a packed tensor or sized unlike the kernel still
converts or is refused at the op that does not fit. The per-step cost is the same
(a causal convolution keeps the same frames as state and shifts them the same way).
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from .concat import convert_concat as _concat
from .conv2d import convert_conv as _conv
from .statepack import StatePack, from_state
from .statepack import concat as _pack_concat
from .values import Frames, Seq, StateIn, StateOut


def as_frames(cells, producer) -> Frames:
    out = np.empty(cells.shape, object)
    out[...] = cells
    return Frames(out, producer)


def _one(seq: Seq) -> np.ndarray:
    cells = np.empty((1,) * len(seq.axes), object)
    cells.flat[0] = seq
    return cells


def cells_of(ctx, node, v, tpl: Seq) -> np.ndarray:
    """``v`` (frames, the step's data or a state input paired with an output) as cells
    holding what ``tpl`` holds."""
    if isinstance(v, Frames):
        return v.cells
    if isinstance(v, Seq):
        if len(v.axes) != len(tpl.axes) or any(
                (a not in (None, 1)) != (b not in (None, 1))
                for a, b in zip(v.sizes, tpl.sizes, strict=True)):
            raise ctx.unsupported(node, f"joins data of shapes {list(tpl.sizes)} and "
                                        f"{list(v.sizes)} along a cache's time axis")
        return _one(v)
    if isinstance(v, StateIn) and v.generic:
        return _state_cells(ctx, node, v, tpl)
    raise ctx.unsupported(node, f"a {type(v).__name__} value with a cache's frames; only "
                                f"state inputs paired with outputs and the step's data")


def _state_cells(ctx, node, v: StateIn, tpl: Seq) -> np.ndarray:
    """State input ``v`` as cells of ``tpl``'s size: one :func:`edgernn.state` tensor per
    index of the axes ``tpl`` does not hold, each holding the whole of the others."""
    n = len(tpl.axes)
    held = [s not in (None, 1) for s in tpl.sizes]
    if len(v.axes) != n:
        raise ctx.unsupported(node, f"state input {v.name!r} of rank {len(v.axes)} with data "
                                    f"of rank {n} along a cache's time axis")
    inner = [v.axes[k] for k in range(n) if held[k]]
    if None in inner or inner != sorted(inner):
        raise ctx.unsupported(node, f"state input {v.name!r} (axes {list(v.axes)}) holds the "
                                    f"data's axes {[k for k in range(n) if held[k]]} in "
                                    f"another order; only moves of its other axes")
    rows = []
    for k, o in enumerate(v.axes):
        if o is not None and o not in v.sel and v.shape[o] is None and \
                ctx.label(tpl.axes[k]) == "T":
            raise ctx.unsupported(node, f"state input {v.name!r} has a runtime length along "
                                        f"its time axis {o}; give it with input_shapes= "
                                        f"(--input-shape {v.name}=...)")
        r = (None,) if o is None else tuple(v.sel.get(o, range(v.shape[o] or 1)))
        if held[k] and (o is None or r != tuple(range(v.shape[o] or 0))):
            raise ctx.unsupported(node, f"state input {v.name!r}: a part {list(r)[:8]} of its "
                                        f"axis {o}, held by each frame; only the whole axis")
        rows.append((None,) if held[k] else r)
    cells = np.empty([len(r) for r in rows], object)
    for p in np.ndindex(cells.shape):
        index, size = list(v.shape), 1
        for o in range(len(v.shape)):
            index[o] = v.fixed.get(o, 0)
        for k, o in enumerate(v.axes):
            if o is not None:
                index[o] = "F" if held[k] else rows[k][p[k]]
                size *= v.shape[o] if held[k] else 1
        if size != tpl.tensor.size:
            raise ctx.unsupported(node, f"state input {v.name!r}: a frame of {size} values "
                                        f"(shape {list(v.shape)}) with data of "
                                        f"{tpl.tensor.size} per step ({list(tpl.sizes)})")
        key = (v.name, tuple(index))
        if key not in ctx.generic:
            label = ",".join(":" if i == "F" else str(i) for i in index)
            ctx.generic[key] = (edgernn.state(size, name=f"{v.name}[{label}]"), tuple(index))
        cells[p] = tpl.with_tensor(ctx.generic[key][0])
    return cells


def _template(ins):
    for v in ins:
        if isinstance(v, Frames):
            return v.first
    return next((v for v in ins if isinstance(v, Seq)), None)


def convert_concat(ctx, node, ins):
    """Concat of a cache and the step's data (or of frames) along an axis the step's
    data has one row of (its time axis, or a packing axis)."""
    tpl = _template(ins)
    ranks = {len(v.axes) for v in ins if isinstance(v, (Seq, StateIn, Frames))}
    cache = any(isinstance(v, Frames) for v in ins) or any(
        isinstance(v, StateIn) and v.generic for v in ins)
    if tpl is None or not cache or len(ranks) != 1:
        return _unpaired(ctx, node, ins)
    k = ctx.axes(node, [int(ctx.attrs(node).get("axis", 0))], ranks.pop())[0]
    if tpl.sizes[k] not in (None, 1):
        if any(isinstance(v, Frames) for v in ins):
            raise ctx.unsupported(node, f"Concat along axis {k}, held by each frame of a "
                                        f"cache ({tpl.sizes[k]} values); only along time or "
                                        f"the axes a cache is packed along")
        return _unpaired(ctx, node, ins)
    if any(isinstance(v, (StatePack, StateOut)) for v in ins):
        return [_pack_concat(ctx, node, [from_state(v, ctx) for v in ins], k)]
    if k == 2 and ctx.label(tpl.axes[k]).startswith("?"):   # [N, C, T(, F)]: time
        ctx.bind(node, tpl.axes[k], "T")
    parts = [cells_of(ctx, node, v, tpl) for v in ins]
    shapes = {p.shape[:k] + p.shape[k + 1:] for p in parts}
    if len(shapes) != 1:
        raise ctx.unsupported(node, f"Concat along axis {k} of frames arranged "
                                    f"{[list(p.shape) for p in parts]}")
    return [as_frames(np.concatenate(parts, axis=k), ctx.describe(node))]


def _unpaired(ctx, node, ins):
    """Any other Concat; refused along another axis than the features with a graph data
    input among its inputs, the error says how to pair a cache passed in by hand."""
    try:
        return _concat(ctx, node, ins)
    except UnsupportedOpError as exc:
        inputs = [r["name"] for r in ctx.io["data"]
                  if any(v is ctx.env.get(r["name"]) for v in ins)]
        if not inputs or len(ctx.io["data"]) < 2:
            raise
        raise UnsupportedOpError(f"{exc}; if graph input {inputs[0]!r} is a convolution "
                                 f"cache passed in by hand, pair it with the output giving "
                                 f"it back (states={{{inputs[0]!r}: '<output>'}}, --state "
                                 f"{inputs[0]}=<output>; an output named "
                                 f"'{inputs[0]}_out' or '{inputs[0]}N' pairs by "
                                 f"itself)") from None


def convert_conv(ctx, node, ins):
    """Conv over a cache's frames: one output frame, the sum of its time taps."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _conv(ctx, node, ins)
    at = ctx.check_attrs(node, ("auto_pad", "dilations", "group", "kernel_shape", "pads",
                                "strides"))
    w = np.asarray(ctx.const(node, 1, "W"), np.float32)
    b = ctx.const(node, 2, "B", optional=True)
    bias = None if b is None else np.asarray(b, np.float32)
    tpl = v.first
    labels, nd = ctx.labels(tpl), w.ndim - 2
    if nd not in (1, 2) or len(labels) != nd + 2 or \
            any(s != 1 for j, s in enumerate(v.cells.shape) if j != 2):
        raise ctx.unsupported(node, f"a {nd}-D Conv of a cache's frames arranged "
                                    f"{list(v.cells.shape)} with axes {list(labels)}; only "
                                    f"over time, [N, C, T] or [N, C, T, F]")
    auto = ctx.auto_pad(at)
    if auto not in ("NOTSET", "VALID"):
        raise ctx.unsupported(node, f"auto_pad={auto!r} over a cache's frames; only explicit "
                                    f"pads")
    kt = w.shape[2]
    st = [int(s) for s in at.get("strides", [1] * nd)]
    dil = [int(d) for d in at.get("dilations", [1] * nd)]
    pads = [int(p) for p in at.get("pads", [0] * 2 * nd)]
    group = int(at.get("group", 1))
    frames = [None] * pads[0] + list(v.cells.reshape(-1)) + [None] * pads[nd]
    count = (len(frames) - (kt - 1) * dil[0] - 1) // st[0] + 1
    if count != 1:
        raise ctx.unsupported(node, f"Conv over time of the {v.cells.size} frames of "
                                    f"{v.producer} (time pads {pads[0]}, {pads[nd]}, kernel "
                                    f"{kt}, dilation {dil[0]}, stride {st[0]}) gives {count} "
                                    f"frames; a streaming step gives one (the cache must "
                                    f"hold (kernel - 1) x dilation = {(kt - 1) * dil[0]} "
                                    f"frames)")
    if nd == 2 and labels[1] == "F" and labels[3] in ("L", "U"):
        c_in, length = int(tpl.sizes[1]), int(tpl.sizes[3])
    elif nd == 2 and labels[1] in ("U", "B") and tpl.sizes[1] == 1 and labels[3] == "F":
        c_in, length = 1, int(tpl.sizes[3])
    elif nd == 1 and labels[1] == "F" and ctx.inner_length(tpl) == 1:
        c_in, length = int(tpl.sizes[1]), 1
    else:
        raise ctx.unsupported(node, f"a Conv of a cache's frames with axes {list(labels)}; "
                                    f"expected the channels before time")
    if w.shape[1] * group != c_in:
        raise ctx.bad(node, f"W has {w.shape[1]} x {group} input channels, the data {c_in}")
    acc, op = None, None
    for j in range(kt):
        f = frames[j * dil[0]]
        if f is None:
            continue        # a zero frame of the Conv's own time padding
        first = bias if acc is None else None
        if nd == 2:
            op = edgernn.Conv1d(np.ascontiguousarray(w[:, :, j, :]), first, length=length,
                                stride=st[1], dilation=dil[1], groups=group,
                                padding=(pads[1], pads[3]))
        elif group == 1:
            op = edgernn.Dense(np.ascontiguousarray(w[:, :, j]), first)
        else:
            op = edgernn.Conv1d(np.ascontiguousarray(w[:, :, j:j + 1]), first, length=1,
                                groups=group)
        t = ctx.apply(node, op, f.tensor)
        acc = t if acc is None else ctx.apply(node, edgernn.Add(), acc, t)
    if acc is None:
        raise ctx.unsupported(node, "a Conv whose time taps all read zero padding")
    if nd == 1:
        return [Seq(acc, tpl.axes, (tpl.sizes[0], w.shape[0], 1), last=tpl.last)]
    out_len = op.out_length
    return [Seq(acc, (tpl.axes[0], "F", tpl.axes[2], "L"),
                (tpl.sizes[0], w.shape[0], 1, out_len), last=tpl.last)]


def one_frame(shape, tokens, pairs) -> bool:
    """A static ``[1, C, 1]`` or ``[1, C, 1, F]`` float input (C > 1) of a graph that
    passes state in and out by hand: one frame of ``[N, C, T(, F)]`` per call, as
    streaming exports with convolution caches take it; its step holds ``(C, F)``."""
    return bool(pairs) and not tokens and len(shape) in (3, 4) and None not in shape and \
        shape[0] == 1 and shape[2] == 1 and shape[1] > 1


#: ops that take a cache's frames (Identity passes them on)
TAKES_FRAMES = frozenset({"Concat", "Slice", "Split", "Gather", "Conv", "Identity",
                          "Transpose", "ScatterND", "ScatterElements", "Unsqueeze",
                          "Squeeze", "Expand", "Reshape", "Shape", "Size"})


def check_frames(ctx, node, ins) -> None:
    """Refuse, naming the node, any other op given a cache's frames."""
    if node.op_type in TAKES_FRAMES:
        return
    for v in ins:
        if isinstance(v, Frames) and v.cells.size > 1:
            ctx.as_seq(node, v)     # raises, with the reason


OPS = {"Concat": convert_concat,
       "Conv": convert_conv}

__all__ = ["OPS", "TAKES_FRAMES", "as_frames", "cells_of", "check_frames", "one_frame"]
