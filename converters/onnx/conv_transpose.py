"""ONNX ``ConvTranspose`` (1-D and 2-D) as matrix products: within a step over the
length (``[N, C, L]``), over time (``[N, C, T]``, stride 1) or both (``[N, C, T, F]``,
stride 1 in time) -- the decoders of CRN-style enhancers.

Along a step's length a transposed convolution is a linear map of the step's
``(C_in, L_in)`` values to ``(C_out, L_out)``: one :class:`edgernn.Dense` whose
matrix is written out from the kernel (``y[o, i s + q d - p] += W[c, o, q] x[c, i]``;
exact in arithmetic, each output a sum of the same products in edgernn's order). In
time, output ``t`` takes input ``t - j d`` through tap ``j``: taps on the delay line
of :func:`converters.onnx.conv2d.delayed`, summed; the ``(k - 1) d - pad_end``
frames after the last input are a :class:`~converters.onnx.values.TimeExtended`
for the Slice that drops them. Padding before the first frame (output ``t`` would
need a later input), a stride in time, ``output_shape`` and ``auto_pad`` are refused.
"""

from __future__ import annotations

import numpy as np

import edgernn

from .conv2d import delayed
from .values import Seq, TimeExtended


def _matrix(w, groups, length, stride, dilation, pad_b, pad_e, out_pad):
    """The map of one time tap: ``w`` float32[C_in, C_out/G, K] -> float32[C_out L_out,
    C_in L_in] and ``L_out``."""
    c_in, per, k = w.shape
    out_len = stride * (length - 1) + out_pad + (k - 1) * dilation + 1 - pad_b - pad_e
    m = np.zeros((per * groups, out_len, c_in, length), np.float64)
    cig = c_in // groups
    for c in range(c_in):
        g = c // cig
        for i in range(length):
            for q in range(k):
                p = i * stride + q * dilation - pad_b
                if 0 <= p < out_len:
                    m[g * per:(g + 1) * per, p, c, i] += w[c, :, q]
    return m.reshape(per * groups * out_len, c_in * length).astype(np.float32), out_len


def convert_conv_transpose(ctx, node, ins):
    at = ctx.check_attrs(node, ("auto_pad", "dilations", "group", "kernel_shape",
                                "output_padding", "pads", "strides"))
    auto = ctx.auto_pad(at)
    if auto not in ("NOTSET", "VALID"):
        raise ctx.unsupported(node, f"auto_pad={auto!r}; only explicit pads")
    w = np.asarray(ctx.const(node, 1, "W"), np.float32)
    b = ctx.const(node, 2, "B", optional=True)
    seq = ctx.as_seq(node, ins[0])
    labels = ctx.labels(seq)
    nd = w.ndim - 2
    if nd not in (1, 2) or len(labels) != nd + 2:
        raise ctx.unsupported(node, f"a {nd}-D ConvTranspose of data with axes {list(labels)}; "
                                    f"only 1-D or 2-D")
    if labels[2].startswith("?") and (nd == 2 or seq.sizes[2] is None):
        ctx.bind(node, seq.axes[2], "T")
        labels = ctx.labels(seq)
    group = int(at.get("group", 1))
    strides = [int(s) for s in at.get("strides", [1] * nd)]
    dils = [int(d) for d in at.get("dilations", [1] * nd)]
    pads = [int(p) for p in at.get("pads", [0] * 2 * nd)]
    outp = [int(p) for p in at.get("output_padding", [0] * nd)]
    if labels[1] != "F" or w.shape[0] != seq.sizes[1] or seq.sizes[1] % group:
        raise ctx.bad(node, f"W has {w.shape[0]} input channels, the data {seq.sizes[1]} "
                            f"(axes {list(labels)}, group {group})")
    bias = None if b is None else np.asarray(b, np.float32)
    over_time = labels[2] == "T"
    if not over_time:                      # [N, C, L]: one map within the step
        if nd != 1 or not (labels[2] == "L" or seq.sizes[2] == 1):
            raise ctx.unsupported(node, f"ConvTranspose of data with axes {list(labels)}; "
                                        f"only over the length of [N, C, L] steps or time")
        length = ctx.inner_length(seq)
        m, out_len = _matrix(w, group, length, strides[0], dils[0], pads[0], pads[1], outp[0])
        rep = None if bias is None else np.repeat(bias, out_len)
        t = ctx.apply(node, edgernn.Dense(m, rep), seq.tensor)
        return [Seq(t, (seq.axes[0], "F", "L"), (seq.sizes[0], w.shape[1] * group, out_len),
                    last=seq.last)]
    kt, dt, pb, pe = w.shape[2], dils[0], pads[0], pads[nd]
    if strides[0] != 1 or pb or outp[0] or pe > (kt - 1) * dt:
        raise ctx.unsupported(node, f"ConvTranspose over time with stride {strides[0]}, pads "
                                    f"{pads}, output_padding {outp}: streaming needs stride 1, "
                                    f"no padding before the first frame and at most "
                                    f"{(kt - 1) * dt} at the end")
    length = int(seq.sizes[3]) if nd == 2 else 1
    acc = None
    for j in range(kt):
        wj = w[:, :, j, :] if nd == 2 else w[:, :, j:j + 1]
        m, out_len = _matrix(wj, group, length, strides[-1] if nd == 2 else 1,
                             dils[-1] if nd == 2 else 1, pads[1] if nd == 2 else 0,
                             pads[3] if nd == 2 else 0, outp[-1] if nd == 2 else 0)
        rep = None if (bias is None or j) else np.repeat(bias, out_len)
        t = ctx.apply(node, edgernn.Dense(m, rep), delayed(ctx, seq.tensor, j * dt))
        acc = t if acc is None else ctx.apply(node, edgernn.Add(), acc, t)
    c_out = w.shape[1] * group
    if nd == 2:
        out = Seq(acc, (seq.axes[0], "F", seq.axes[2], "L"),
                  (seq.sizes[0], c_out, seq.sizes[2], out_len), last=seq.last)
    else:
        out = seq.with_tensor(acc, (seq.sizes[0], c_out, seq.sizes[2]))
    extra = (kt - 1) * dt - pe
    return [TimeExtended(out, extra, ctx.describe(node)) if extra else out]


OPS = {"ConvTranspose": convert_conv_transpose}

__all__ = ["OPS"]
