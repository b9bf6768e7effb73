"""ONNX ``ReduceMean``, ``ReduceMax``, ``ReduceMin`` and ``ReduceSum`` of data.

Over the feature axis: :class:`edgernn.Reduce` (one value per step; ``keepdims=1``
keeps it as a feature axis of size 1, which elementwise ops broadcast, as in
DTLN's instant layer norm). Over axes of size 1 (Silero's ``ReduceMean`` over a
unit axis): nothing to compute (``keepdims=0`` drops them). Other reductions
(over time or batch) are refused.
"""

from __future__ import annotations

import numpy as np

import edgernn

_FUNCS = {"ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min", "ReduceSum": "sum"}


def convert_reduce(ctx, node, ins):
    at = ctx.check_attrs(node, ("axes", "keepdims", "noop_with_empty_axes"))
    seq = ctx.as_seq(node, ins[0])
    n = len(seq.axes)
    if len(node.input) > 1 and node.input[1]:
        axes = [int(a) for a in np.asarray(ctx.const(node, 1, "axes")).reshape(-1)]
    else:
        axes = None if at.get("axes") is None else [int(a) for a in at["axes"]]
    if not axes:
        if int(at.get("noop_with_empty_axes", 0)):
            return [seq]
        axes = list(range(n))
    axes = sorted(set(ctx.axes(node, axes, n, "axes")))
    keep = bool(int(at.get("keepdims", 1)))
    labels = ctx.labels(seq)
    if "L" in labels and ctx.inner_length(seq) > 1:
        return [_over_channels_length(ctx, node, seq, axes, keep)]
    k = ctx.plain(node, seq)
    big = [a for a in axes if seq.sizes[a] != 1]
    if big and big != [k]:
        raise ctx.unsupported(node, f"{node.op_type} over axes {axes} of data with axes "
                                    f"{list(labels)}; only over the features or axes of size 1")
    out = seq
    if big:
        if not keep:
            raise ctx.unsupported(node, f"{node.op_type} of the features with keepdims=0 "
                                        f"(the step's value would have no feature axis)")
        t = ctx.apply(node, edgernn.Reduce(_FUNCS[node.op_type], seq.sizes[k]), seq.tensor)
        sizes = list(seq.sizes)
        sizes[k] = 1
        out = seq.with_tensor(t, sizes)
    if not keep:
        drop = [a for a in axes if a != k]
        out = out.with_axes([a for j, a in enumerate(out.axes) if j not in drop],
                            [s for j, s in enumerate(out.sizes) if j not in drop])
    return [out]


def _over_channels_length(ctx, node, seq, axes, keep):
    """A reduction of ``(channels, length)`` steps over the length (each channel to one
    value: ``GlobalAveragePool`` written as ``ReduceMean(axes=[-1])``), the channels
    (each position to one value) or both (a Reduce of each channel's values, then of
    those), other axes of size 1 only."""
    labels = ctx.labels(seq)
    kf, kl = labels.index("F"), labels.index("L")
    length = int(seq.sizes[kl])
    big = [a for a in axes if seq.sizes[a] != 1]
    if not set(big) <= {kf, kl} or not big:
        raise ctx.unsupported(node, f"{node.op_type} over axes {axes} of data with axes "
                                    f"{list(labels)}; only over the channels and/or the "
                                    f"length of a step")
    func = _FUNCS[node.op_type]
    sizes = list(seq.sizes)
    t = seq.tensor
    if kl in big:
        t = ctx.apply(node, edgernn.Reduce(func, length), t)     # [C]
        sizes[kl] = 1
    if kf in big:
        cols = 1 if kl in big else length
        t = ctx.apply(node, edgernn.Reduce(func, cols, axis=0), t)
        sizes[kf] = 1
    out = seq.with_tensor(t, sizes)
    if not keep:
        drop = [a for a in axes if a != kf]
        if kf in axes and kl not in axes:
            raise ctx.unsupported(node, f"{node.op_type} of the channels with keepdims=0 "
                                        f"(the step's values would have no channel axis)")
        out = out.with_axes([a for j, a in enumerate(out.axes) if j not in drop],
                            [s for j, s in enumerate(out.sizes) if j not in drop])
    return out


OPS = {name: convert_reduce for name in _FUNCS if name != "ReduceSum"}  # (norms.py's)
