"""A small numpy evaluator for the float ops of a recurrent cell.

Used to check, on random inputs, that a recognised cell (unrolled by Keras or
inside a ``WHILE`` body) computes what the edgernn layer built from its
weights computes. Covers only the ops such cells are made of.
"""

from __future__ import annotations

import numpy as np

from edgernn.errors import UnsupportedOpError

from ..common.tflite_codes import fused_activation_name


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


#: fused activation (converters.common.tflite_codes) -> function
FUSED = {"NONE": lambda v: v, "RELU": lambda v: np.maximum(v, 0),
         "RELU_N1_TO_1": lambda v: np.clip(v, -1, 1), "RELU6": lambda v: np.clip(v, 0, 6),
         "TANH": np.tanh}
_UNARY = {"LOGISTIC": _sigmoid, "TANH": np.tanh, "RELU": lambda v: np.maximum(v, 0)}
_BINARY = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}


def fused(op, v):
    return FUSED[fused_activation_name(op, supported=FUSED)](v)


def evaluate(sg, ops, feeds: dict) -> dict:
    """Run ``ops`` of subgraph ``sg`` in float64 from ``feeds`` {tensor: array}; all values."""
    env = dict(feeds)

    def get(t):
        if t in env:
            return env[t]
        c = sg.const(t)
        if c is None:
            raise UnsupportedOpError(f"cell input tensor {sg.tensors[t].name!r} is neither a "
                                     f"state, the step input nor a constant")
        return c.astype(np.float64) if c.dtype.kind == "f" else c

    for op in ops:
        n = op.name
        if n == "FULLY_CONNECTED":
            w = get(op.inputs[1])
            y = get(op.inputs[0]).reshape(-1, w.shape[1]) @ w.T
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                y = y + get(op.inputs[2])
            env[op.outputs[0]] = fused(op, y)
        elif n in _BINARY:
            env[op.outputs[0]] = fused(op, _BINARY[n](get(op.inputs[0]), get(op.inputs[1])))
        elif n in _UNARY:
            env[op.outputs[0]] = _UNARY[n](get(op.inputs[0]))
        elif n == "SPLIT":
            axis = int(get(op.inputs[0]))
            for t, v in zip(op.outputs, np.split(get(op.inputs[1]), len(op.outputs), axis),
                            strict=True):
                env[t] = v
        elif n == "SPLIT_V":
            v, sizes, axis = get(op.inputs[0]), get(op.inputs[1]), int(get(op.inputs[2]))
            sizes = [int(s) for s in sizes]
            if -1 in sizes:
                sizes[sizes.index(-1)] = v.shape[axis] - (sum(sizes) + 1)
            for t, part in zip(op.outputs, np.split(v, np.cumsum(sizes)[:-1], axis),
                               strict=True):
                env[t] = part
        elif n == "RESHAPE":
            shape = [d for d in sg.tensors[op.outputs[0]].shape]
            env[op.outputs[0]] = get(op.inputs[0]).reshape(shape)
        elif n == "STRIDED_SLICE":
            env[op.outputs[0]] = strided_slice(op, get(op.inputs[0]),
                                               *(get(t) for t in op.inputs[1:4]))
        elif n == "CONCATENATION":
            vals = [get(t) for t in op.inputs]
            env[op.outputs[0]] = fused(op, np.concatenate(vals, op.opt("Axis", -1)))
        else:
            raise UnsupportedOpError(f"{op} inside a recurrent cell is not supported; "
                                     f"supported: FULLY_CONNECTED, {', '.join(_BINARY)}, "
                                     f"{', '.join(_UNARY)}, SPLIT, SPLIT_V, RESHAPE, "
                                     f"STRIDED_SLICE, CONCATENATION")
    return env


def strided_slice(op, v, begin, end, strides):
    """numpy STRIDED_SLICE with begin/end/shrink-axis masks (no ellipsis, no new axes)."""
    if op.opt("EllipsisMask", 0) or op.opt("NewAxisMask", 0):
        raise UnsupportedOpError(f"{op}: ellipsis and new-axis masks are not supported")
    bm, em, sm = (op.opt(k, 0) for k in ("BeginMask", "EndMask", "ShrinkAxisMask"))
    index = []
    for ax in range(len(begin)):
        b = None if bm >> ax & 1 else int(begin[ax])
        if sm >> ax & 1:
            index.append(b or 0)
            continue
        e = None if em >> ax & 1 else int(end[ax])
        index.append(slice(b, e, int(strides[ax])))
    return v[tuple(index)]
