"""Merge layers of functional models: ``Concatenate``, ``Add``, ``Subtract``,
``Multiply``, ``Average`` (and Keras 3's ``keras.ops`` of the same names, which a
functional model stores for ``x + y``, ``x * 2.0``, ``ops.concatenate``).

Each returns the edgernn ops of one call (see :mod:`converters.keras.functional`):
the first takes all the call's tensors (a binary op is applied left to right
over more than two), the others the previous result. Tensors must have equal
sizes (Keras' broadcasting of a size-1 axis is not supported); a number
argument becomes a scalar constant.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from .common import TensorInfo


def _split_args(layer, ctx):
    args = ctx.call or []
    tensors = [a for a in args if isinstance(a, TensorInfo)]
    consts = [a for a in args if not isinstance(a, TensorInfo)]
    for c in consts:
        if not isinstance(c, float):
            raise UnsupportedOpError(f"layer {layer.name!r} ({layer.class_name}): an argument "
                                     f"{str(c)[:80]!r} that is neither a tensor nor a number")
    if not tensors:
        raise UnsupportedOpError(f"layer {layer.name!r} ({layer.class_name}) takes no tensor")
    return args, tensors, consts


def convert_concatenate(layer, ctx):
    """``Concatenate(axis=-1)`` -> :class:`edgernn.Concat` (features only)."""
    args, tensors, consts = _split_args(layer, ctx)
    rank = tensors[0].rank
    axis = layer.config.get("axis", -1)
    if consts or axis not in (-1, rank - 1):
        raise UnsupportedOpError(f"layer {layer.name!r} ({layer.class_name}): "
                                 + ("a constant among the inputs" if consts else
                                    f"axis {axis!r} of rank-{rank} tensors")
                                 + "; only tensors along the feature axis (-1)")
    return [edgernn.Concat()]


def _elementwise(cls, symbol):
    def convert(layer, ctx):
        args, tensors, consts = _split_args(layer, ctx)
        if not consts:
            if len({t.size for t in tensors}) > 1:
                raise UnsupportedOpError(f"layer {layer.name!r} ({layer.class_name}) of "
                                         f"tensors of sizes {[t.size for t in tensors]}; "
                                         f"broadcasting is not supported, only equal sizes")
            if len(tensors) < 2:
                raise UnsupportedOpError(f"layer {layer.name!r} ({layer.class_name}) takes "
                                         f"{len(tensors)} tensor(s); expected 2 or more")
            if cls is edgernn.Sub and len(tensors) != 2:
                raise UnsupportedOpError(f"layer {layer.name!r} (Subtract) takes "
                                         f"{len(tensors)} tensors; expected 2")
            return [cls()]
        if len(args) != 2:
            raise UnsupportedOpError(f"layer {layer.name!r} ({layer.class_name}): {len(args)} "
                                     f"arguments with a constant; expected a tensor and a "
                                     f"number")
        c = np.float32(consts[0])
        if cls is edgernn.Sub and not isinstance(args[0], TensorInfo):  # c - x
            return [edgernn.Mul(np.float32(-1)), edgernn.Add(c)]
        return [cls(c)]
    convert.__doc__ = f"``a {symbol} b`` of tensors, or of a tensor and a number."
    return convert


convert_add = _elementwise(edgernn.Add, "+")
convert_subtract = _elementwise(edgernn.Sub, "-")
convert_multiply = _elementwise(edgernn.Mul, "*")


def convert_average(layer, ctx):
    """``Average`` of n tensors: their sum times 1/n."""
    args, tensors, consts = _split_args(layer, ctx)
    if consts or len(tensors) < 2:
        raise UnsupportedOpError(f"layer {layer.name!r} (Average): expected 2 or more "
                                 f"tensors and no constant")
    return [edgernn.Add(), edgernn.Mul(np.float32(1 / len(tensors)))]


#: Keras merge layers (and ``keras.ops`` of the same names) -> converter
MERGE = {"Concatenate": convert_concatenate, "Add": convert_add,
         "Subtract": convert_subtract, "Multiply": convert_multiply,
         "Average": convert_average}

__all__ = ["MERGE"]
