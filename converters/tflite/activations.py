"""Elementwise functions of one tensor: the unary math and activation ops, and the
fused activations of the others.

Each ``flat`` handler takes ``(subgraph, op)`` and returns the layers (edgernn ops,
or functions of a Tensor) that compute the op on a step's values, whatever their
layout: ABS, SQRT, RSQRT, LOG, EXP, NEG, SQUARE, POW by a constant, RELU, RELU6,
RELU_N1_TO_1, RELU_0_TO_1, LOGISTIC, TANH, ELU, LEAKY_RELU, HARD_SWISH, GELU
(exact and tanh-approximated) and MAXIMUM/MINIMUM with one constant. The walk
(:mod:`.statewalk`) applies them in the operand's own layout.
"""

from __future__ import annotations

import math

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from ..common.tflite_codes import fused_activation_name

#: a fused activation -> layers (edgernn has RELU6 and RELU_N1_TO_1 as a clip)
_FUSED = {"NONE": lambda: [], "RELU": lambda: [edgernn.Activation("relu")],
          "TANH": lambda: [edgernn.Activation("tanh")],
          "RELU6": lambda: [edgernn.Unary("clip", 0.0, 6.0)],
          "RELU_N1_TO_1": lambda: [edgernn.Unary("clip", -1.0, 1.0)]}


#: the fused activations LiteRT's float kernels apply (convolutions, pooling, ADD,
#: MUL, ...: they clamp to a range, and a TANH there is ignored)
CLAMPS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def fused_layers(op, supported=CLAMPS) -> list:
    """The layers of ``op``'s fused activation (UnsupportedOpError naming the others)."""
    return _FUSED[fused_activation_name(op, supported=supported)]()


def _one(func, *params):
    return lambda sg, op: [edgernn.Unary(func, *params)]


def _act(name):
    return lambda sg, op: [edgernn.Activation(name)]


def _rsqrt(sg, op):
    """LiteRT's ``1.f / std::sqrt(x)``: the same two roundings."""
    return [edgernn.Unary("sqrt"), edgernn.Unary("reciprocal")]


def _hard_swish(sg, op):
    """``x * relu6(x + 3) / 6``."""
    def hard_swish(x):
        gate = edgernn.Activation("hard_sigmoid", alpha=1.0 / 6.0, beta=0.5)(x)
        return edgernn.Mul()(x, gate)
    return [hard_swish]


def _gelu(sg, op):
    """``0.5 x (1 + erf(x / sqrt 2))``; approximate: ``0.5 x (1 + tanh(sqrt(2/pi)
    (x + 0.044715 x^3)))``."""
    approximate = bool(op.opt("Approximate", False))

    def gelu(x):
        if approximate:
            cube = edgernn.Mul()(x, edgernn.Mul()(x, x))
            inner = edgernn.Add()(x, edgernn.Mul(np.float32(0.044715))(cube))
            t = edgernn.Activation("tanh")(edgernn.Mul(np.float32(math.sqrt(2 / math.pi)))(inner))
        else:
            t = edgernn.Unary("erf")(edgernn.Mul(np.float32(1 / math.sqrt(2)))(x))
        return edgernn.Mul()(edgernn.Mul(np.float32(0.5))(x), edgernn.Add(np.float32(1))(t))
    return [gelu]


def _leaky_relu(sg, op):
    return [edgernn.Activation("leaky_relu", alpha=op.opt("Alpha", 0.2))]


def _softmax(sg, op):
    if op.opt("Beta", 1.0) != 1.0:
        raise UnsupportedOpError(f"{op}: softmax beta {op.opt('Beta')!r} is not supported; "
                                 f"supported: 1.0")
    return [edgernn.Activation("softmax")]


def scalar(sg, op, k, what):
    """The constant operand ``k`` as one float (UnsupportedOpError otherwise)."""
    c = sg.const(op.inputs[k]) if k < len(op.inputs) and op.inputs[k] >= 0 else None
    if c is None or np.size(c) == 0 or np.any(np.asarray(c) != np.asarray(c).reshape(-1)[0]):
        got = "data" if c is None else f"a constant of shape {list(np.shape(c))}"
        raise UnsupportedOpError(f"{op}: {what} is {got}; supported: one constant value")
    return float(np.asarray(c).reshape(-1)[0])


def _pow(sg, op):
    return [edgernn.Unary("pow", scalar(sg, op, 1, "the exponent"))]


def _minmax(sg, op):
    """MAXIMUM/MINIMUM of data and one constant value (either operand)."""
    k = 1 if sg.const(op.inputs[1]) is not None else 0
    func = "max" if op.name == "MAXIMUM" else "min"
    return [edgernn.Unary(func, scalar(sg, op, k, "the other operand"))]


FLAT = {"ABS": _one("abs"), "SQRT": _one("sqrt"), "RSQRT": _rsqrt, "LOG": _one("log"),
        "EXP": _one("exp"), "NEG": _one("neg"), "SQUARE": _one("square"), "POW": _pow,
        "RELU": _act("relu"), "RELU6": _one("clip", 0.0, 6.0),
        "RELU_N1_TO_1": _one("clip", -1.0, 1.0), "RELU_0_TO_1": _one("clip", 0.0, 1.0),
        "LOGISTIC": _act("sigmoid"), "TANH": _act("tanh"), "ELU": _act("elu"),
        "LEAKY_RELU": _leaky_relu, "HARD_SWISH": _hard_swish, "GELU": _gelu,
        "FLOOR": _one("floor"), "CEIL": _one("ceil"), "ROUND": _one("round"),
        "SIGN": _one("sign")}
def _log_softmax(sg, op):
    return [edgernn.Activation("log_softmax")]


def _l2_normalization(sg, op):
    """LiteRT divides by ``max(||x||, 1e-6)``: ``alpha=1e-12`` on the sum of squares."""
    fused_activation_name(op, supported=("NONE",))
    return [edgernn.Activation("l2_normalize", alpha=1e-12)]


#: vector activations: over the last axis only
VECTOR = {"SOFTMAX": _softmax, "LOG_SOFTMAX": _log_softmax,
          "L2_NORMALIZATION": _l2_normalization}


def _walk(handler):
    def walk(w, op):
        return [w.elementwise(op, w.data(op, 0), handler(w.sg, op))]
    return walk


def _walk_vector(w, op):
    """SOFTMAX, LOG_SOFTMAX, L2_NORMALIZATION on a value whose one axis longer than 1
    is the last."""
    x = w.data(op, 0)
    if any(d != 1 for d in x.shape[:-1]):
        raise UnsupportedOpError(f"{op}: over the last axis of {list(x.shape)}; supported: "
                                 f"a value whose only axis longer than 1 is the last")
    return [w.elementwise(op, x, VECTOR[op.name](w.sg, op))]


WALK = {name: _walk(h) for name, h in FLAT.items()}
WALK.update({name: _walk_vector for name in VECTOR})

__all__ = ["FLAT", "WALK", "fused_layers", "scalar"]
