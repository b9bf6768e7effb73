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

from .values import Seq, TimeExtended, TimePadded


def convert_conv(ctx, node, ins):
    at = ctx.check_attrs(node, ("auto_pad", "dilations", "group", "kernel_shape", "pads",
                                "strides"))
    w = np.asarray(ctx.const(node, 1, "W"), np.float32)
    b = ctx.const(node, 2, "B", optional=True)
    if isinstance(ins[0], Seq) and len(ins[0].axes) == 3 and ins[0].sizes[2] is None and \
            ctx.labels(ins[0])[1] == "F" and ctx.label(ins[0].axes[2]).startswith("?"):
        ctx.bind(node, ins[0].axes[2], "T")   # [N, C, runtime length]: the length is time
    if isinstance(ins[0], TimePadded) or (isinstance(ins[0], Seq) and len(ins[0].axes) == 3
                                          and ctx.labels(ins[0])[2] == "T"):
        return _over_time(ctx, node, at, ins[0], w, b)
    seq = ctx.as_seq(node, ins[0])
    if w.ndim != 3:
        raise ctx.unsupported(node, f"a {w.ndim - 2}-D convolution (W of shape "
                                    f"{list(w.shape)}); only 1-D")
    labels, sizes = ctx.labels(seq), seq.sizes
    if len(labels) != 3 or sizes[0] not in (None, 1) and labels[0] not in ("B", "U"):
        raise ctx.bad(node, f"Conv of data with axes {list(labels)}; expected [N, C, L]")
    group = int(at.get("group", 1))
    stride = [int(v) for v in at.get("strides", [1])]
    dil = [int(v) for v in at.get("dilations", [1])]
    auto = ctx.auto_pad(at)
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
    length_axis = "L" if op.out_length > 1 else "U"   # a length of 1 is a unit axis
    return [Seq(t, (seq.axes[0], "F", length_axis), (sizes[0], op.out_channels,
                                                     op.out_length), last=seq.last)]


def _over_time(ctx, node, at, v, w, b):
    """A convolution over the time axis ``[N, C, T]``: causal when ``(k - 1) d`` zero
    frames come first (a Pad before it, or its own ``pads``), an
    :class:`edgernn.CausalConv1d` keeping its last inputs as state. Padded at the end
    too (``pads=[p, p]``, a TCN's convolution before its ``Chomp1d``): the frames past
    the last step are a :class:`TimeExtended` for the Slice that drops them."""
    seq, frames = (v.seq, v.frames) if isinstance(v, TimePadded) else (v, 0)
    labels = ctx.labels(seq)
    if labels[1] != "F" or ctx.inner_length(seq) > 1:
        raise ctx.unsupported(node, f"Conv over time of data with axes {list(labels)}; "
                                    f"expected [N, C, T]")
    k, group = w.shape[2], int(at.get("group", 1))
    stride = [int(s) for s in at.get("strides", [1])][0]
    dil = [int(d) for d in at.get("dilations", [1])][0]
    pads = [int(p) for p in at.get("pads", [0, 0])]
    auto = ctx.auto_pad(at)
    if auto not in ("NOTSET", "VALID"):
        pads = None
    frames += pads[0] if pads else 0
    if stride != 1 or not pads or frames != (k - 1) * dil:
        raise ctx.unsupported(node, f"Conv over time with {frames} zero frames before it, pads "
                                    f"{pads}, stride {stride}, kernel {k}, dilation {dil}: "
                                    f"streaming needs a causal one ((kernel - 1) x dilation "
                                    f"= {(k - 1) * dil} zero frames first, stride 1)")
    op = edgernn.CausalConv1d(w, None if b is None else np.asarray(b, np.float32),
                              dilation=dil, groups=group)
    t = ctx.apply(node, op, seq.tensor)
    sizes = list(seq.sizes)
    sizes[1] = op.out_channels
    out = seq.with_tensor(t, sizes)
    return [TimeExtended(out, pads[1], ctx.describe(node)) if pads[1] else out]


OPS = {"Conv": convert_conv}
