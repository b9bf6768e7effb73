"""Per-step ops: FULLY_CONNECTED, activations (LOG_SOFTMAX and L2_NORMALIZATION
included), and shape ops that keep the features.

Each converter takes (subgraph, op) and returns a list of edgernn layers
(empty for shape ops that leave the per-step feature vector as it is).
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from ..common.tflite_codes import EDGERNN_ACTIVATION, fused_activation_name


def fused_activation(op) -> str:
    """The edgernn name of ``op``'s fused activation (refuses others)."""
    return EDGERNN_ACTIVATION[fused_activation_name(op)]


def convert_fully_connected(sg, op):
    """weight float32[out, in] (TFLite's layout is already nn.Linear's), bias float32[out].

    int8 weights (per tensor or per output channel): with a float input, LiteRT's
    hybrid kernel (``int8-weights``, inputs quantised per call, asymmetrically when
    ``asymmetric_quantize_inputs``); with an int8 input, ``int8`` with the input's
    scale and zero point (the int32 bias dequantised), its int8 output requantised
    with the output tensor's scale and zero point (``output_scale``)."""
    w_t = sg.tensors[op.inputs[1]]
    if w_t.data is None:
        raise UnsupportedOpError(f"{op}: weights {w_t.name!r} are not a constant")
    if w_t.type_code != 0 and not (w_t.type_code == 9 and w_t.is_quantized):
        raise UnsupportedOpError(f"{op}: {np.dtype(w_t.dtype).name} weights {w_t.name!r} are "
                                 f"not supported; supported: float32, int8 with scales")
    b = sg.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    act = fused_activation_name(op, supported=("NONE", "RELU", "TANH", "RELU6",
                                               "RELU_N1_TO_1"))
    clip = {"RELU6": [edgernn.Unary("clip", 0.0, 6.0)],
            "RELU_N1_TO_1": [edgernn.Unary("clip", -1.0, 1.0)]}.get(act, [])
    dense = edgernn.Dense(w_t.real(), b, activation=EDGERNN_ACTIVATION.get(act, "linear"))
    if w_t.type_code == 0:
        return [dense, *clip]
    from converters.quantize.imported import SourceQuant

    from .fused_lstm import DRQ_NOTE, _rows

    scales = {"weight": _rows(w_t, dense.output_size)}
    x_t = sg.tensors[op.inputs[0]]
    if x_t.type_code == 9 and x_t.is_quantized:
        y_t = sg.tensors[op.outputs[0]]
        y_range = None
        if y_t.type_code == 9 and y_t.is_quantized:
            y_range = (float(y_t.scale[0]), int(y_t.zero_point[0]))
        return [SourceQuant(dense, "int8", scales,
                            x_range=(float(x_t.scale[0]), int(x_t.zero_point[0])),
                            y_range=y_range, round_half_away=True,
                            source={"kind": "tflite int8"},
                            note="the output requantised to int8 as LiteRT does "
                                 "(output_scale; LiteRT rounds in fixed point)"), *clip]
    asym = bool(op.opt("AsymmetricQuantizeInputs", False))
    return [SourceQuant(dense, "int8-weights", scales, dynamic_zero_point=asym,
                        source={"kind": "tflite dynamic range", "asymmetric_inputs": asym},
                        round_half_away=True, note=DRQ_NOTE), *clip]


def clip_layers(lo: float, hi: float) -> list:
    """Activations computing ``clip(x, lo, hi)`` (``lo < hi``):
    ``lo + (hi - lo) * hard_sigmoid((x - lo) / (hi - lo))``."""
    w = hi - lo
    return [edgernn.Activation("hard_sigmoid", alpha=1.0 / w, beta=-lo / w),
            edgernn.Activation("affine", alpha=w, beta=lo)]


