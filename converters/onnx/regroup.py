"""``Reshape`` and ``Flatten`` that regroup the values of one step: ``[..., C, L]`` <->
``[..., G, C L / G]`` <-> ``[..., C L]`` <-> ``[..., F]`` -> ``[..., A, B]``.

A step's values are row-major, so these only relabel them: the channels and length
(axes ``"F"``, ``"L"``) of :class:`~converters.onnx.values.Seq` change, the data
does not. torch exports ``GroupNorm`` as ``Reshape [N, G, -1] -> InstanceNormalization
-> Reshape [N, C, L] -> Mul -> Add``, and ``flatten(1)`` of a convolution's output as
``Flatten`` or ``Reshape [N, -1]``, a 2-D convolution's ``[N, T, C, F]`` as
``Reshape [N, T, C F]``. The leading axes must stay as they are (``0``, their
size, or ``-1`` for the one runtime axis). Every other Reshape/Flatten goes to
:mod:`converters.onnx.shape_ops`.
"""

from __future__ import annotations

import math

from .shape_ops import OPS as _SHAPE_OPS
from .shape_ops import _reshape_seq, probed_target
from .values import Seq, ShapeOf


def _step(ctx, seq) -> tuple | None:
    """``(leading sizes, step size)`` of a Seq whose trailing axes are a step's
    ``(channels, length)`` or features (``[..., C, L]``, ``[..., F]``), else None."""
    if not isinstance(seq, Seq) or seq.tokens or seq.last or len(seq.axes) < 2:
        return None
    labels = ctx.labels(seq)
    n = 2 if labels[-2:] == ("F", "L") else 1 if labels[-1] == "F" else 0
    if not n or "F" in labels[:-n] or "L" in labels[:-n] or None in seq.sizes[-n:]:
        return None
    return tuple(seq.sizes[:-n]), math.prod(seq.sizes[-n:])


def _regrouped(seq, lead, rest) -> Seq:
    """``seq`` with its step's values seen as ``rest`` (one or two sizes)."""
    k = len(lead)
    axes = seq.axes[:k] + ("F",) + (("L",) if len(rest) == 2 else ())
    return seq.with_axes(axes, seq.sizes[:k] + tuple(rest))


def _target(ctx, node, lead, size, target) -> list | None:
    """``target``'s sizes after the leading axes, when it keeps them (their size, 0, or
    the one -1) and regroups the step's ``size`` values, else None."""
    k = len(lead)
    if len(target) not in (k + 1, k + 2) or target.count(-1) > 1:
        return None
    for d, t in zip(lead, target[:k], strict=True):
        if t not in (0, -1, d):
            return None
    rest = list(target[k:])
    if 0 in rest:
        return None
    if -1 in rest:
        known = math.prod(d for d in rest if d != -1)
        if known < 1 or size % known:
            return None
        rest[rest.index(-1)] = size // known
    return rest if math.prod(rest) == size and min(rest) >= 1 else None


def convert_reshape(ctx, node, ins):
    """Reshape regrouping a step's values, or (else) :mod:`converters.onnx.shape_ops`'s.
    ``allowzero=1`` (the dynamo exporter's) is the same when the target has no 0."""
    v, step = ins[0], _step(ctx, ins[0])
    at = ctx.check_attrs(node, ("allowzero", "shape"))
    shape_in = ctx.value(node.input[1]) if len(node.input) > 1 else None
    if not isinstance(v, Seq) or not (step is not None or int(at.get("allowzero", 0))):
        return _SHAPE_OPS["Reshape"](ctx, node, ins)
    if isinstance(shape_in, ShapeOf):
        target = probed_target(ctx, node, shape_in)
    else:
        target = ctx.ints(node, 1, "shape", at, "shape")
    if int(at.get("allowzero", 0)) and 0 in target:
        raise ctx.unsupported(node, f"allowzero=1 with a 0 in the target {target} (an empty "
                                    f"tensor)")
    rest = None if step is None else _target(ctx, node, *step, target)
    if rest is None or 1 in rest:   # unit axes: shape_ops labels them
        return _reshape_seq(ctx, node, v, target)
    if len(rest) == 1 and "L" not in ctx.labels(v):
        return [v]   # [..., F] -> [..., F]: nothing
    return [_regrouped(v, step[0], rest)]


def convert_flatten(ctx, node, ins):
    v, step = ins[0], _step(ctx, ins[0])
    at = ctx.attrs(node)
    if step is not None and int(at.get("axis", 1)) == len(step[0]) and "L" in ctx.labels(v):
        ctx.check_attrs(node, ("axis",))
        return [_regrouped(v, step[0], [step[1]])]
    return _SHAPE_OPS["Flatten"](ctx, node, ins)


OPS = {"Reshape": convert_reshape, "Flatten": convert_flatten}

__all__ = ["OPS"]
