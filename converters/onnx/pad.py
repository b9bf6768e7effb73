"""ONNX ``Pad`` of data: padding of the feature axis (``constant``, ``reflect``, ``edge``;
negative pads crop) is :class:`edgernn.Pad`; all-zero pads (Keras' ``causal`` padding of a kernel-1
convolution, in DTLN) are nothing; zero frames before the time axis are what a
causal convolution over time sees (:class:`~converters.onnx.values.TimePadded`,
for ``Conv``). Padding of any other axis is refused.
"""

from __future__ import annotations

import numpy as np

import edgernn

from .values import TimePadded


def convert_pad(ctx, node, ins):
    at = ctx.check_attrs(node, ("mode", "pads", "value"))
    seq = ctx.as_seq(node, ins[0])
    n = len(seq.axes)
    if ctx.opset >= 11:
        pads = [int(p) for p in np.asarray(ctx.const(node, 1, "pads")).reshape(-1)]
        value = ctx.const(node, 2, "constant_value", optional=True)
        value = 0.0 if value is None else float(np.asarray(value).reshape(-1)[0])
        axes = ctx.const(node, 3, "axes", optional=True)
        axes = list(range(n)) if axes is None else ctx.axes(
            node, [int(a) for a in np.asarray(axes).reshape(-1)], n, "axes")
    else:
        pads, value, axes = [int(p) for p in at.get("pads", [])], float(at.get("value", 0.0)), \
            list(range(n))
    if len(pads) != 2 * len(axes):
        raise ctx.bad(node, f"pads {pads} do not give a begin and an end for each of the "
                            f"{len(axes)} axes")
    mode = at.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if not any(pads):
        return [seq]
    begin, end = dict(zip(axes, pads[:len(axes)], strict=True)), \
        dict(zip(axes, pads[len(axes):], strict=True))
    labels = ctx.labels(seq)
    padded = [a for a in axes if begin[a] or end[a]]
    if len(padded) == 1 and labels[padded[0]].startswith("?") and seq.sizes[padded[0]] is None:
        ctx.bind(node, seq.axes[padded[0]], "T")  # a graph input's runtime axis padded at
        labels = ctx.labels(seq)                  # its start: time (a causal convolution)
    if len(padded) == 1 and labels[padded[0]] == "T" and begin[padded[0]] > 0 and \
            not end[padded[0]] and mode == "constant" and value == 0.0:
        return [TimePadded(seq, begin[padded[0]], ctx.describe(node))]  # causal padding
    k = ctx.plain(node, seq)
    other = [a for a in axes if a != k and (begin[a] or end[a])]
    if other:
        raise ctx.unsupported(node, f"Pad {pads} of data with axes {list(ctx.labels(seq))}; "
                                    f"only padding (or cropping) of the features (axis {k})")
    if begin.get(k, 0) + seq.tensor.size + end.get(k, 0) < 1:
        raise ctx.bad(node, f"Pad {pads} removes all {seq.tensor.size} features")
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.unsupported(node, f"Pad mode {mode!r}; supported: constant, reflect, edge")
    op = edgernn.Pad(seq.tensor.size, begin.get(k, 0), end.get(k, 0), mode, value)
    t = ctx.apply(node, op, seq.tensor)
    sizes = list(seq.sizes)
    sizes[k] = t.size
    return [seq.with_tensor(t, sizes)]


OPS = {"Pad": convert_pad}
