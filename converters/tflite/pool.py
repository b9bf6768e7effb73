"""AVERAGE_POOL_2D and MAX_POOL_2D over one axis within a step -> :class:`edgernn.Pool1d`.

As a Keras ``AveragePooling1D``/``MaxPooling1D`` lays them out: ``[1, 1, L, C]`` (or
``[1, L, 1, C]``) with a window of 1 on the other spatial axis. SAME padding: the
window's positions outside the input are skipped (LiteRT's average divides by the
values it covered), VALID: none. The values must lie channels-first (as after a
convolution) or have one channel. In a sequence model pooling over time would
change the step rate: refused there.
"""

from __future__ import annotations

import edgernn
from edgernn.errors import UnsupportedOpError

from .activations import fused_layers
from .conv import _axis, _padding


def _walk(w, op):
    x = w.data(op, 0)
    kh, kw = op.opt("FilterHeight", 1), op.opt("FilterWidth", 1)
    a = _axis(op, x, (kh, kw))
    k, stride = (kw, op.opt("StrideW", 1)) if a == 2 else (kh, op.opt("StrideH", 1))
    length, channels = x.shape[a], x.shape[3]
    pad = _padding(op, length, k, stride, 1)
    pool = edgernn.Pool1d("avg" if op.name == "AVERAGE_POOL_2D" else "max", channels, length,
                          k, stride, 1, pad, count_include_pad=False)
    t = w.tensor(op, x.reshape(length, channels).T)
    y = w.apply(op, [pool, *fused_layers(op)], t)
    out = [1, 1, 1, channels]
    out[a] = pool.out_length
    return [w.wrap_as(y, (channels, pool.out_length), (1, 0)).reshape(out)]


def flat_pool(sg, op):
    raise UnsupportedOpError(f"{op}: pools {list(sg.tensors[op.inputs[0]].shape)} in a "
                             f"sequence model: over time it changes the step rate; supported: "
                             f"pooling within a step (a model called once per step, "
                             f"input_shapes= or states=)")


WALK = {"AVERAGE_POOL_2D": _walk, "MAX_POOL_2D": _walk}
FLAT = {"AVERAGE_POOL_2D": flat_pool, "MAX_POOL_2D": flat_pool}

__all__ = ["WALK", "FLAT"]
