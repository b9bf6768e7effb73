"""ONNX ``MaxPool``, ``AveragePool`` (1-D), ``GlobalMaxPool`` and ``GlobalAveragePool`` on
the ``(channels, length)`` values of a step (``[N, C, L]``, as a Conv within a step
leaves them): :class:`edgernn.Pool1d`, and :class:`edgernn.Reduce` over the length for
the global ones. A 2-D pool of ``[N, C, T, F]`` (after a 2-D convolution) with a
window of one step in time is the same over ``F``. Pooling over the time axis would
change the step rate: refused.
"""

from __future__ import annotations

import edgernn

from .values import Seq


def _channels_length(ctx, node, v):
    seq = ctx.as_seq(node, v)
    labels, sizes = ctx.labels(seq), seq.sizes
    if len(labels) == 4 and labels[1:] == ("F", "T", "L"):   # [N, C, T, F] (conv2d)
        return seq, int(sizes[1]), int(sizes[3])
    if len(labels) != 3 or "T" in labels[1:]:
        raise ctx.unsupported(node, f"{node.op_type} of data with axes {list(labels)}; only "
                                    f"over the length of [N, C, L] values within a step (not "
                                    f"over time: that changes the step rate)")
    if labels[1:] == ("U", "F"):
        return seq, 1, int(sizes[2])
    if labels[1] == "F" and (labels[2] == "L" or sizes[2] == 1):
        return seq, int(sizes[1]), int(sizes[2])
    raise ctx.unsupported(node, f"{node.op_type} of data with axes {list(labels)}; only "
                                f"[N, C, L] with the channels before the length")


def _out(seq, t, c, length) -> Seq:
    if len(seq.axes) == 4:
        return Seq(t, (seq.axes[0], "F", seq.axes[2], "L"), (seq.sizes[0], c, seq.sizes[2],
                                                              length), last=seq.last)
    return Seq(t, (seq.axes[0], "F", "L"), (seq.sizes[0], c, length), last=seq.last)


def _frequency_only(ctx, node, at, rank) -> dict:
    """A 2-D pool of ``[N, C, T, F]``: its attributes along F, refusing any window over
    time (a kernel, stride, dilation or padding other than 1, 1, 1, 0 there)."""
    if rank != 4:
        return at
    ks = [int(v) for v in at.get("kernel_shape", [])]
    st = [int(v) for v in at.get("strides", [1, 1])]
    dl = [int(v) for v in at.get("dilations", [1, 1])]
    pads = [int(v) for v in at.get("pads", [0, 0, 0, 0])]
    if len(ks) != 2 or ks[0] != 1 or st[0] != 1 or dl[0] != 1 or pads[0] or pads[2]:
        raise ctx.unsupported(node, f"a 2-D {node.op_type} of [N, C, T, F] with kernel {ks}, "
                                    f"strides {st}, dilations {dl}, pads {pads}: only over F "
                                    f"(a window of one step in time)")
    return dict(at, kernel_shape=ks[1:], strides=st[1:], dilations=dl[1:],
                pads=[pads[1], pads[3]])


def convert_pool(ctx, node, ins):
    """MaxPool / AveragePool with a 1-D kernel."""
    avg = node.op_type == "AveragePool"
    allowed = ["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides"]
    allowed += ["count_include_pad"] if avg else ["storage_order"]
    at = ctx.check_attrs(node, allowed)
    if len(node.output) > 1 and node.output[1] and ctx.uses.get(node.output[1]):
        raise ctx.unsupported(node, "its Indices output is used; only the pooled values")
    seq, c, length = _channels_length(ctx, node, ins[0])
    at = _frequency_only(ctx, node, at, len(seq.axes))
    ks = [int(v) for v in at.get("kernel_shape", [])]
    if len(ks) != 1:
        raise ctx.unsupported(node, f"kernel_shape {ks}; only a 1-D kernel")
    k = ks[0]
    stride = [int(v) for v in at.get("strides", [1])][0]
    dil = [int(v) for v in at.get("dilations", [1])][0]
    span = dil * (k - 1) + 1
    auto = ctx.auto_pad(at)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = -(-length // stride)
        total = max(0, (out - 1) * stride + span - length)
        small, big = total // 2, total - total // 2
        pads = [small, big] if auto == "SAME_UPPER" else [big, small]
    else:
        pads = [0, 0] if auto == "VALID" else [int(p) for p in at.get("pads", [0, 0])]
    floor_len = (length + sum(pads) - span) // stride + 1
    ceil_len = -(-(length + sum(pads) - span) // stride) + 1
    if int(at.get("ceil_mode", 0)) and ceil_len != floor_len:
        raise ctx.unsupported(node, f"ceil_mode=1 where it adds a window ({ceil_len} outputs "
                                    f"instead of {floor_len}); only where it changes nothing")
    op = edgernn.Pool1d("avg" if avg else "max", c, length, k, stride=stride, dilation=dil,
                        padding=tuple(pads),
                        count_include_pad=bool(int(at.get("count_include_pad", 0))))
    t = ctx.apply(node, op, seq.tensor)
    return [_out(seq, t, c, op.out_length)]


def convert_global_pool(ctx, node, ins):
    """GlobalMaxPool / GlobalAveragePool over the length."""
    ctx.check_attrs(node, ())
    seq, c, length = _channels_length(ctx, node, ins[0])
    func = "max" if node.op_type == "GlobalMaxPool" else "mean"
    t = ctx.apply(node, edgernn.Reduce(func, length), seq.tensor)
    return [_out(seq, t, c, 1)]


OPS = {"MaxPool": convert_pool, "AveragePool": convert_pool,
       "GlobalMaxPool": convert_global_pool, "GlobalAveragePool": convert_global_pool}

__all__ = ["OPS"]
