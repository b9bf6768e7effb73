"""ONNX ``Add``, ``Sub``, ``Mul`` and ``Div`` of data.

Two data tensors with the same time and batch axes and equal feature sizes:
:func:`edgernn.add`/``sub``/``mul`` (a residual connection, a gain applied to
a spectrum). Data and a constant that broadcasts along the time and batch axes
(a scalar, or one value per feature): the op with that constant; ``c - x`` is
``x * -1 + c``, ``x / c`` is ``x * (1 / c)`` (within an ulp of the division)
and ``c / x`` is ``c * reciprocal(x)``. Data of one value per step (a
``ReduceMean`` kept as a feature axis of size 1) broadcasts over the other's
features. A constant op right after a Gemm/MatMul folds into its weights
when the model is built (:mod:`converters.onnx.fold`). ``x * x`` may also be
summed into an L2 norm, and the data may be divided by its own norm
(:mod:`converters.onnx.norms`), or by other data (:class:`edgernn.Div`).
"""

from __future__ import annotations

import numpy as np

import edgernn

from .norms import divide_by_norm
from .values import Const, Norm, Seq, StateIn, StateOut

_OPS = {"Add": edgernn.Add, "Sub": edgernn.Sub, "Mul": edgernn.Mul, "Div": edgernn.Div}


def _data(v) -> bool:
    return isinstance(v, (Seq, StateOut, Norm)) or (isinstance(v, StateIn) and v.generic)


def constant_for(ctx, node, seq: Seq, c) -> np.ndarray:
    """``c`` as an edgernn constant for ``seq``: float32 of shape ``()`` or
    ``[features]``; refuses constants that vary along another axis or would add
    axes to the data."""
    c = np.asarray(c)
    if c.dtype.kind not in "fiub":
        raise ctx.unsupported(node, f"a constant of dtype {c.dtype}")
    k = ctx.feature_axis(node, seq)
    n = len(seq.axes)
    if c.ndim > n:
        raise ctx.unsupported(node, f"a constant of shape {list(c.shape)} that broadcasts "
                                    f"the rank-{n} data to more axes")
    labels = ctx.labels(seq)
    step_axes = (k, labels.index("L")) if "L" in labels else (k,)
    for j, d in enumerate(c.shape):
        ax = n - c.ndim + j
        if d != 1 and (ax not in step_axes or d != seq.sizes[ax]):
            raise ctx.unsupported(node, f"a constant of shape {list(c.shape)} that varies "
                                        f"along axis {ax} ({ctx.label(seq.axes[ax])!r}) of "
                                        f"data with sizes {list(seq.sizes)}; only a scalar or "
                                        f"one value per feature")
    if len(step_axes) == 2 and c.size > 1:  # one value per channel and/or position
        from .pointwise import step_constant

        return step_constant(ctx, node, seq, c, "constant")
    c = c.astype(np.float32).reshape(-1)
    return c.reshape(()) if c.size == 1 else c


def convert_binary(ctx, node, ins):
    """Add / Sub / Mul / Div of data with data or with a constant."""
    ctx.check_attrs(node, ())
    a, b = ins
    op = node.op_type
    if op == "Div" and isinstance(b, Norm) and b.seq == a and not b.squared:
        return divide_by_norm(ctx, node, ins)   # x / ||x||: l2_normalize (else: data)
    zero = [isinstance(v, Const) and not np.any(v.value) for v in (a, b)]
    if op in ("Add", "Sub") and zero[1] or op == "Add" and zero[0]:
        keep = a if zero[1] else b          # + 0: nothing (Silero's stateN + 0 * sr)
        if not isinstance(keep, Const) and np.asarray((b if zero[1] else a).value).ndim == 0:
            return [keep]
    for v in (a, b):
        if not (_data(v) or isinstance(v, Const)):
            raise ctx.unsupported(node, f"{op} of {type(a).__name__} and {type(b).__name__} "
                                        f"values; only data with data or with a constant")
    if _data(a) and _data(b):
        sa, sb = ctx.as_seq(node, a), ctx.as_seq(node, b)
        sizes = list(ctx.match(node, [sa, sb]))
        for s in (sa, sb):
            k = ctx.feature_axis(node, s)
        t = ctx.apply(node, _OPS[op](), sa.tensor, sb.tensor)  # one value per step broadcasts
        sizes[k] = t.size // ctx.inner_length(sa if sa.tensor.size == t.size else sb)
        out = (sa if sa.tensor.size == t.size else sb).with_tensor(t, sizes)
        if op == "Mul" and sa == sb:
            out = Seq(t, sa.axes, sa.sizes, last=sa.last, square_of=sa)
        return [out]
    if isinstance(a, Const):
        seq = ctx.as_seq(node, b)
        c = constant_for(ctx, node, seq, a.value)
        if op == "Div":  # c / x
            inv = ctx.apply(node, edgernn.Unary("reciprocal"), seq.tensor)
            return [seq.with_tensor(ctx.apply(node, edgernn.Mul(c), inv))]
        if op == "Sub":  # c - x
            neg = ctx.apply(node, edgernn.Mul(np.float32(-1)), seq.tensor)
            return [seq.with_tensor(ctx.apply(node, edgernn.Add(c), neg))]
        return [seq.with_tensor(ctx.apply(node, _OPS[op](c), seq.tensor))]
    seq = ctx.as_seq(node, a)
    c = constant_for(ctx, node, seq, b.value)
    if op == "Div":
        if not np.all(c):
            raise ctx.bad(node, "division by zero")
        return [seq.with_tensor(ctx.apply(node, edgernn.Mul(np.float32(1) / c), seq.tensor))]
    return [seq.with_tensor(ctx.apply(node, _OPS[op](c), seq.tensor))]


OPS = {"Add": convert_binary, "Sub": convert_binary, "Mul": convert_binary,
       "Div": convert_binary}

__all__ = ["OPS", "constant_for"]
