"""ONNX ``Concat``.

Of data along the feature axis: :func:`edgernn.concat` (the inputs must share
their time and batch axes). Of recurrent states (``Y_h``/``Y_c``) along their
direction axis: the rows of a state output. Of the forward and backward ``h``
of a bidirectional node along the features (``cat(h_n[-2], h_n[-1])``): that
node's output at the last step, as Keras' ``return_sequences=False``. Of zero
tensors: a zero tensor (an initial state).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import edgernn

from . import statepack
from .statepack import StatePack
from .values import Const, Seq, StateOut, Zeros


def convert_concat(ctx, node, ins):
    at = ctx.check_attrs(node, ("axis",))
    if "axis" not in at:
        raise ctx.bad(node, "the attribute 'axis' is required")
    axis = int(at["axis"])
    if all(isinstance(v, Zeros) or (isinstance(v, Const) and not np.any(v.value))
           for v in ins):
        return [Zeros()]
    if all(isinstance(v, StateOut) for v in ins) and len({v.axes for v in ins}) == 1:
        v0 = ins[0]
        parts = tuple(p for v in ins for p in v.parts)
        k = ctx.axes(node, [axis], len(v0.axes))[0]
        if v0.axes[k] == "R":
            return [replace(v0, parts=parts)]
        if v0.axes[k] == "F":
            return [_final_bidirectional(ctx, node, v0, parts)]
    if all(isinstance(v, (StateOut, StatePack)) for v in ins):  # stacked in another layout
        return [statepack.concat(ctx, node, ins, axis)]
    if len(ins) == 1 and ins[0] is not None:  # a Concat of one tensor is that tensor
        return [ins[0]]
    if any(isinstance(v, StatePack) for v in ins) or (
            all(isinstance(v, Seq) for v in ins) and _stacks(ctx, ins, axis)):
        return [statepack.concat(ctx, node, ins, axis)]  # state packed for the output
    if any(isinstance(v, Seq) for v in ins):
        return [_data(ctx, node, ins, axis)]
    raise ctx.unsupported(node, f"Concat of {[type(v).__name__ for v in ins]} along axis "
                                f"{axis}; only data along its features, or recurrent states "
                                f"(Y_h/Y_c) along their direction axis")


def _stacks(ctx, seqs, axis) -> bool:
    """Data concatenated along an axis of size 1 that is not the features (state being
    packed for a graph output: DTLN stacks its LSTM layers' h and c)."""
    n = len(seqs[0].axes)
    if not -n <= axis < n or any(len(s.axes) != n for s in seqs):
        return False
    k = axis % n
    return all(ctx.labels(s)[k] not in ("F", "T") and s.sizes[k] == 1 for s in seqs)


def _data(ctx, node, ins, axis) -> Seq:
    for v in ins:
        if isinstance(v, Const):
            raise ctx.unsupported(node, "Concat of a constant with data; only data tensors "
                                        "can be concatenated")
    seqs = [ctx.as_seq(node, v) for v in ins]
    sizes = list(ctx.match(node, seqs))
    n = len(sizes)
    k = ctx.feature_axis(node, seqs[0])
    if not -n <= axis < n or axis % n != k:
        raise ctx.unsupported(node, f"Concat along axis {axis} of rank-{n} data with axes "
                                    f"{list(ctx.labels(seqs[0]))}; only along the feature "
                                    f"axis ({k})")
    for s in seqs:
        ctx.feature_axis(node, s)
    if len(seqs) == 1:
        return seqs[0]
    t = ctx.apply(node, edgernn.Concat(), *(s.tensor for s in seqs))
    sizes[k] = t.size // ctx.inner_length(seqs[0])   # channels of (channels, length) steps
    return seqs[0].with_tensor(t, sizes)


def _final_bidirectional(ctx, node, v: StateOut, parts) -> Seq:
    """``cat(h_n[-2], h_n[-1])`` of a bidirectional node: its output as Keras'
    ``return_sequences=False`` (forward's last, backward's first)."""
    t = ctx.resolve(parts[0].tensor) if parts else None
    layer = None if t is None else t.op
    if not (isinstance(layer, edgernn.Bidirectional) and layer.merge_mode == "concat"
            and [(ctx.resolve(p.tensor), p.suffix) for p in parts]
            == [(t, "forward.h"), (t, "backward.h")] and "R" not in v.axes):
        raise ctx.unsupported(node, f"Concat of recurrent states "
                                    f"{[p.suffix for p in parts]} along the features; only "
                                    f"the forward and backward h of one bidirectional node, "
                                    f"in that order")
    if layer.return_sequences:
        y = ctx.y_of.get(id(t), "")
        if ctx.uses.get(y, 0):
            raise ctx.unsupported(node, f"Concat of the final forward and backward h of a "
                                        f"bidirectional node whose Y ({y!r}) is used too; "
                                        f"only one of them can be the node's output")
        new = ctx.apply(node, edgernn.Bidirectional(layer.forward, layer.backward, "concat",
                                                    return_sequences=False), t.inputs[0])
        ctx.moved[id(t)] = new
        ctx.recurrent[ctx.recurrent.index(t)] = new
        t = new
    sizes = tuple(None if a == "B" else 2 * v.hidden if a == "F" else 1 for a in v.axes)
    return Seq(t, v.axes, sizes, last=True)


OPS = {"Concat": convert_concat}

__all__ = ["OPS"]
