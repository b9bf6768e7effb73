"""``Reshape`` and ``Flatten`` that regroup the values of one step: ``[N, C, L]`` <->
``[N, G, C L / G]`` <-> ``[N, C L]`` <-> ``[N, F]`` -> ``[N, A, B]``.

A step's values are row-major, so these only relabel them: the channels and length
(axes ``"F"``, ``"L"``) of :class:`~converters.onnx.values.Seq` change, the data
does not. torch exports ``GroupNorm`` as ``Reshape [N, G, -1] -> InstanceNormalization
-> Reshape [N, C, L] -> Mul -> Add``, and ``flatten(1)`` of a convolution's output as
``Flatten`` or ``Reshape [N, -1]``. The first axis must stay as it is (a batch of
one, or the runtime time axis for ``0``/``-1``). Every other Reshape/Flatten goes to
:mod:`converters.onnx.shape_ops`.
"""

from __future__ import annotations

import math

from .shape_ops import OPS as _SHAPE_OPS
from .shape_ops import _reshape_seq, probed_target
from .values import Seq, ShapeOf


def _step(ctx, seq) -> tuple | None:
    """``(first axis, step size)`` of a ``[N, C, L]`` / ``[N, F]`` Seq, else None."""
    if not isinstance(seq, Seq) or seq.tokens or seq.last:
        return None
    labels = ctx.labels(seq)
    if labels[1:] not in (("F", "L"), ("F",)) or None in seq.sizes[1:]:
        return None
    return seq.sizes[0], math.prod(seq.sizes[1:])


def _regrouped(seq, rest) -> Seq:
    """``seq`` with its step's values seen as ``rest`` (one or two sizes)."""
    axes = (seq.axes[0], "F") + (("L",) if len(rest) == 2 else ())
    return seq.with_axes(axes, (seq.sizes[0],) + tuple(rest))


def _target(ctx, node, first, size, target) -> list | None:
    """``target``'s sizes after the first axis, when it keeps that axis and the step's
    ``size`` values (0 copies, one -1 inferred), else None."""
    if len(target) not in (2, 3) or target[0] not in (0, -1, first) or \
            (target[0] == -1 and -1 in target[1:]):
        return None
    rest = list(target[1:])
    if 0 in rest:
        return None
    if -1 in rest:
        known = math.prod(d for d in rest if d != -1)
        if rest.count(-1) > 1 or known < 1 or size % known:
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
        return [v]   # [N, F] -> [N, F]: nothing
    return [_regrouped(v, rest)]


def convert_flatten(ctx, node, ins):
    v, step = ins[0], _step(ctx, ins[0])
    at = ctx.attrs(node)
    if step is not None and int(at.get("axis", 1)) == 1 and "L" in ctx.labels(v):
        ctx.check_attrs(node, ("axis",))
        return [_regrouped(v, [step[1]])]
    return _SHAPE_OPS["Flatten"](ctx, node, ins)


OPS = {"Reshape": convert_reshape, "Flatten": convert_flatten}

__all__ = ["OPS"]
