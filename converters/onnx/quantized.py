"""ONNX Runtime's dynamically quantised ops -> int8 edgernn layers.

What ``onnxruntime.quantization.quantize_dynamic(weight_type=QInt8)`` emits:

- ``com.microsoft.DynamicQuantizeLSTM``: an ONNX LSTM whose ``W``/``R`` are int8
  ``[D, I|H, 4H]`` (transposed) with ``W_scale``/``R_scale`` per tensor or per
  output channel (``[D, 4H]``) and zero points. ORT quantises the input of each
  GEMM per call, asymmetrically (uint8: ``s = (max(v, 0) - min(v, 0)) / 255``,
  zero point ``rint(-min / s)``): per step for ``h``, but once over the whole
  ``X`` it is given (one step per call in a streaming export).
- ``DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q, x_zp, W_zp) -> Cast ->
  Mul(., x_scale * W_scale) [-> Add(bias)]``: a Dense.

Both become ``int8-weights`` layers with the source's weights and per-row scales
and ``dynamic_zero_point`` (asymmetric per-call inputs; uint8 with zero point
``z`` is int8 with ``z - 128``, the same integers). Weights with a non-zero zero
point (``weight_type=QUInt8``) are refused: edgernn's int8 weights are symmetric.

And what ``quantize_static(quant_format=QOperator)`` emits: ``QuantizeLinear ->
QLinearMatMul | com.microsoft.QGemm -> DequantizeLinear``: static ``int8``
Dense layers with the calibrated input scale and zero point; the int32 bias is
dequantised (``C * s_a * s_b``); the output is requantised to its 8-bit grid
(``QuantParams.output_scale``) and, where a DequantizeLinear takes it out,
clipped to that range by a node of its own (which keeps later activations
from folding into the Dense, after its requantisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper

from ..common.gates import reorder
from .elementwise import convert_binary
from .gemm import _check_features, _dense
from .lstm import convert_lstm
from .shape_ops import _pass
from .values import Const, Seq


@dataclass(frozen=True)
class QSeq:
    """DynamicQuantizeLinear's quantised data (output 0)."""

    seq: Seq


@dataclass(frozen=True)
class QParam:
    """DynamicQuantizeLinear's scale (output 1) or zero point (output 2) of ``seq``."""

    seq: Seq
    what: str


@dataclass(frozen=True)
class IntProduct:
    """MatMulInteger of the quantised data by int8 weights ``w`` [in, out] (zero points
    taken off), before it is scaled back to real values."""

    seq: Seq
    w: np.ndarray


@dataclass(frozen=True)
class ProductScale:
    """``x_scale * W_scale``: the factor turning an IntProduct into real values."""

    w_scale: np.ndarray


def record(ctx, tensor, **spec) -> None:
    """Note how the node giving ``tensor`` was quantised in the source."""
    if not hasattr(ctx, "source_quant"):
        ctx.source_quant = {}
    ctx.source_quant[id(tensor)] = (tensor, spec)


def _symmetric(ctx, node, zp, what):
    if zp is not None and np.any(np.asarray(zp) != 0):
        raise ctx.unsupported(node, f"{what} has non-zero zero points (asymmetric uint8 "
                                    f"weights); supported: symmetric int8 weights "
                                    f"(quantize_dynamic(weight_type=QuantType.QInt8))")


