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
back). The time axis of such a value is short and static, so the converter holds it
frame by frame (:class:`Frames`): a Concat along it joins lists, a Slice, Split or
Gather picks frames, a Conv over it is the sum over its time taps of a per-step op on the
frame it reads (``W[:, :, j]``: a Dense, or a grouped :class:`edgernn.Conv1d` over
the channels of a 1-D conv; a :class:`edgernn.Conv1d` over frequency for a 2-D one),
and a graph output of frames gives them back as state. Such a Conv must give one frame
per step (a cache of exactly ``(kernel - 1) x dilation`` frames before the step's).

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

from .chomp import convert_slice as _slice
from .concat import convert_concat as _concat
from .conv2d import convert_conv as _conv
from .select import convert_gather as _gather
from .select import convert_split as _split
from .shape_ops import OPS as _SHAPE_OPS
from .statepack import StatePack, from_state
from .statepack import concat as _pack_concat
from .values import Frames, Seq, StateIn, StateOut

_transpose = _SHAPE_OPS["Transpose"]


def _axis_of(ctx, node, ins, axis):
    ranks = {len(v.axes) for v in ins if isinstance(v, (Seq, StateIn, Frames))}
    if len(ranks) != 1:
        return None
    return ctx.axes(node, [axis], ranks.pop())[0]


def convert_concat(ctx, node, ins):
    """Concat along the time axis of a cache and the step's data (or frames)."""
    at = ctx.attrs(node)
    k = _axis_of(ctx, node, ins, int(at.get("axis", 0)))
    frames = any(isinstance(v, Frames) for v in ins)
    if frames and all(isinstance(v, (Frames, StatePack, StateOut)) for v in ins) and \
            any(k != v.axis for v in ins if isinstance(v, Frames)):
        return [_pack_concat(ctx, node, [from_state(v, ctx) for v in ins], k)]  # stacked
    if k is None or not (frames or (any(isinstance(v, StateIn) and v.generic for v in ins)
                                    and any(isinstance(v, Seq) for v in ins))):
        return _unpaired(ctx, node, ins, k)
    data = [v for v in ins if isinstance(v, Seq)] + \
        [v.frames[0] for v in ins if isinstance(v, Frames)]
    tpl = data[0]
    if ctx.labels(tpl)[k] == "F":
        return _concat(ctx, node, ins)      # along the features: data, as before
    if tpl.sizes[k] != 1:
        raise ctx.unsupported(node, f"Concat along axis {k} of data with {tpl.sizes[k]} "
                                    f"frames there; a cache concatenated with the step's "
                                    f"data needs one frame per step")
    if ctx.label(tpl.axes[k]).startswith("?"):
        ctx.bind(node, tpl.axes[k], "T")
    out = []
    for v in ins:
        if isinstance(v, Frames):
            out += v.frames
        elif isinstance(v, Seq):
            if len(v.axes) != len(tpl.axes) or v.sizes[k] != 1:
                raise ctx.unsupported(node, f"Concat along axis {k} of data of shapes "
                                            f"{list(tpl.sizes)} and {list(v.sizes)}")
            out.append(v)
        elif isinstance(v, StateIn) and v.generic:
            out += _state_frames(ctx, node, v, k, tpl)
        else:
            raise ctx.unsupported(node, f"Concat along the time axis of a "
                                        f"{type(v).__name__} value with a cache; only state "
                                        f"inputs paired with outputs and the step's data")
    return [Frames(tuple(out), k, ctx.describe(node))]


def _unpaired(ctx, node, ins, k):
    """Any other Concat; refused along another axis than the features with a graph data
    input among its inputs, the error says how to pair a cache passed in by hand."""
    try:
        return _concat(ctx, node, ins)
    except UnsupportedOpError as exc:
        inputs = [r["name"] for r in ctx.io["data"]
                  if any(v is ctx.env.get(r["name"]) for v in ins)]
        if k is None or not inputs or len(ctx.io["data"]) < 2:
            raise
        raise UnsupportedOpError(f"{exc}; if graph input {inputs[0]!r} is a convolution "
                                 f"cache passed in by hand, pair it with the output giving "
                                 f"it back (states={{{inputs[0]!r}: '<output>'}}, --state "
                                 f"{inputs[0]}=<output>; an output named "
                                 f"'{inputs[0]}_out' or '{inputs[0]}N' pairs by "
                                 f"itself)") from None


def _state_frames(ctx, node, v: StateIn, k: int, tpl: Seq) -> list:
    """Each index of axis ``k`` of state input ``v`` as a frame: one :func:`edgernn.state`
    tensor of ``tpl``'s size (its other axes whole, in order, or single indices)."""
    o_t = v.axes[k]
    if o_t is None or len(v.axes) != len(tpl.axes):
        raise ctx.unsupported(node, f"state input {v.name!r} concatenated along axis {k} with "
                                    f"data of rank {len(tpl.axes)}; expected the cache's own "
                                    f"time axis, same rank as the data")
    kept = [o for o in v.axes if o is not None and o != o_t and o not in v.fixed
            and len(v.sel.get(o, range(v.shape[o] or 1))) > 1]
    if kept != sorted(kept):
        raise ctx.unsupported(node, f"state input {v.name!r} transposed before the Concat "
                                    f"(axes {list(v.axes)}); only moves of its time axis "
                                    f"or of unit axes")
    rows_t = v.sel.get(o_t, tuple(range(v.shape[o_t] or 0)))
    out = []
    for r in rows_t:
        index, size = [], 1
        for o, n in enumerate(v.shape):
            rows = (v.fixed[o],) if o in v.fixed else (r,) if o == o_t else \
                v.sel.get(o, tuple(range(n or 1)))
            if len(rows) == 1:
                index.append(rows[0])
            elif rows == tuple(range(n or 0)):
                index.append("F")
                size *= n
            else:
                raise ctx.unsupported(node, f"state input {v.name!r}: a part "
                                            f"{list(rows)[:8]} of its axis {o}; a cache "
                                            f"frame takes whole axes or single indices")
        if size != tpl.tensor.size:
            raise ctx.unsupported(node, f"state input {v.name!r}: a frame of {size} values "
                                        f"(shape {list(v.shape)}) concatenated with data of "
                                        f"{tpl.tensor.size} per step ({list(tpl.sizes)})")
        key = (v.name, tuple(index))
        if key not in ctx.generic:
            label = ",".join(":" if i == "F" else str(i) for i in index)
            ctx.generic[key] = (edgernn.state(size, name=f"{v.name}[{label}]"), tuple(index))
        out.append(tpl.with_tensor(ctx.generic[key][0]))
    return out


def _pick(ctx, node, v: Frames, k, idx: slice):
    if k != v.axis:
        raise ctx.unsupported(node, f"selects along axis {k} of a cache's frames (the "
                                    f"concatenation by {v.producer}); only along its time "
                                    f"axis {v.axis}")
    picked = v.frames[idx]
    if not picked:
        raise ctx.unsupported(node, f"selects no frame of the {len(v.frames)} of "
                                    f"{v.producer}")
    return Frames(picked, v.axis, v.producer)


def convert_slice(ctx, node, ins):
    """Slice of frames along their time axis: the frames it keeps."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _slice(ctx, node, ins)
    at = ctx.check_attrs(node, ("starts", "ends", "axes", "steps"))
    starts = ctx.ints(node, 1, "starts", at, "starts")
    ends = ctx.ints(node, 2, "ends", at, "ends")
    axes = ctx.ints(node, 3, "axes", at, "axes") or list(range(len(starts)))
    steps = ctx.ints(node, 4, "steps", at, "steps") or [1] * len(starts)
    rank = len(v.frames[0].axes)
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        k = ctx.axes(node, [a], rank, "axes")[0]
        if k != v.axis and s == 0 and st == 1 and (e >= 2 ** 31 - 1 or e == v.size(k)):
            continue    # the whole of another axis
        v = _pick(ctx, node, v, k, slice(s, e, st))
    return [v]


def convert_gather(ctx, node, ins):
    """Gather of constant indices along the frames' time axis (a scalar drops it)."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _gather(ctx, node, ins)
    at = ctx.check_attrs(node, ("axis",))
    k = ctx.axes(node, [int(at.get("axis", 0))], len(v.axes))[0]
    ind = np.asarray(ctx.const(node, 1, "indices")).astype(int)
    n = len(v.frames)
    if ind.ndim > 1 or np.any(ind < -n) or np.any(ind >= n):
        raise ctx.unsupported(node, f"Gather of indices {ind.tolist()} from the {n} frames "
                                    f"of {v.producer}; only a scalar or a list in range")
    picked = _pick(ctx, node, v, k, slice(None))
    frames = tuple(picked.frames[int(i)] for i in ind.reshape(-1))
    if ind.ndim == 0:
        f = frames[0]
        return [f.with_axes(f.axes[:k] + f.axes[k + 1:], f.sizes[:k] + f.sizes[k + 1:])]
    return [Frames(frames, v.axis, v.producer)]


def convert_split(ctx, node, ins):
    """Split of frames along their time axis (``torch.split`` of a packed cache)."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _split(ctx, node, ins)
    at = ctx.check_attrs(node, ("axis", "split", "num_outputs"))
    k = ctx.axes(node, [int(at.get("axis", 0))], len(v.frames[0].axes))[0]
    sizes = ctx.ints(node, 1, "split", at, "split")
    n = len(v.frames)
    if sizes is None:
        chunk = -(-n // len(node.output))
        sizes = [min(chunk, n - i * chunk) for i in range(len(node.output))]
    if sum(sizes) != n or min(sizes) < 1:
        raise ctx.bad(node, f"split sizes {sizes} do not add up to the {n} frames of "
                            f"{v.producer}")
    starts = np.cumsum([0] + list(sizes))
    return [_pick(ctx, node, v, k, slice(int(a), int(b))) for a, b in
            zip(starts[:-1], starts[1:], strict=True)]


def convert_transpose(ctx, node, ins):
    """Transpose of frames: a relabelling while the axes a frame holds keep their order."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _transpose(ctx, node, ins)
    at = ctx.check_attrs(node, ("perm",))
    n = len(v.axes)
    perm = [int(p) for p in at.get("perm", range(n)[::-1])]
    if sorted(perm) != list(range(n)):
        raise ctx.bad(node, f"perm {perm} is not a permutation of {n} axes")
    held = [p for p in perm if p != v.axis and (v.size(p) or 1) > 1]
    if held != sorted(held):
        raise ctx.unsupported(node, f"Transpose {perm} of a cache's frames reorders the "
                                    f"axes each frame holds; only moves of the time axis")
    return [Frames(tuple(f.with_axes([f.axes[p] for p in perm], [f.sizes[p] for p in perm])
                         for f in v.frames), perm.index(v.axis), v.producer)]


def _per_frame(ctx, node, ins, axis):
    """The shape op's own handler on each frame (each of size 1 along the time axis)."""
    v = ins[0]
    frames = tuple(_SHAPE_OPS[node.op_type](ctx, node, [f] + list(ins[1:]))[0]
                   for f in v.frames)
    return [Frames(frames, axis, v.producer)]


def convert_unsqueeze(ctx, node, ins):
    """Unsqueeze of frames (``torch.stack`` of caches for a packed output)."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _SHAPE_OPS["Unsqueeze"](ctx, node, ins)
    axes = ctx.ints(node, 1, "axes", ctx.attrs(node), "axes")
    axis = v.axis
    for a in sorted(ctx.axes(node, axes, len(v.axes) + len(axes), "axes")):
        axis += a <= axis
    return _per_frame(ctx, node, ins, axis)


def convert_squeeze(ctx, node, ins):
    """Squeeze of unit axes of frames other than their time axis."""
    v = ins[0]
    if not isinstance(v, Frames):
        return _SHAPE_OPS["Squeeze"](ctx, node, ins)
    axes = ctx.ints(node, 1, "axes", ctx.attrs(node), "axes")
    if axes is None:
        axes = [k for k in range(len(v.axes)) if v.size(k) == 1]
    axes = ctx.axes(node, axes, len(v.axes), "axes")
    if v.axis in axes:
        raise ctx.unsupported(node, f"Squeeze of the time axis of the {len(v.frames)} frames "
                                    f"of {v.producer}")
    return _per_frame(ctx, node, ins, v.axis - sum(a < v.axis for a in axes))


def convert_scatter_nd(ctx, node, ins):
    """ScatterND writing frames into rows of axis 0 of a cache (torch's default exporter's
    in-place ``conv_cache[:, :, a:b] = cat[:, :, 1:]``, the time axis moved first)."""
    at = ctx.check_attrs(node, ("reduction",))
    data, upd = ins[0], ins[2]
    red = at.get("reduction", b"none")
    red = red.decode() if isinstance(red, bytes) else str(red)
    idx = np.asarray(ctx.const(node, 1, "indices")).astype(int)
    if not isinstance(upd, Frames) or upd.axis != 0 or red != "none" or idx.ndim != 2 or \
            idx.shape != (len(upd.frames), 1):
        raise ctx.unsupported(node, f"ScatterND (reduction {red!r}, indices of shape "
                                    f"{list(idx.shape)}) of a {type(upd).__name__} value; "
                                    f"only frames of a cache written into whole rows of "
                                    f"axis 0 of a state input or of frames")
    tpl = upd.frames[0]
    if isinstance(data, StateIn) and data.generic:
        rows = _state_frames(ctx, node, data, 0, tpl)
    elif isinstance(data, Frames) and data.axis == 0:
        rows = list(data.frames)
    else:
        raise ctx.unsupported(node, f"ScatterND into a {type(data).__name__} value; only into "
                                    f"a state input paired with an output, or frames")
    for i, f in zip(idx[:, 0], upd.frames, strict=True):
        if not -len(rows) <= i < len(rows):
            raise ctx.bad(node, f"index {i} out of range for {len(rows)} rows")
        rows[i] = f
    return [Frames(tuple(rows), 0, ctx.describe(node))]


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
    tpl = v.frames[0]
    labels, nd = ctx.labels(tpl), w.ndim - 2
    if nd not in (1, 2) or len(labels) != nd + 2 or v.axis != 2:
        raise ctx.unsupported(node, f"a {nd}-D Conv of a cache's frames concatenated along "
                                    f"axis {v.axis} of data with axes {list(labels)}; only "
                                    f"over time, [N, C, T] or [N, C, T, F]")
    auto = at.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto not in ("NOTSET", "VALID"):
        raise ctx.unsupported(node, f"auto_pad={auto!r} over a cache's frames; only explicit "
                                    f"pads")
    kt = w.shape[2]
    st = [int(s) for s in at.get("strides", [1] * nd)]
    dil = [int(d) for d in at.get("dilations", [1] * nd)]
    pads = [int(p) for p in at.get("pads", [0] * 2 * nd)]
    group = int(at.get("group", 1))
    frames = [None] * pads[0] + list(v.frames) + [None] * pads[nd]
    count = (len(frames) - (kt - 1) * dil[0] - 1) // st[0] + 1
    if count != 1:
        raise ctx.unsupported(node, f"Conv over time of the {len(v.frames)} frames of "
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


#: ops that take a cache's frames (Identity passes them on)
TAKES_FRAMES = frozenset({"Concat", "Slice", "Split", "Gather", "Conv", "Identity",
                          "Transpose", "ScatterND", "Unsqueeze", "Squeeze"})


def check_frames(ctx, node, ins) -> None:
    """Refuse, naming the node, any other op given a cache's frames."""
    if node.op_type in TAKES_FRAMES:
        return
    for v in ins:
        if isinstance(v, Frames) and len(v.frames) > 1:
            ctx.as_seq(node, v)     # raises, with the reason


OPS = {"Concat": convert_concat, "Slice": convert_slice, "Split": convert_split,
       "Gather": convert_gather, "Transpose": convert_transpose,
       "ScatterND": convert_scatter_nd, "Unsqueeze": convert_unsqueeze,
       "Squeeze": convert_squeeze,
       "Conv": convert_conv}

__all__ = ["OPS", "TAKES_FRAMES", "check_frames"]
