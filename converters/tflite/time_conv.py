"""A Keras ``Conv1D`` over time in a sequence model -> :class:`edgernn.CausalConv1d`.

LiteRT lays a Keras ``Conv1D(padding="causal")`` on ``[1, T, C]`` out as: PAD of
``(K - 1) d`` zeros before the time axis, EXPAND_DIMS (or RESHAPE) to ``[1, 1, T, C]``,
CONV_2D with weights ``[O, 1, K, C]`` (``DEPTHWISE_CONV_2D``: ``[1, 1, K, C m]``) and
dilation ``d``, VALID, then SQUEEZE (or RESHAPE) back to ``[1, T, O]``. Each step's
output then sees that step's input and the ``(K - 1) d`` before it: a causal
convolution, which keeps them as state. A kernel of 1 needs no padding (and is a
Dense on each step unless depthwise). Anything
else over time is refused with the reason: SAME padding looks ahead, VALID without
the zeros drops the first steps, a stride changes the step rate.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from ..common.tflite_codes import fused_activation_name
from .activations import CLAMPS, fused_layers

_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
_VIEWS = ("EXPAND_DIMS", "RESHAPE", "SQUEEZE")


def _only_consumer(sg, t, op):
    return [c.index for c in sg.consumers.get(t, [])] == [op.index] and t not in sg.outputs


def find_time_convs(sg):
    """``[(op indices, last op, layers, input tensor, output tensor)]``, one per
    convolution of the main subgraph (UnsupportedOpError for one over time that
    is not causal, or not laid out as above)."""
    units = []
    for op in sg.ops:
        if op.name in _CONVS:
            units.append(_unit(sg, op))
    return units


def _unit(sg, op):
    view = sg.producer.get(op.inputs[0])
    x4 = sg.tensors[op.inputs[0]].shape
    if view is None or view.name not in _VIEWS or len(x4) != 4 or \
            len(sg.tensors[view.inputs[0]].shape) != 3:
        raise UnsupportedOpError(f"{op}: in a sequence model, supported: a Keras Conv1D over "
                                 f"time (a [1, T, C] input expanded to [1, 1, T, C]); this "
                                 f"one reads {list(x4)} (a convolution within a step needs "
                                 f"the model called once per step: input_shapes= or states=)")
    used = [view.index]
    x = view.inputs[0]
    pad = 0
    prev = sg.producer.get(x)
    if prev is not None and prev.name in ("PAD", "PADV2") and _only_consumer(sg, x, view):
        pads = sg.const(prev.inputs[1])
        value = sg.const(prev.inputs[2]) if prev.name == "PADV2" else None
        if pads is not None and (value is None or not np.any(value)):
            pads = np.asarray(pads).reshape(-1, 2)
            if pads.shape[0] == 3 and not pads[[0, 2]].any() and pads[1, 1] == 0:
                pad, x = int(pads[1, 0]), prev.inputs[0]
                used.insert(0, prev.index)
    weight = sg.const(op.inputs[1])
    w_t = sg.tensors[op.inputs[1]]
    if weight is None or w_t.type_code != 0:
        raise UnsupportedOpError(f"{op}: weights {w_t.name!r} are not float32 constants; "
                                 f"supported over time: float32")
    # time is the spatial axis the input's T went to; the other has a kernel of 1
    a = 2 if x4[1] == 1 and weight.shape[1] == 1 else 1
    if x4[3 - a] != 1 or weight.shape[3 - a] != 1:
        raise UnsupportedOpError(f"{op}: a 2-D kernel {list(weight.shape)} over {list(x4)}; "
                                 f"supported: a Conv1D over time")
    k = weight.shape[a]
    name = "W" if a == 2 else "H"
    stride, dil = op.opt(f"Stride{name}", 1), op.opt(f"Dilation{name}Factor", 1)
    where = f"{op}: a convolution over time (kernel {k}, dilation {dil})"
    if stride != 1:
        raise UnsupportedOpError(f"{where} with stride {stride} changes the step rate; "
                                 f"supported: stride 1")
    if k > 1 and op.opt("Padding", 1) == 0:
        raise UnsupportedOpError(f"{where} with SAME padding looks {(k - 1) * dil // 2} steps "
                                 f"ahead; supported: Keras padding='causal'")
    if pad != (k - 1) * dil:
        raise UnsupportedOpError(f"{where} after {pad} zero steps: a step's output would not "
                                 f"be that step's (padding='valid' drops the first "
                                 f"{(k - 1) * dil - pad}); supported: padding='causal', "
                                 f"{(k - 1) * dil} zeros before")
    out = op.outputs[0]
    squeeze = sg.consumers.get(out, [])
    if len(squeeze) != 1 or squeeze[0].name not in _VIEWS or out in sg.outputs or \
            len(sg.tensors[squeeze[0].outputs[0]].shape) != 3:
        raise UnsupportedOpError(f"{op}: its output is not squeezed back to [1, T, O]; "
                                 f"supported: a Keras Conv1D over time")
    if not _only_consumer(sg, op.inputs[0], op):
        raise UnsupportedOpError(f"{op}: its expanded input feeds other ops too")
    channels = x4[3]
    bias = sg.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    if op.name == "DEPTHWISE_CONV_2D":
        groups, kernel = channels, weight.reshape(k, -1).T[:, None, :]
    else:
        groups, kernel = 1, weight.reshape(weight.shape[0], k, channels).transpose(0, 2, 1)
    act = fused_activation_name(op, supported=CLAMPS)
    inner = {"NONE": "linear", "RELU": "relu"}.get(act)
    bias = None if bias is None else bias.astype(np.float32)
    if k == 1 and groups == 1:      # a pointwise Conv1D: a Dense on each step
        layers = [edgernn.Dense(np.ascontiguousarray(kernel[:, :, 0]), bias,
                                activation=inner or "linear")]
    else:
        layers = [edgernn.CausalConv1d(kernel, bias, dil, groups, inner or "linear")]
    if inner is None:
        layers += fused_layers(op)
    used += [op.index, squeeze[0].index]
    return used, squeeze[0], layers, x, squeeze[0].outputs[0]


__all__ = ["find_time_convs"]
