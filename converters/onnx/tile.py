"""ONNX ``Tile`` of data: copies of a step's values one after another.

Repeats along the channel/feature axis (of ``[..., F]`` or ``[N, C, L]`` steps, whose
values are channel-major) are :class:`edgernn.Concat` of the same tensor ``r``
times; repeats of 1 elsewhere change nothing. Repeating along time or batch, along
the length of ``(C, L)`` steps, or along a unit axis (which would add an axis to
the step) is refused naming the axis.
"""

from __future__ import annotations

import edgernn

from .values import Zeros


def convert_tile(ctx, node, ins):
    ctx.check_attrs(node, ())
    if isinstance(ins[0], Zeros):
        return [ins[0]]
    seq = ctx.as_seq(node, ins[0])
    k = ctx.feature_axis(node, seq)
    reps = [int(r) for r in ctx.const(node, 1, "repeats").reshape(-1)]
    labels = ctx.labels(seq)
    if len(reps) != len(labels) or min(reps) < 1:
        raise ctx.bad(node, f"repeats {reps} for a rank-{len(labels)} tensor; expected "
                            f"{len(labels)} integers >= 1")
    for ax, r in enumerate(reps):
        if r != 1 and ax != k:
            raise ctx.unsupported(node, f"Tile by {r} along axis {ax} ({labels[ax]!r}) of data "
                                        f"with axes {list(labels)}; only along the "
                                        f"channels/features of a step")
    r = reps[k]
    if r == 1:
        return [seq]
    t = ctx.apply(node, edgernn.concat, [seq.tensor] * r)
    sizes = list(seq.sizes)
    sizes[k] = sizes[k] * r
    return [seq.with_tensor(t, sizes)]


OPS = {"Tile": convert_tile}

__all__ = ["OPS"]
