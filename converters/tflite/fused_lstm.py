"""``UNIDIRECTIONAL_SEQUENCE_LSTM`` -> :class:`edgernn.LSTM`.

Inputs (TFLite kernel order): 0 x float[1, T, I]; 1-4 input weights for the
i, f, c, o gates float[H, I]; 5-8 recurrent weights float[H, H]; 9-11 peephole
(cell-to-gate) weights for i, f, o float[H]; 12-15 gate biases float[H];
16-17 projection weights and bias; 18-19 output and cell state (variable
tensors: the state persists across ``invoke`` calls); 20-23 layer-norm
coefficients. Gate order i, f, c, o is PyTorch's i, f, g, o.

Quantised sources (weights int8 with one scale per gate matrix):

- dynamic range (float input, "hybrid"): ``int8-weights``; LiteRT quantises each
  step's x and h per call, asymmetrically when ``asymmetric_quantize_inputs``
  (``QuantParams.dynamic_zero_point``) and rounding half away from zero
  (``round_half_away``), gates and cell state in float32 as edgernn does.
- full integer 8x8_16 (int8 input): ``int8`` with the source's x and h scales and
  zero points, int32 biases dequantised. LiteRT computes the gates in int16
  fixed point (Q3.12 pre-activations, saturating at +-8; int16 sigmoid/tanh) and
  keeps the cell state in int16 (scale ``s_c``); edgernn keeps gates and cell in
  float32 and clips the cell at the int16 range (``32767 * s_c``).
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from ..common.tflite_codes import fused_activation_name

_CELL_ACT = {"RELU": "relu", "TANH": "tanh"}  # LiteRT's cell activations edgernn has
#: the report's note on LiteRT's hybrid (dynamic-range) kernels
DRQ_NOTE = ("LiteRT rounds half away from zero, as here; asymmetric inputs it quantises "
            "with the zero point added before rounding (in float32) and the per-call "
            "scale in double, symmetric ones as x * (127 / max|x|) where edgernn divides "
            "by max|x| / 127: an input can quantise one step apart at a rounding "
            "(near-)tie (from_tflite(arithmetic='litert') follows LiteRT's symmetric "
            "FULLY_CONNECTED and CONV_2D)")


def state_persists(sg, op) -> bool:
    """True when both state inputs are variable tensors (kept across ``invoke``)."""
    ins = op.inputs + [-1] * (24 - len(op.inputs))
    return all(ins[i] >= 0 and sg.tensors[ins[i]].is_variable for i in (18, 19))


def convert_fused_lstm(sg, op):
    """The edgernn LSTM for ``op``; raises UnsupportedOpError for what it cannot express."""
    ins = op.inputs + [-1] * (24 - len(op.inputs))

    def tensor(i):
        return None if ins[i] < 0 else sg.tensors[ins[i]]

    w = [tensor(i) for i in range(1, 9)]
    quantized = any(t is not None and t.type_code != 0 for t in w)
    if any(t is not None and t.type_code != 0 and not (t.type_code == 9 and t.is_quantized)
           for t in w):
        kinds = sorted({np.dtype(t.dtype).name for t in w if t is not None and t.type_code})
        raise UnsupportedOpError(f"{op}: weights of type {kinds}; supported: float32, and "
                                 f"int8 with scales (dynamic range or 8x8_16)")
    if w[0] is None:
        raise UnsupportedOpError(f"{op}: no input-gate weights (CIFG: TFLite computes the "
                                 f"input gate as i = 1 - f) is not supported; edgernn's "
                                 f"input_forget coupling is ONNX's f = 1 - i, a different "
                                 f"cell; supported: all four gates")
    for i, what in ((16, "projection weights"), (20, "layer normalisation")):
        if tensor(i) is not None:
            raise UnsupportedOpError(f"{op}: {what} (input {i}) are not supported")
    if op.opt("TimeMajor", False):
        raise UnsupportedOpError(f"{op}: time_major=True is not supported; supported: "
                                 f"batch-major [1, T, I] input")
    g = _CELL_ACT[fused_activation_name(op, 4, supported=_CELL_ACT)]
    for i in (18, 19):
        st = tensor(i)
        if st is not None and st.data is not None and np.any(st.real()):
            raise UnsupportedOpError(f"{op}: state input {i} ({st.name!r}) starts non-zero; "
                                     f"edgernn streams start from zero state")
    data = [None if t is None else t.real() for t in w]
    if any(d is None for d in data):
        raise UnsupportedOpError(f"{op}: weights that are not constants are not supported")
    peep = [tensor(i) for i in (9, 10, 11)]
    peephole = None
    if any(p is not None for p in peep):
        H = data[4].shape[0]
        peephole = np.stack([np.zeros(H, np.float32) if p is None else p.real() for p in peep])
    bias = [tensor(i) for i in range(12, 16)]
    b = None if all(t is None for t in bias) else np.concatenate(
        [np.zeros(data[0].shape[0], np.float32) if t is None else t.real() for t in bias])
    clip = op.opt("CellClip", 0.0) or None
    x_t, h_t, c_t = tensor(0), tensor(18), tensor(19)
    full = quantized and x_t.type_code == 9
    if full:
        if c_t is None or c_t.type_code != 7 or not c_t.is_quantized or not h_t.is_quantized:
            raise UnsupportedOpError(f"{op}: an int8 LSTM needs an int16 cell state and an "
                                     f"int8 output state with scales (LiteRT 8x8_16)")
        c_max = float(32767 * c_t.scale[0])
        clip = c_max if clip is None else min(clip, c_max)
    layer = edgernn.LSTM(np.concatenate(data[:4]), np.concatenate(data[4:]), b, None,
                         peephole=peephole, cell_clip=clip, activations=("sigmoid", g, g))
    if not quantized:
        return layer
    from converters.quantize.imported import SourceQuant

    H = layer.hidden_size
    scales = {"weight_ih": np.concatenate([_rows(t, H) for t in w[:4]]),
              "weight_hh": np.concatenate([_rows(t, H) for t in w[4:]])}
    if full:
        return SourceQuant(
            layer, "int8", scales, x_range=(float(x_t.scale[0]), int(x_t.zero_point[0])),
            h_range=(float(h_t.scale[0]), int(h_t.zero_point[0])), round_half_away=True,
            source={"kind": "tflite 8x8_16", "cell_scale": float(c_t.scale[0])},
            note=f"LiteRT computes gates in int16 fixed point (Q3.12, saturating at +-8) and "
                 f"keeps the cell state in int16 (scale {float(c_t.scale[0]):g}); edgernn "
                 f"keeps them float32 and clips the cell at {c_max:g}")
    asym = bool(op.opt("AsymmetricQuantizeInputs", False))
    return SourceQuant(layer, "int8-weights", scales, dynamic_zero_point=asym,
                       source={"kind": "tflite dynamic range", "asymmetric_inputs": asym},
                       round_half_away=True, note=DRQ_NOTE)


def _rows(t, rows):
    """float32[rows]: the scale of each row of weight tensor ``t`` (per tensor or per row)."""
    s = np.asarray(t.scale, np.float32)
    if s.size == 1:
        return np.full(rows, s[0], np.float32)
    if t.quantized_dimension != 0 or s.size != rows:
        raise UnsupportedOpError(f"weights {t.name!r}: {s.size} scales along dimension "
                                 f"{t.quantized_dimension}; supported: one, or one per row")
    return s
