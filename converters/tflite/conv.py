"""CONV_2D and DEPTHWISE_CONV_2D within a step -> :class:`edgernn.Conv1d` (the walk).

TFLite lays a Keras ``Conv1D`` over ``[1, L, C]`` out as EXPAND_DIMS (or RESHAPE)
to ``[1, 1, L, C]``, CONV_2D with weights ``[O, 1, K, C]`` (OHWI; depthwise
``[1, 1, K, C * m]``) and SQUEEZE. One spatial axis of size 1 with a kernel of 1,
the other the length: stride, dilation, SAME or VALID padding, a fused
activation. edgernn's Conv1d reads ``(channels, length)``; the output lies so
(the walk sees it through a transpose, for free). An input still lying
channels-last (a graph input) is read as one channel of length ``L * C`` by a
kernel of ``K * C`` with stride ``s * C`` (dilation 1): the same sums, no copy.
A 1x1 kernel on one pixel is a Dense (int8 weights as LiteRT's hybrid kernel).
"""

from __future__ import annotations

import dataclasses

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from ..common.tflite_codes import fused_activation_name
from .activations import CLAMPS, fused_layers
from .matmul import dense_on
from .simple_ops import convert_fully_connected


def _axis(op, x, kshape):
    """The spatial axis (1 or 2) that is the length; the other is 1 with a kernel of 1."""
    if x.ndim != 4 or x.shape[0] != 1:
        raise UnsupportedOpError(f"{op}: input {list(x.shape)}; supported: [1, H, W, C]")
    for a in (2, 1):
        b = 3 - a
        if x.shape[b] == 1 and kshape[b - 1] == 1:
            return a
    raise UnsupportedOpError(f"{op}: a 2-D convolution of {list(x.shape)} by a kernel "
                             f"{list(kshape)}; supported: 1-D (one spatial axis of size 1 "
                             f"with a kernel of 1)")


def _padding(op, length, k, stride, dil):
    if op.opt("Padding", 1) == 1:  # VALID
        return (0, 0)
    out = -(-length // stride)
    total = max((out - 1) * stride + (k - 1) * dil + 1 - length, 0)
    return (total // 2, total - total // 2)


def _walk(w, op):
    x = w.data(op, 0)
    w_t = w.sg.tensors[op.inputs[1]]
    depthwise = op.name == "DEPTHWISE_CONV_2D"
    weight = w.const(op, 1, "the weights")
    if not depthwise and x.size == weight.shape[-1] and weight.shape[1:3] == (1, 1):
        return [_pointwise(w, op, x)]
    if w_t.type_code != 0:
        raise UnsupportedOpError(f"{op}: {np.dtype(w_t.dtype).name} weights {w_t.name!r}; "
                                 f"supported: float32 (int8 only on a 1x1 kernel on one pixel)")
    a = _axis(op, x, weight.shape[1:3])
    name = "W" if a == 2 else "H"
    stride, dil = op.opt(f"Stride{name}", 1), op.opt(f"Dilation{name}Factor", 1)
    length, channels = x.shape[a], x.shape[3]
    k = weight.shape[a]
    bias = w.const(op, 2, "the bias").astype(np.float32) if len(op.inputs) > 2 and \
        op.inputs[2] >= 0 else None
    if depthwise:
        groups, kernel = channels, weight.reshape(k, -1).T[:, None, :]   # [C m, 1, K]
    else:
        groups, kernel = 1, weight.reshape(weight.shape[0], k, channels).transpose(0, 2, 1)
    pad = _padding(op, length, k, stride, dil)
    lc = x.reshape(length, channels)                    # TFLite order (L, C)
    reg = w.region(lc.T)
    if reg is not None and np.array_equal(reg[1].reshape(-1), np.arange(x.size)):
        t, conv = reg[0], edgernn.Conv1d(kernel, bias, length, stride, dil, groups, pad)
    elif (groups == 1 or channels == 1) and dil == 1:   # lies channels-last: one channel
        t = w.tensor(op, lc)
        conv = edgernn.Conv1d(kernel.transpose(0, 2, 1).reshape(kernel.shape[0], 1, -1), bias,
                              length * channels, stride * channels, 1, 1,
                              (pad[0] * channels, pad[1] * channels))
    else:
        t, conv = w.tensor(op, lc.T), edgernn.Conv1d(kernel, bias, length, stride, dil,
                                                     groups, pad)
    act = fused_activation_name(op, supported=CLAMPS)
    if act == "RELU":   # inside the convolution's kernel
        conv = dataclasses.replace(conv, activation="relu")
    y = w.apply(op, [conv, *([] if act == "RELU" else fused_layers(op))], t)
    out = [1, 1, 1, conv.out_channels]
    out[a] = conv.out_length
    return [w.wrap_as(y, (conv.out_channels, conv.out_length), (1, 0)).reshape(out)]


def _pointwise(w, op, x):
    """A 1x1 kernel on one pixel: FULLY_CONNECTED by W[O, C] (int8 kept as the source's)."""
    return dense_on(w, op, x, convert_fully_connected(_Reshaped(w.sg, op), _Reshaped.Op(op)))


class _Reshaped:
    """Subgraph ``sg`` with the conv's weights seen as FC weights ``[O, C]``."""

    def __init__(self, sg, op):
        self._sg, self.tensors = sg, _Tensors(sg, op.inputs[1])

    def const(self, t):
        return self._sg.const(t)

    class Op:
        def __init__(self, op):
            self._op, self.inputs, self.outputs = op, op.inputs, op.outputs

        def opt(self, name, default=None):
            return self._op.opt(name, default)

        def __str__(self):
            return str(self._op)


class _Tensors:
    def __init__(self, sg, weight):
        self._sg, self._weight = sg, weight

    def __getitem__(self, t):
        src = self._sg.tensors[t]
        return src if t != self._weight else _FlatWeight(src)


class _FlatWeight:
    def __init__(self, t):
        self._t = t

    def __getattr__(self, name):
        return getattr(self._t, name)

    def real(self):
        r = self._t.real()
        return r.reshape(r.shape[0], -1)


WALK = {"CONV_2D": _walk, "DEPTHWISE_CONV_2D": _walk}

__all__ = ["WALK"]
