"""ONNX ``BatchNormalization``, ``LayerNormalization``, ``InstanceNormalization`` and
``GroupNormalization`` on data (inference: running statistics only).

``BatchNormalization`` is a per-channel affine ``y = x * a + b`` with ``a = scale /
sqrt(var + eps)`` and ``b = B - mean * a`` (channels: axis 1). Right after a
Conv, Gemm or MatMul whose output nothing else reads it folds into that op's
weights (``W * a``, ``bias * a + b``), as inference engines do; otherwise it is
a Mul and an Add by one constant per channel, spread over the step's
``(channels, length)`` values.

``LayerNormalization`` (opset 17) over the trailing axes of a step's values
is :class:`edgernn.LayerNorm` with the product of their sizes.
``InstanceNormalization`` of ``[N, C, L]`` normalises each channel over its
length (``LayerNorm(L)`` on the rows of the ``(C, L)`` step), then scales and
shifts per channel; ``GroupNormalization`` each group of ``C / G`` channels
(``LayerNorm(C / G * L)``), then per channel (opset 21) or per group (18).
Statistics over the time axis cannot be computed one step at a time: refused.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import edgernn

from .pointwise import step_constant
from .values import Seq

_FOLDS = (edgernn.Dense, edgernn.Conv1d, edgernn.CausalConv1d)


def _channels(ctx, node, seq: Seq) -> int:
    """The channel axis (1) of ``seq``: the features of a step (their count)."""
    labels = ctx.labels(seq)
    ctx.feature_axis(node, seq)
    if len(labels) < 2 or labels[1] != "F":
        raise ctx.unsupported(node, f"{node.op_type} of data with axes {list(labels)}; its "
                                    f"channel axis (1) must be the features of a step "
                                    f"([N, C], [N, C, L] or [N, C, T])")
    return int(seq.sizes[1])


def _vector(ctx, node, i, what, n) -> np.ndarray:
    v = np.asarray(ctx.const(node, i, what), np.float64).reshape(-1)
    if v.size not in (1, n):
        raise ctx.bad(node, f"{what} has {v.size} values; expected 1 or {n}")
    return np.broadcast_to(v, (n,))


def _no_extra_outputs(ctx, node, what: str) -> None:
    used = [o for o in node.output[1:] if o and ctx.uses.get(o)]
    if used:
        raise ctx.unsupported(node, f"its output {used[0]!r} ({what}) is used; only the "
                                    f"normalised data")


def _affine(ctx, node, seq: Seq, t, a, b) -> Seq:
    """``t * a + b`` with ``a``, ``b`` one value per channel of ``seq``."""
    per_channel = (-1,) + (1,) * (len(seq.axes) - 2)   # along axis 1
    t = ctx.apply(node, edgernn.Mul(step_constant(ctx, node, seq, a.reshape(per_channel),
                                                  "scale")), t)
    t = ctx.apply(node, edgernn.Add(step_constant(ctx, node, seq, b.reshape(per_channel),
                                                  "bias")), t)
    return seq.with_tensor(t)


def _fold(ctx, node, seq: Seq, a, b):
    """The op producing ``seq`` with ``* a + b`` in its weights, or None."""
    t = seq.tensor
    op = t.op
    if not isinstance(op, _FOLDS) or getattr(op, "quant", None) is not None or \
            op.activation.name != "linear" or ctx.uses.get(node.input[0], 0) != 1 or \
            id(t) in ctx.no_fold:
        return None
    if isinstance(op, edgernn.Dense) and "L" in ctx.labels(seq):
        return None
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    w = op.weight * (a32.reshape((-1,) + (1,) * (op.weight.ndim - 1)))
    bias = b32 if op.bias is None else op.bias * a32 + b32
    return ctx.apply(node, replace(op, weight=w, bias=bias), *t.inputs)


def convert_batch_norm(ctx, node, ins):
    """BatchNormalization(X, scale, B, mean, var), inference mode."""
    at = ctx.check_attrs(node, ("epsilon", "momentum", "training_mode", "spatial",
                                "is_test", "consumed_inputs"))
    if int(at.get("training_mode", 0)):
        raise ctx.unsupported(node, "training_mode=1; only inference (running statistics)")
    if int(at.get("spatial", 1)) != 1:
        raise ctx.unsupported(node, "spatial=0; only spatial=1 (one statistic per channel)")
    _no_extra_outputs(ctx, node, "running statistics")
    seq = ctx.as_seq(node, ins[0])
    c = _channels(ctx, node, seq)
    scale, bias, mean, var = (_vector(ctx, node, i, w, c) for i, w in
                              enumerate(("scale", "B", "input_mean", "input_var"), 1))
    eps = float(at.get("epsilon", 1e-5))
    a = scale / np.sqrt(var + eps)
    b = bias - mean * a
    folded = _fold(ctx, node, seq, a, b)
    if folded is not None:
        return [seq.with_tensor(folded)]
    return [_affine(ctx, node, seq, seq.tensor, a, b)]


def _trailing(ctx, node, seq: Seq, first: int) -> int:
    """The number of step values in axes ``first..`` of ``seq``; refuses axes of time or
    batch among them (statistics over time do not stream)."""
    labels = ctx.labels(seq)
    count = 1
    for ax in range(first, len(labels)):
        if labels[ax] in ("F", "L"):
            count *= int(seq.sizes[ax])
        elif seq.sizes[ax] != 1:
            raise ctx.unsupported(node, f"{node.op_type} over axis {ax} ({labels[ax]!r}) of "
                                        f"data with axes {list(labels)}; only over the values "
                                        f"of one step (statistics over time do not stream)")
    return count


def convert_layer_norm(ctx, node, ins):
    """LayerNormalization(X, Scale[, B]) over axes ``axis..`` -> LayerNorm."""
    at = ctx.check_attrs(node, ("axis", "epsilon", "stash_type"))
    _no_extra_outputs(ctx, node, "Mean/InvStdDev")
    seq = ctx.as_seq(node, ins[0])
    ctx.feature_axis(node, seq)
    n = len(seq.axes)
    first = ctx.axes(node, [int(at.get("axis", -1))], n)[0]
    labels = ctx.labels(seq)
    if labels[first] not in ("F", "L"):
        raise ctx.unsupported(node, f"LayerNormalization from axis {first} of data with axes "
                                    f"{list(labels)}; only over the trailing values of a step")
    size = _trailing(ctx, node, seq, first)
    shape = [int(s) for s in seq.sizes[first:]]

    def param(i, what):
        v = ctx.const(node, i, what, optional=True)
        if v is None:
            return None
        try:
            return np.broadcast_to(np.asarray(v, np.float32), shape).reshape(-1)
        except ValueError:
            raise ctx.bad(node, f"{what} of shape {list(np.shape(v))} does not broadcast to "
                                f"the normalised shape {shape}") from None
    op = edgernn.LayerNorm(size, param(1, "Scale"), param(2, "B"),
                           float(at.get("epsilon", 1e-5)))
    return [seq.with_tensor(ctx.apply(node, op, seq.tensor))]


def _grouped(ctx, node, seq: Seq, groups: int, eps: float, scale, bias) -> Seq:
    c = _channels(ctx, node, seq)
    rows = c // groups
    size = rows * _trailing(ctx, node, seq, 2)
    t = ctx.apply(node, edgernn.LayerNorm(size, None, None, eps), seq.tensor)
    return _affine(ctx, node, seq, t, scale, bias)


def convert_instance_norm(ctx, node, ins):
    """InstanceNormalization(X[N, C, L], scale[C], B[C])."""
    at = ctx.check_attrs(node, ("epsilon",))
    seq = ctx.as_seq(node, ins[0])
    c = _channels(ctx, node, seq)
    return [_grouped(ctx, node, seq, c, float(at.get("epsilon", 1e-5)),
                     _vector(ctx, node, 1, "scale", c), _vector(ctx, node, 2, "B", c))]


def convert_group_norm(ctx, node, ins):
    """GroupNormalization(X[N, C, L], scale, bias), num_groups G: scale/bias per group
    (opset 18) or per channel (opset 21)."""
    at = ctx.check_attrs(node, ("epsilon", "num_groups", "stash_type"))
    seq = ctx.as_seq(node, ins[0])
    c = _channels(ctx, node, seq)
    if "num_groups" not in at:
        raise ctx.bad(node, "the attribute num_groups is missing")
    g = int(at["num_groups"])
    if g < 1 or c % g:
        raise ctx.bad(node, f"num_groups={g} does not divide the {c} channels")
    per = c if ctx.opset >= 21 else g
    scale, bias = (_vector(ctx, node, i, w, per) for i, w in ((1, "scale"), (2, "bias")))
    if per == g:
        scale, bias = np.repeat(scale, c // g), np.repeat(bias, c // g)
    return [_grouped(ctx, node, seq, g, float(at.get("epsilon", 1e-5)), scale, bias)]


OPS = {"BatchNormalization": convert_batch_norm, "LayerNormalization": convert_layer_norm,
       "InstanceNormalization": convert_instance_norm,
       "GroupNormalization": convert_group_norm}

__all__ = ["OPS"]
