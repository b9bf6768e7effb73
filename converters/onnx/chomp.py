"""ONNX ``Slice`` that drops the frames a convolution's right padding added past the
last time step: a TCN's ``Chomp1d`` (``Conv(pads=[p, p])`` then ``x[:, :, :-p]``,
locuslab/TCN and most TCN code since). The convolution is then causal
(:func:`converters.onnx.conv._over_time` made it an :class:`edgernn.CausalConv1d`
and returned a :class:`~converters.onnx.values.TimeExtended`); the Slice gives
back its data. Every other Slice goes to :func:`converters.onnx.select.convert_slice`.
"""

from __future__ import annotations

from .select import convert_slice as _select_slice
from .values import TimeExtended


def convert_slice(ctx, node, ins):
    """Slice of a :class:`TimeExtended` dropping exactly its extra frames, or any other."""
    v = ins[0]
    if not isinstance(v, TimeExtended):
        return _select_slice(ctx, node, ins)
    starts, ends, axes, steps = ctx.slice_args(node)
    labels = ctx.labels(v.seq)
    axes = ctx.axes(node, axes, len(labels), "axes")
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        size = v.seq.sizes[a]
        if st == 1 and s == 0 and (e == -v.frames if labels[a] == "T" else
                                   size is not None and e >= size):
            continue
        raise ctx.unsupported(node, f"Slice {s}:{e}:{st} along axis {a} ({labels[a]!r}) of "
                                    f"the output of {v.producer}, which has {v.frames} frames "
                                    f"past the last step from its own padding; streaming needs "
                                    f"exactly them dropped (a slice 0:-{v.frames} of the time "
                                    f"axis)")
    if "T" not in [labels[a] for a in axes]:
        raise ctx.unsupported(node, f"Slice keeps the {v.frames} frames that the padding of "
                                    f"{v.producer} added past the last step; streaming needs "
                                    f"them dropped (a slice 0:-{v.frames} of the time axis)")
    return [v.seq]


OPS = {"Slice": convert_slice}

__all__ = ["OPS"]
