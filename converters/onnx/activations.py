"""Activation ops (Relu, Tanh, Sigmoid, Softmax, LogSoftmax, LeakyRelu, Elu,
HardSigmoid, Softsign, Softplus, ThresholdedRelu) and the ``activations`` attribute of the
recurrent ops.

An activation is an :class:`edgernn.Activation` node; right after a
Gemm/MatMul(+Add) it folds into that :class:`edgernn.Dense` when the model is
built (:mod:`converters.onnx.fold`).
"""

from __future__ import annotations

import edgernn

from .values import Seq

#: ONNX activation name (lower case) -> (edgernn name, takes alpha, takes beta)
ONNX_ACTIVATIONS = {
    "relu": ("relu", False, False),
    "tanh": ("tanh", False, False),
    "sigmoid": ("sigmoid", False, False),
    "affine": ("affine", True, True),
    "leakyrelu": ("leaky_relu", True, False),
    "thresholdedrelu": ("thresholded_relu", True, False),
    "scaledtanh": ("scaled_tanh", True, True),
    "hardsigmoid": ("hard_sigmoid", True, True),
    "elu": ("elu", True, False),
    "softsign": ("softsign", False, False),
    "softplus": ("softplus", False, False),
}


#: activations whose parameter defaults ONNX Runtime does not take from the spec
#: (it uses 0 where the operators default to 1): refused unless given explicitly
_AMBIGUOUS_DEFAULTS = {"thresholdedrelu", "scaledtanh", "affine"}


def _s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def rnn_activations(ctx, node, at, per_dir: int, nd: int, defaults) -> list:
    """The ``activations`` attribute as ``nd`` tuples of ``per_dir`` Activations.

    ``activation_alpha``/``activation_beta`` are consumed in order by the
    activations that take the parameter (as ONNX Runtime does); missing ones
    take the operator defaults, except where ONNX Runtime disagrees with them
    (ThresholdedRelu, ScaledTanh, Affine): those are refused.
    """
    names = [_s(a) for a in at.get("activations", [])] or list(defaults) * nd
    if len(names) != per_dir * nd:
        raise ctx.bad(node, f"activations: expected {per_dir * nd} names, got {names}")
    alphas = list(at.get("activation_alpha", []))
    betas = list(at.get("activation_beta", []))
    acts = []
    for name in names:
        key = name.lower()
        if key not in ONNX_ACTIVATIONS:
            raise ctx.unsupported(node, f"activation {name!r} is not supported; supported "
                                        f"activations: {sorted(ONNX_ACTIVATIONS)}")
        ename, ua, ub = ONNX_ACTIVATIONS[key]
        if key in _AMBIGUOUS_DEFAULTS and ((ua and not alphas) or (ub and not betas)):
            raise ctx.unsupported(node, f"activation {name!r} without explicit "
                                        f"activation_alpha/beta: ONNX Runtime uses 0 where the "
                                        f"spec's defaults are 1; give the values explicitly")
        alpha = alphas.pop(0) if ua and alphas else None
        beta = betas.pop(0) if ub and betas else None
        acts.append(edgernn.Activation(ename, alpha, beta))
    if alphas or betas:
        raise ctx.bad(node, f"activation_alpha/beta have unused values {alphas} {betas} for "
                            f"activations {names}")
    return [tuple(acts[d * per_dir:(d + 1) * per_dir]) for d in range(nd)]


def apply_activation(ctx, node, seq: Seq, act: edgernn.Activation) -> Seq:
    """``act`` applied to the features of ``seq`` (folded into a preceding Dense
    when the model is built, see :mod:`converters.onnx.fold`)."""
    if seq.tokens:
        raise ctx.unsupported(node, "an activation on token ids")
    ctx.feature_axis(node, seq)
    return seq.with_tensor(ctx.apply(node, act, seq.tensor))


def _elementwise(name, attrs=()):
    def convert(ctx, node, ins):
        at = ctx.check_attrs(node, attrs)
        seq = ctx.as_seq(node, ins[0])
        act = edgernn.Activation(name, at.get("alpha"), at.get("beta"))
        return [apply_activation(ctx, node, seq, act)]
    convert.__doc__ = f"ONNX activation op -> edgernn {name!r}."
    return convert


def convert_softmax(ctx, node, ins):
    """Softmax / LogSoftmax over the feature axis (the last one) only."""
    at = ctx.check_attrs(node, ("axis",))
    seq = ctx.as_seq(node, ins[0])
    n = len(seq.axes)
    axis = int(at.get("axis", -1 if ctx.opset >= 13 else 1))
    labels = ctx.labels(seq)
    if ctx.axes(node, [axis], n)[0] != n - 1 or labels[-1] != "F":
        raise ctx.unsupported(node, f"{node.op_type} over axis {axis} of a rank-{n} tensor; "
                                    f"only the last (feature) axis is supported")
    ctx.feature_axis(node, seq)
    name = "log_softmax" if node.op_type == "LogSoftmax" else "softmax"
    return [apply_activation(ctx, node, seq, edgernn.Activation(name))]


OPS = {
    "Relu": _elementwise("relu"),
    "Tanh": _elementwise("tanh"),
    "Sigmoid": _elementwise("sigmoid"),
    "LeakyRelu": _elementwise("leaky_relu", ("alpha",)),
    "Elu": _elementwise("elu", ("alpha",)),
    "HardSigmoid": _elementwise("hard_sigmoid", ("alpha", "beta")),
    "Softsign": _elementwise("softsign"),
    "Softplus": _elementwise("softplus"),
    "ThresholdedRelu": _elementwise("thresholded_relu", ("alpha",)),
    "Softmax": convert_softmax,
    "LogSoftmax": convert_softmax,
}