def convert_activation(sg, op):
    """LOGISTIC, TANH, RELU, SOFTMAX (beta 1), LEAKY_RELU."""
    if op.name == "SOFTMAX" and op.opt("Beta", 1.0) != 1.0:
        raise UnsupportedOpError(f"{op}: softmax beta {op.opt('Beta')!r} is not supported; "
                                 f"supported: 1.0")
    if op.name == "LEAKY_RELU":
        return [edgernn.Activation("leaky_relu", alpha=op.opt("Alpha", 0.2))]
    name = {"LOGISTIC": "sigmoid", "TANH": "tanh", "RELU": "relu", "SOFTMAX": "softmax"}
    return [edgernn.Activation(name[op.name])]


def convert_log_softmax(sg, op):
    """LOG_SOFTMAX over the last axis (the only one TFLite offers)."""
    return [edgernn.Activation("log_softmax")]


def convert_l2_normalization(sg, op):
    """L2_NORMALIZATION over the last axis: LiteRT divides by ``max(||x||, 1e-6)``,
    i.e. ``alpha=1e-12`` on the sum of squares. LiteRT refuses a fused
    activation on it, and so do we."""
    fused_activation_name(op, supported=("NONE",))  # LiteRT refuses others too
    return [edgernn.Activation("l2_normalize", alpha=1e-12)]


def convert_reshape(sg, op):
    """RESHAPE, SQUEEZE, EXPAND_DIMS, UNPACK of a size-1 axis: features unchanged."""
    src, dst = sg.tensors[op.inputs[0]].shape, sg.tensors[op.outputs[0]].shape
    if op.name == "UNPACK" and len(op.outputs) > 1:
        raise UnsupportedOpError(f"{op}: splits the input into {len(op.outputs)} steps, a "
                                 f"layer unrolled over a fixed-length sequence (Keras "
                                 f"unroll=True without stateful=True); supported: unrolled "
                                 f"layers with stateful=True and input shape (1, 1, I)")
    if len(op.outputs) != 1 or not src or not dst or src[-1] != dst[-1]:
        raise UnsupportedOpError(f"{op}: reshapes {list(src)} to "
                                 f"{[list(sg.tensors[t].shape) for t in op.outputs]}; only "
                                 f"reshapes that keep the last (feature) axis are supported")
    return []


def last_step_slice(sg, op):
    """STRIDED_SLICE: True if it picks the last timestep and keeps all features."""
    src, dst = sg.tensors[op.inputs[0]].shape, sg.tensors[op.outputs[0]].shape
    begin, end, strides = (sg.const(t) for t in op.inputs[1:4])
    if begin is None or end is None or not src or not dst or src[-1] != dst[-1]:
        raise UnsupportedOpError(f"{op}: slices {list(src)} to {list(dst)}; only a slice "
                                 f"keeping the feature axis whole is supported")
    bm, em, sm = (op.opt(n, 0) for n in ("BeginMask", "EndMask", "ShrinkAxisMask"))
    last = True
    n = len(src)
    for ax in range(n - 1):
        b = 0 if bm >> ax & 1 else int(begin[ax])
        if strides is not None and int(strides[ax]) != 1:
            raise UnsupportedOpError(f"{op}: stride {int(strides[ax])} on axis {ax}")
        if not sm >> ax & 1:
            e = src[ax] if em >> ax & 1 else int(end[ax])
            if src[ax] > 0 and (e if e >= 0 else e + src[ax]) - (b if b >= 0 else
                                                                   b + src[ax]) != 1:
                raise UnsupportedOpError(f"{op}: keeps more than one step on axis {ax} of "
                                         f"{list(src)}; supported: picking one step")
        last &= b == -1 or (src[ax] > 0 and b == src[ax] - 1)
    feat_b = 0 if bm >> (n - 1) & 1 else int(begin[n - 1])
    feat_e = src[-1] if em >> (n - 1) & 1 else int(end[n - 1])
    if feat_b != 0 or feat_e not in (src[-1], 0) and feat_e < src[-1]:
        raise UnsupportedOpError(f"{op}: slices the feature axis [{feat_b}:{feat_e}]")
    if not last:
        raise UnsupportedOpError(f"{op}: picks a step other than the last; supported: the "
                                 f"last step (return_sequences=False)")
    return True