def convert_dynamic_quantize_lstm(ctx, node, ins):
    """DynamicQuantizeLSTM -> LSTM (int8-weights, asymmetric per-call inputs)."""
    mats = {}
    for i, (name, si, zi) in enumerate((("W", 8, 9), ("R", 10, 11))):
        q = ctx.const(node, 1 + i, name)
        s = np.asarray(ctx.const(node, si, f"{name}_scale"), np.float32)
        z = ctx.const(node, zi, f"{name}_zero_point", optional=True)
        _symmetric(ctx, node, z, name)
        if q.ndim != 3 or q.shape[0] != 1:
            raise ctx.unsupported(node, f"{name} of shape {q.shape}; supported: one "
                                        f"direction, [1, in, 4H]")
        rows = q.shape[2]
        s_rows = np.broadcast_to(s.reshape(-1), (rows,)) if s.size in (1, rows) else None
        if s_rows is None:
            raise ctx.bad(node, f"{name}_scale has {s.size} values for {rows} rows")
        w = (q[0].astype(np.float64) * s_rows.astype(np.float64)).T  # [4H, in], ONNX i,o,f,c
        mats[name] = (w.astype(np.float32)[None], reorder(s_rows, "onnx", "LSTM"))
    names = [f"{node.name or 'dqlstm'}/{k}_real" for k in ("W", "R")]
    for n, k in zip(names, ("W", "R"), strict=True):
        ctx.env[n] = Const(mats[k][0])
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    lstm = helper.make_node("LSTM", [node.input[0], *names, *node.input[3:8]], node.output,
                            name=node.name, **attrs)
    outs = convert_lstm(ctx, lstm, [ctx.value(n) for n in lstm.input])
    record(ctx, outs[0].tensor, mode="int8-weights", dynamic_zero_point=True,
           scales={"weight_ih": mats["W"][1], "weight_hh": mats["R"][1]},
           source={"kind": "onnxruntime DynamicQuantizeLSTM"},
           note="ORT quantises X once per call over all its steps (per step when streamed "
                "one step per call); edgernn per step")
    return outs


def convert_dynamic_quantize_linear(ctx, node, ins):
    seq = ctx.as_seq(node, ins[0])
    return [QSeq(seq), QParam(seq, "scale"), QParam(seq, "zero_point")]


def convert_matmul_integer(ctx, node, ins):
    a, b = ins[0], ins[1]
    if not (isinstance(a, QSeq) and isinstance(b, Const)):
        raise ctx.unsupported(node, "MatMulInteger must multiply DynamicQuantizeLinear's "
                                    "output by constant int8 weights")
    if len(ins) > 2 and ins[2] is not None and not (isinstance(ins[2], QParam) and
                                                   ins[2].seq == a.seq):
        raise ctx.unsupported(node, "MatMulInteger's a_zero_point must be the zero point of "
                                    "its DynamicQuantizeLinear")
    bz = ins[3].value if len(ins) > 3 and isinstance(ins[3], Const) else None
    _symmetric(ctx, node, bz, "B")
    w = np.asarray(b.value, np.int64)
    if w.ndim != 2:
        raise ctx.unsupported(node, f"MatMulInteger weight of rank {w.ndim}; only 2-D")
    _check_features(ctx, node, a.seq, w.shape[0])
    return [IntProduct(a.seq, w)]


def convert_mul(ctx, node, ins):
    """Mul: x_scale * W_scale, IntProduct * that factor (-> Dense), else as gemm.py."""
    kinds = {type(v) for v in ins}
    if kinds == {QParam, Const}:
        c = next(v for v in ins if isinstance(v, Const))
        return [ProductScale(np.asarray(c.value, np.float32).reshape(-1))]
    if kinds == {IntProduct, ProductScale}:
        p = next(v for v in ins if isinstance(v, IntProduct))
        s = next(v for v in ins if isinstance(v, ProductScale)).w_scale
        n = p.w.shape[1]
        if s.size not in (1, n):
            raise ctx.bad(node, f"weight scale has {s.size} values for {n} outputs")
        s_rows = np.broadcast_to(s, (n,)).astype(np.float32)
        w = (p.w.T.astype(np.float64) * s_rows[:, None].astype(np.float64)).astype(np.float32)
        outs = _dense(ctx, node, p.seq, w, None)
        record(ctx, outs[0].tensor, mode="int8-weights", dynamic_zero_point=True,
               scales={"weight": s_rows}, source={"kind": "onnxruntime MatMulInteger"},
               note="DynamicQuantizeLinear: the same asymmetric per-call quantisation")
        return outs
    return convert_binary(ctx, node, ins)


@dataclass(frozen=True)
class QStatic:
    """Data quantised with a fixed scale and zero point (QuantizeLinear, or a QGemm /
    QLinearMatMul output): ``zp`` already moved to int8 (uint8 ``z`` -> ``z - 128``)."""

    seq: Seq
    scale: float
    zp: int
    lo: float
    hi: float
    requantized: bool = False  #: an op's 8-bit output (saturates at lo, hi)


