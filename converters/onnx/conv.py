"""ONNX ``Conv`` on data.

A 1-D convolution whose window covers one position of a length-1 axis (kernel 1,
no padding, DTLN's ``conv1d`` on ``[1, C, 1]`` blocks) is a matrix product over
the channels: :class:`edgernn.Dense` with ``W[:, :, 0]`` (no bias: none). Other
convolutions are refused, naming what they need.
"""

from __future__ import annotations

import numpy as np

import edgernn


def convert_conv(ctx, node, ins):
    at = ctx.check_attrs(node, ("auto_pad", "dilations", "group", "kernel_shape", "pads",
                                "strides"))
    seq = ctx.as_seq(node, ins[0])
    w = np.asarray(ctx.const(node, 1, "W"), np.float32)
    b = ctx.const(node, 2, "B", optional=True)
    if w.ndim != 3:
        raise ctx.unsupported(node, f"a {w.ndim - 2}-D convolution (W of shape "
                                    f"{list(w.shape)}); only 1-D")
    labels, sizes = ctx.labels(seq), seq.sizes
    if len(labels) != 3:
        raise ctx.bad(node, f"Conv of rank-{len(labels)} data; expected [N, C, L]")
    pads = [int(p) for p in at.get("pads", [0, 0])]
    auto = at.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    group = int(at.get("group", 1))
    k = w.shape[2]
    if labels[1] != "F" or sizes[2] != 1:
        raise ctx.unsupported(node, f"Conv over axis 2 ({labels[2]!r}, size {sizes[2]}) of "
                                    f"data with axes {list(labels)}; only a kernel-1 "
                                    f"convolution over a length-1 axis (a product over the "
                                    f"channels)")
    if k != 1 or any(pads) or auto not in ("NOTSET", "VALID") or group != 1:
        raise ctx.unsupported(node, f"Conv with kernel {k}, pads {pads}, auto_pad {auto!r}, "
                                    f"group {group} on a length-1 axis; only kernel 1, no "
                                    f"padding, one group")
    if w.shape[1] != sizes[1]:
        raise ctx.bad(node, f"W has {w.shape[1]} input channels, the data {sizes[1]}")
    dense = edgernn.Dense(w[:, :, 0], None if b is None else np.asarray(b, np.float32))
    t = ctx.apply(node, dense, seq.tensor)
    return [seq.with_tensor(t, (sizes[0], w.shape[0], 1))]


OPS = {"Conv": convert_conv}
