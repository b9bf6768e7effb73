"""Elementwise ops of two operands: ADD, SUB, MUL, DIV, SQUARED_DIFFERENCE, MAXIMUM,
MINIMUM and PRELU, of data with data (equal sizes, or one value broadcasting) or
with a constant (one value, or one per element after broadcasting).

:func:`combine` builds the edgernn ops for two operands already laid out alike;
``FLAT`` serves a sequence model's per-step feature vectors, ``WALK`` the shaped
walk (a constant is laid out like the data it meets, so a channels-first value
stays channels-first). One data value meeting a constant of n values is
broadcast by a Dense of ones; in the walk, data broadcast over data (a per-frame
gain over the channels) by a Dense with one 1 per row: exact copies of finite
values (a non-finite value would spread as nan, 0 * inf).
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from .activations import fused_layers
from .statewalk import _node

_CLS = {"ADD": edgernn.Add, "SUB": edgernn.Sub, "MUL": edgernn.Mul, "DIV": edgernn.Div}


def combine(op, a, b):
    """``op`` on ``a`` and ``b``: edgernn Tensors or float32 constants (scalar or one
    per element of the other operand), at least one a Tensor; fused activation
    applied."""
    name = op.name
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        raise UnsupportedOpError(f"{op}: of two constants")
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        if a.size != b.size and 1 not in (a.size, b.size):
            raise UnsupportedOpError(f"{op}: data of {a.size} and {b.size} values; "
                                     f"supported: equal sizes or one value")
        if name in _CLS:
            y = _node(op, _CLS[name](), a, b)
        elif name == "SQUARED_DIFFERENCE":
            d = _node(op, edgernn.Sub(), a, b)
            y = _node(op, edgernn.Mul(), d, d)
        else:
            raise UnsupportedOpError(f"{op}: of two data tensors; supported: data with one "
                                     f"constant" + (" (alpha)" if name == "PRELU" else " value"))
        return _fused(op, y)
    first = isinstance(a, np.ndarray)       # the constant is operand 0
    x, c = (b, a) if first else (a, b)
    c = np.asarray(c, np.float32)
    if c.ndim and c.size == 1:
        c = c.reshape(())
    if c.ndim and x.size == 1 and c.size > 1:  # one value meets n: broadcast it exactly
        x = _node(op, edgernn.Dense(np.ones((c.size, 1), np.float32)), x)
    if c.ndim and c.size != x.size:
        raise UnsupportedOpError(f"{op}: a constant of {c.size} values with data of {x.size}")
    if name == "ADD" or name == "MUL":
        y = _node(op, _CLS[name](c), x)
    elif name == "SUB" and not first:
        y = _node(op, edgernn.Sub(c), x)
    elif name == "SUB":                       # c - x, exactly
        y = _node(op, edgernn.Add(c), _node(op, edgernn.Unary("neg"), x))
    elif name == "DIV" and not first:
        y = _node(op, edgernn.Div(c), x)
    elif name == "DIV":                       # c / x (one rounding more than LiteRT)
        y = _node(op, edgernn.Mul(c), _node(op, edgernn.Unary("reciprocal"), x))
    elif name == "SQUARED_DIFFERENCE":
        d = _node(op, edgernn.Sub(c), x)
        y = _node(op, edgernn.Mul(), d, d)
    elif name in ("MAXIMUM", "MINIMUM"):
        if c.ndim:
            raise UnsupportedOpError(f"{op}: with {c.size} different constants; supported: "
                                     f"one constant value")
        y = _node(op, edgernn.Unary("max" if name == "MAXIMUM" else "min", float(c)), x)
    elif name == "PRELU" and not first:       # max(x, 0) + alpha * min(x, 0)
        neg = _node(op, edgernn.Mul(c), _node(op, edgernn.Unary("min", 0.0), x))
        y = _node(op, edgernn.Add(), _node(op, edgernn.Unary("max", 0.0), x), neg)
    else:
        raise UnsupportedOpError(f"{op}: alpha is data; supported: a constant alpha")
    return _fused(op, y)


def _fused(op, y):
    for layer in fused_layers(op):
        y = _node(op, layer, y)
    return y


def flat_binary(sg, op, args):
    """A sequence model's per-step operands (Tensor, or a constant of the file's shape):
    a constant must not vary over time or batch (every axis but the last is 1)."""
    if len(args) != 2:
        raise UnsupportedOpError(f"{op}: expected two operands, got {len(args)}")
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            if any(d != 1 for d in a.shape[:-1]):
                raise UnsupportedOpError(f"{op}: a constant of shape {list(a.shape)} varies "
                                         f"over time or batch; supported: a scalar or one "
                                         f"value per feature")
            a = a.astype(np.float32).reshape(-1)
        out.append(a)
    return combine(op, *out)


#: most values a broadcast copy (a Dense of ones and zeros) may produce
MAX_SPREAD = 4096


def _spread(w, op, pa, pb, shape):
    """Data with data of another shape: the smaller is copied out to the larger's
    layout by a Dense whose rows each hold one 1 (exact for finite values)."""
    k = 0 if pa.shape == shape else 1 if pb.shape == shape else None
    if k is None or np.size(shape) > MAX_SPREAD:
        raise UnsupportedOpError(f"{op}: broadcasts data {list(pa.shape)} with data "
                                 f"{list(pb.shape)}; supported: one operand of the output's "
                                 f"shape, at most {MAX_SPREAD} values")
    big, small = (pa, pb) if k == 0 else (pb, pa)
    reg = w.region(big)
    t_big, offsets = reg if reg is not None else (w.tensor(op, big), np.arange(
        big.size).reshape(big.shape))
    t_small = w.tensor(op, small)
    sel = np.zeros((big.size, small.size), np.float32)
    where = np.broadcast_to(np.arange(small.size).reshape(small.shape), shape)
    sel[offsets.reshape(-1), where.reshape(-1)] = 1
    copy = _node(op, edgernn.Dense(sel), t_small)
    y = combine(op, *((t_big, copy) if k == 0 else (copy, t_big)))
    return w.source(y, (y.size,))[0] | offsets.astype(np.int64)


def _walk(w, op):
    shape = np.broadcast_shapes(*(np.shape(w.arg(op, k)) for k in range(2)))
    data = [k for k in range(2) if w.is_data(op, k)]
    if not data:
        raise UnsupportedOpError(f"{op}: of two constants")
    if len(data) == 2:
        pa, pb = w.data(op, 0), w.data(op, 1)
        if pb.size == 1 or pa.size == 1:
            k = 0 if pb.size == 1 else 1
            one = w.tensor(op, [pb, pa][k])
            return [w.elementwise(op, [pa, pb][k], [
                lambda x: combine(op, *((x, one) if k == 0 else (one, x)))])]
        if pa.shape != pb.shape:
            return [_spread(w, op, pa, pb, shape)]
        ra, rb = w.region(pa), w.region(pb)
        if ra is not None and rb is not None and np.array_equal(ra[1], rb[1]):
            y = combine(op, ra[0], rb[0])           # both in the same layout: keep it
            return [w.source(y, (y.size,))[0] | ra[1].astype(np.int64)]
        y = combine(op, w.tensor(op, pa), w.tensor(op, pb))
        return [w.wrap(op, y, shape)]
    k = data[0]
    x, c = w.data(op, k), np.asarray(w.arg(op, 1 - k), np.float32)

    def fn(laid):
        laid = np.asarray(laid, np.float32)
        return [lambda t: combine(op, *((t, laid) if k == 0 else (laid, t)))]

    if x.shape != shape:
        if x.size != 1:
            raise UnsupportedOpError(f"{op}: broadcasts data {list(x.shape)} over a constant "
                                     f"{list(c.shape)}; supported: data of the output's shape "
                                     f"or one value")
        cb = np.broadcast_to(c, shape).reshape(-1)
        return [w.wrap(op, fn(cb)[0](w.tensor(op, x)), shape)]
    return [w.elementwise(op, x, fn, const=np.broadcast_to(c, shape))]


NAMES = ("ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "PRELU")
FLAT = {n: flat_binary for n in NAMES}
WALK = {n: _walk for n in NAMES}

__all__ = ["FLAT", "WALK", "combine", "flat_binary"]