def _qparams(ctx, node, s_i, z_i):
    s = np.asarray(ctx.const(node, s_i, "scale"), np.float32).reshape(-1)
    z = ctx.const(node, z_i, "zero point", optional=True)
    if s.size != 1 or (z is not None and np.asarray(z).size != 1):
        raise ctx.unsupported(node, "per-axis activation quantisation; supported: one scale")
    zv = 0 if z is None else int(np.asarray(z).reshape(-1)[0])
    unsigned = z is not None and np.asarray(z).dtype == np.uint8
    q0, q1 = (0, 255) if unsigned else (-128, 127)
    return float(s[0]), zv - (128 if unsigned else 0), (q0 - zv) * float(s[0]), \
        (q1 - zv) * float(s[0])


def convert_quantize_linear(ctx, node, ins):
    seq = ctx.as_seq(node, ins[0])
    return [QStatic(seq, *_qparams(ctx, node, 1, 2))]


def convert_dequantize_linear(ctx, node, ins):
    v = ins[0]
    if not isinstance(v, QStatic):
        raise ctx.unsupported(node, "DequantizeLinear of anything but quantised data (weights "
                                    "in QDQ form are not supported; use QOperator format)")
    from converters.tflite.simple_ops import clip_layers

    t = v.seq.tensor
    if v.requantized:
        for layer in clip_layers(v.lo, v.hi):
            t = ctx.apply(node, layer, t)
            ctx.no_fold.add(id(t))
    return [v.seq.with_tensor(t)]


def convert_qlinear(ctx, node, ins):
    """QLinearMatMul(a, sa, za, b, sb, zb, sy, zy) / QGemm(a, sa, za, b, sb, zb, C, sy, zy)."""
    a = ins[0]
    if not isinstance(a, QStatic):
        raise ctx.unsupported(node, "the quantised input must come from QuantizeLinear or "
                                    "another quantised op")
    gemm = node.op_type == "QGemm"
    at = ctx.attrs(node)
    if gemm and (int(at.get("transA", 0)) or float(at.get("alpha", 1.0)) != 1.0):
        raise ctx.unsupported(node, "transA=1 or alpha != 1")
    b = np.asarray(ctx.const(node, 3, "B"), np.int64)
    sb = np.asarray(ctx.const(node, 4, "B scale"), np.float32).reshape(-1)
    _symmetric(ctx, node, ctx.const(node, 5, "B zero point", optional=True), "B")
    w = b if gemm and int(at.get("transB", 0)) else b.T  # [out, in]
    n = w.shape[0]
    if sb.size not in (1, n):
        raise ctx.bad(node, f"B scale has {sb.size} values for {n} outputs")
    s_rows = np.broadcast_to(sb, (n,)).astype(np.float32)
    _check_features(ctx, node, a.seq, w.shape[1])
    bias = None
    if gemm and len(node.input) > 6 and node.input[6]:
        c = np.asarray(ctx.const(node, 6, "C"), np.float64).reshape(-1)
        bias = (c * np.float64(a.scale) * s_rows.astype(np.float64)).astype(np.float32)
    real = (w.astype(np.float64) * s_rows[:, None].astype(np.float64)).astype(np.float32)
    outs = _dense(ctx, node, a.seq, real, bias)
    y = _qparams(ctx, node, 7 if gemm else 6, 8 if gemm else 7)
    record(ctx, outs[0].tensor, mode="int8", scales={"weight": s_rows},
           x_range=(a.scale, a.zp), y_range=y[:2],
           source={"kind": f"onnxruntime {node.op_type}"},
           note="the output requantised to 8 bits as ORT does (output_scale)")
    return [QStatic(outs[0], *y, requantized=True)]


def convert_cast(ctx, node, ins):
    if isinstance(ins[0], IntProduct):
        return [ins[0]]
    return _pass(ctx, node, ins)


OPS = {"DynamicQuantizeLinear": convert_dynamic_quantize_linear,
       "MatMulInteger": convert_matmul_integer, "Mul": convert_mul, "Cast": convert_cast,
       "QuantizeLinear": convert_quantize_linear, "DequantizeLinear": convert_dequantize_linear,
       "QLinearMatMul": convert_qlinear}
#: com.microsoft ops
MS_OPS = {"DynamicQuantizeLSTM": convert_dynamic_quantize_lstm, "QGemm": convert_qlinear}
