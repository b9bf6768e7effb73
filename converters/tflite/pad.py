"""PAD, PADV2 (a constant value) and MIRROR_PAD (REFLECT) -> :class:`edgernn.Pad`.

One padded axis per op. In a sequence model (``FLAT``) that axis is the features;
zeros before the time axis are a causal convolution's (:mod:`.time_conv` takes them
with it). In the walk (``WALK``) any axis pads when the values lie with it last in
memory; pads of zeros everywhere move nothing. MIRROR_PAD's SYMMETRIC mode
(the edge repeated) has no edgernn mode and is refused.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from .shape_ops import zero_pad


def _params(op, pads, value, rank):
    if pads is None:
        raise UnsupportedOpError(f"{op}: the paddings are not a constant")
    pads = np.asarray(pads).reshape(rank, 2).astype(int)
    mode = "constant"
    if op.name == "MIRROR_PAD":
        if op.opt("Mode", 0) != 0:
            raise UnsupportedOpError(f"{op}: mode SYMMETRIC is not supported; supported: "
                                     f"REFLECT (edgernn Pad 'reflect')")
        mode = "reflect"
    if value is not None and np.size(value) != 1:
        raise UnsupportedOpError(f"{op}: the pad value has {np.size(value)} values")
    value = 0.0 if value is None else float(np.asarray(value).reshape(-1)[0])
    padded = [a for a in range(rank) if pads[a].any()]
    return pads, mode, value, padded


def flat_pad(sg, op):
    """The features (last axis) of ``[.., F]``."""
    shape = sg.tensors[op.inputs[0]].shape
    value = sg.const(op.inputs[2]) if op.name == "PADV2" and len(op.inputs) > 2 else None
    pads, mode, value, padded = _params(op, sg.const(op.inputs[1]), value, len(shape))
    if not padded:
        return []
    if padded != [len(shape) - 1]:
        raise UnsupportedOpError(f"{op}: pads axes {padded} of {list(shape)} by "
                                 f"{pads.tolist()}; supported in a sequence model: the features "
                                 f"(axis {len(shape) - 1}), and zeros before time in front of a "
                                 f"causal convolution")
    return [edgernn.Pad(int(shape[-1]), int(pads[-1, 0]), int(pads[-1, 1]), mode, value)]


def _walk(w, op):
    x = w.data(op, 0)
    value = w.const(op, 2, "the pad value") if op.name == "PADV2" and len(op.inputs) > 2 \
        else None
    pads, mode, value, padded = _params(op, w.const(op, 1, "paddings"), value, x.ndim)
    if not padded:
        return zero_pad(w, op)
    if len(padded) > 1:
        raise UnsupportedOpError(f"{op}: pads {len(padded)} axes {padded} of {list(x.shape)}; "
                                 f"supported: one axis per PAD")
    a = padded[0]
    order = [d for d in range(x.ndim) if d != a] + [a]
    t = w.tensor(op, x.transpose(order))
    before, after = int(pads[a, 0]), int(pads[a, 1])
    y = w.apply(op, [edgernn.Pad(int(x.shape[a]), before, after, mode, value)], t)
    lay = [x.shape[d] for d in order[:-1]] + [x.shape[a] + before + after]
    return [w.wrap_as(y, lay, np.argsort(order))]


FLAT = {n: flat_pad for n in ("PAD", "PADV2", "MIRROR_PAD")}
WALK = {n: _walk for n in ("PAD", "PADV2", "MIRROR_PAD")}

__all__ = ["FLAT", "WALK"]
