"""ONNX ``Conv`` (1-D) on data within a step: ``[N, C, L]`` with ``N`` of size 1.

A kernel-1 convolution over a length-1 axis (DTLN's ``conv1d`` on ``[1, C, 1]``
blocks) is a matrix product over the channels: :class:`edgernn.Dense` with
``W[:, :, 0]``. Any other is :class:`edgernn.Conv1d` on the step's ``(C, L)``
values (Silero VAD's STFT, ``[1, 1, 640] -> [1, 258, 4]``, and its encoder): the
output's length axis is labelled ``"L"``, after the channels (``F``), so that the
step's values stay ``(C_out, L_out)`` row-major. Padding ``pads``/``auto_pad``.
"""

from __future__ import annotations

import numpy as np

import edgernn

from .values import Seq


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
    if len(labels) != 3 or sizes[0] not in (None, 1) and labels[0] not in ("B", "U"):
        raise ctx.bad(node, f"Conv of data with axes {list(labels)}; expected [N, C, L]")
    group = int(at.get("group", 1))
    stride = [int(v) for v in at.get("strides", [1])]
    dil = [int(v) for v in at.get("dilations", [1])]
    auto = at.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    k = w.shape[2]
    c_in, length = sizes[1], sizes[2]
    if labels[1:] == ("U", "F"):          # one channel: the features are the length
        c_in, length = 1, sizes[2]
    elif labels[1] == "F" and (labels[2] == "L" or sizes[2] == 1):
        pass
    else:
        raise ctx.unsupported(node, f"Conv of data with axes {list(labels)}; only [N, C, L] "
                                    f"with the channels or a single channel before the length")
    if None in (c_in, length) or w.shape[1] * group != c_in:
        raise ctx.bad(node, f"W has {w.shape[1]} x {group} input channels, the data "
                            f"{c_in}")
    if auto == "VALID":
        pads = [0, 0]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        out = -(-length // stride[0])
        total = max(0, (out - 1) * stride[0] + dil[0] * (k - 1) + 1 - length)
        small, big = total // 2, total - total // 2
        pads = [small, big] if auto == "SAME_UPPER" else [big, small]
    else:
        pads = [int(p) for p in at.get("pads", [0, 0])]
    bias = None if b is None else np.asarray(b, np.float32)
    if k == 1 and length == 1 and not any(pads) and group == 1:
        t = ctx.apply(node, edgernn.Dense(w[:, :, 0], bias), seq.tensor)
        return [seq.with_tensor(t, (sizes[0], w.shape[0], 1))]
    op = edgernn.Conv1d(w, bias, length=length, stride=stride[0], dilation=dil[0],
                        groups=group, padding=tuple(pads))
    t = ctx.apply(node, op, seq.tensor)
    return [Seq(t, (seq.axes[0], "F", "L"), (sizes[0], op.out_channels, op.out_length),
                last=seq.last)]


OPS = {"Conv": convert_conv}
