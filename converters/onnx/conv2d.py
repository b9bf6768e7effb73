"""ONNX ``Conv`` with a 2-D kernel over ``[N, C, T, F]``: time and a per-step axis
(frequency), causal in time -- the convolutions of CRN/GTCRN-style speech enhancers
and of CRNN keyword spotters.

A step holds ``(C, F)``. With ``kt`` time taps of dilation ``dt`` and ``(kt - 1) dt``
zero frames before the first step (a ``Pad`` of the time axis, or the Conv's own
``pads``; padded at the end too, a ``Slice`` must drop those frames, as for
:mod:`converters.onnx.chomp`)::

    y_t = b + sum_{j<kt} Conv1d_j(x_{t - (kt-1-j) dt})      Conv1d_j: weight W[:, :, j, :]

each ``Conv1d_j`` an :class:`edgernn.Conv1d` within the step over ``F`` (the Conv's
frequency stride, dilation, padding and groups), the delayed inputs
:func:`edgernn.state` tensors in a delay line (``ctx.delays``: each state -> the
tensor it takes at the end of the step), the taps summed with
:class:`edgernn.Add`. Exact in arithmetic; the sum's order is edgernn's (float32
rounding apart from ONNX Runtime's). A stride in time is refused (it changes the
step rate). Every 1-D Conv goes to :mod:`converters.onnx.conv`.
"""

from __future__ import annotations

import numpy as np

import edgernn

from .conv import convert_conv as _conv1d
from .values import Seq, TimeExtended, TimePadded


def delayed(ctx, tensor, steps: int):
    """``tensor`` as it was ``steps`` steps ago (zeros before the first step), from a
    delay line of :func:`edgernn.state` tensors shared by every reader."""
    if steps == 0:
        return tensor
    line = ctx.delay_lines.setdefault(id(tensor), [tensor])
    while len(line) <= steps:
        s = edgernn.state(tensor.size, name=f"delay{len(ctx.delays)}")
        ctx.delays[s] = line[-1]
        line.append(s)
    return line[steps]


def convert_conv(ctx, node, ins):
    """Conv: a 2-D kernel here, any other to the 1-D converter."""
    w = np.asarray(ctx.const(node, 1, "W"))
    if w.ndim != 4:
        return _conv1d(ctx, node, ins)
    at = ctx.check_attrs(node, ("auto_pad", "dilations", "group", "kernel_shape", "pads",
                                "strides"))
    w = w.astype(np.float32)
    b = ctx.const(node, 2, "B", optional=True)
    v, frames = ins[0], 0
    if isinstance(v, TimePadded):
        v, frames = v.seq, v.frames
    seq = ctx.as_seq(node, v)
    labels = ctx.labels(seq)
    if len(labels) == 4 and labels[2].startswith("?"):   # a graph input's axis (its size
        ctx.bind(node, seq.axes[2], "T")                  # fixed by the example or not)
        labels = ctx.labels(seq)
    if len(labels) != 4 or labels[2] != "T":
        raise ctx.unsupported(node, f"a 2-D Conv of data with axes {list(labels)}; only over "
                                    f"[N, C, T, F] (time, then the values of a step)")
    if labels[1] == "F" and labels[3] in ("L", "U"):
        c_in, length = int(seq.sizes[1]), int(seq.sizes[3])
    elif labels[1] in ("U", "B") and seq.sizes[1] == 1 and labels[3] == "F":
        c_in, length = 1, int(seq.sizes[3])     # one channel: the features are the length
    else:
        raise ctx.unsupported(node, f"a 2-D Conv of data with axes {list(labels)}; expected "
                                    f"[N, C, T, F] with the channels before time")
    auto = ctx.auto_pad(at)
    if auto not in ("NOTSET", "VALID"):
        raise ctx.unsupported(node, f"auto_pad={auto!r} for a Conv over time; only explicit "
                                    f"pads (a causal one)")
    kt, kf = w.shape[2:]
    st, sf = [int(s) for s in at.get("strides", [1, 1])]
    dt, df = [int(d) for d in at.get("dilations", [1, 1])]
    tb, fb, te, fe = [int(p) for p in at.get("pads", [0, 0, 0, 0])]
    group = int(at.get("group", 1))
    if w.shape[1] * group != c_in:
        raise ctx.bad(node, f"W has {w.shape[1]} x {group} input channels, the data {c_in}")
    if st != 1 or frames + tb != (kt - 1) * dt:
        raise ctx.unsupported(node, f"a 2-D Conv over time with {frames + tb} zero frames "
                                    f"before it, time stride {st}, {kt} time taps of dilation "
                                    f"{dt}: streaming needs a causal one ((taps - 1) x "
                                    f"dilation = {(kt - 1) * dt} zero frames first, stride 1)")
    bias = None if b is None else np.asarray(b, np.float32)
    acc = None
    for j in range(kt):
        op = edgernn.Conv1d(np.ascontiguousarray(w[:, :, j, :]), bias if j == kt - 1 else None,
                            length=length, stride=sf, dilation=df, groups=group,
                            padding=(fb, fe))
        t = ctx.apply(node, op, delayed(ctx, seq.tensor, (kt - 1 - j) * dt))
        acc = t if acc is None else ctx.apply(node, edgernn.Add(), acc, t)
    out = Seq(acc, (seq.axes[0], "F", seq.axes[2], "L"),
              (seq.sizes[0], op.out_channels, seq.sizes[2], op.out_length), last=seq.last)
    return [TimeExtended(out, te, ctx.describe(node)) if te else out]


OPS = {"Conv": convert_conv}

__all__ = ["OPS", "delayed"]
