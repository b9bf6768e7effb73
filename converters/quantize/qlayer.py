"""Quantised ops as the runtime spells them (:mod:`edgernn.ir.quant`).

A quantised op keeps its type; the matrices it names in ``op.quantizable``
(``weight``, or ``weight_ih`` and ``weight_hh``) become int8 ``[rows, cols]``
with a float32 scale per output row (symmetric, ``s = max|row| / 127``),
everything else stays float32, and it carries ``quant``
(:class:`edgernn.QuantParams`: mode, scales, static input/state scale and zero
point, dynamic zero point, rounding).

Biases are stored merged where the engine adds them before anything else
(bit for bit what it computes from the two): an LSTM's or RNN's
``bias_ih + bias_hh`` in ``bias_ih`` (``bias_hh`` None), a GRU's r and z parts
in ``bias_ih`` (its n parts stay apart: ``b_hn`` is multiplied by r, or with
``linear_before_reset=False`` added after the reset product).
"""

from __future__ import annotations

import dataclasses

import numpy as np

import edgernn

MODES = ("int8-weights", "int8")


def kind(op) -> str:
    return type(op).__name__


def quant(op):
    return getattr(op, "quant", None)


def quantize_weight(w) -> tuple[np.ndarray, np.ndarray]:
    """(int8[R, ...], float32[R]): per-output-row symmetric quantisation, scale > 0 (a
    convolution's ``[C_out, C_in/G, K]`` weight: per output channel)."""
    w64 = np.asarray(w, np.float64)
    rows = w64.reshape(w64.shape[0], -1)
    m = np.abs(rows).max(axis=1)
    s = (m / 127).astype(np.float32)
    s[~(s > np.finfo(np.float32).tiny)] = 1.0  # zero rows (and rows too small to scale)
    q = np.clip(np.rint(rows / s[:, None].astype(np.float64)), -127, 127).astype(np.int8)
    return q.reshape(w64.shape), s


def has_state_product(op) -> bool:
    """Whether ``op`` multiplies its recurrent state (quantised with the state's own
    parameters); a causal convolution's history is its input's past, quantised as x."""
    return "weight_hh" in op.quantizable


def merged_biases(op) -> dict:
    """The bias fields of recurrent ``op`` with the parts the engine sums merged (module
    docstring); ``{}`` for a Dense or when there is nothing to merge."""
    k = kind(op)
    bih, bhh = getattr(op, "bias_ih", None), getattr(op, "bias_hh", None)
    if k not in ("RNN", "LSTM", "GRU") or bhh is None:
        return {}
    if k in ("RNN", "LSTM"):
        out = np.zeros(bhh.size, np.float32)  # the engine's summed_bias: 0 + b_ih + b_hh
        if bih is not None:
            out += bih
        out += bhh
        return {"bias_ih": out, "bias_hh": None}
    H = op.hidden_size
    new_ih = np.zeros(3 * H, np.float32) if bih is None else np.array(bih, np.float32)
    new_ih[:2 * H] += bhh[:2 * H]
    if not np.any(bhh[2 * H:]):
        return {"bias_ih": new_ih, "bias_hh": None}
    new_hh = np.zeros(3 * H, np.float32)
    new_hh[2 * H:] = bhh[2 * H:]
    return {"bias_ih": new_ih, "bias_hh": new_hh}


def with_int8(op, weights: dict, **params):
    """``op`` with int8 ``weights`` (name -> int8[R, K]) and
    ``quant=edgernn.QuantParams(scales=..., **params)``, biases merged."""
    scales = params.pop("scales")
    return dataclasses.replace(op, **weights, **merged_biases(op),
                               quant=edgernn.QuantParams(scales=scales, **params))


def build(op, mode: str, x_range=None, h_range=None, dynamic_zero_point=False,
          round_half_away=False):
    """The quantised version of float ``op``.

    Parameters
    ----------
    op : edgernn Dense, RNN, LSTM, GRU or CausalConv1d (float)
    mode : "int8-weights" or "int8"
    x_range, h_range : (scale, zero_point), static mode only (h: recurrent ops)
    dynamic_zero_point : bool
        "int8-weights" only: asymmetric per-call input ranges (LiteRT's and ONNX
        Runtime's scheme).
    round_half_away : bool
        Quantise inputs rounding half away from zero (LiteRT) instead of to even.
    """
    k = kind(op)
    if not op.quantizable:
        raise TypeError(f"{k} has no matrix product to quantise")
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    weights, scales = {}, {}
    for name in op.quantizable:
        weights[name], scales[name] = quantize_weight(getattr(op, name))
    kw = {}
    if mode == "int8":
        recurrent = has_state_product(op)
        if x_range is None or (recurrent and h_range is None):
            raise ValueError(f"static int8 {k} needs calibrated input"
                             f"{' and state' if recurrent else ''} ranges")
        kw = {"input_scale": float(x_range[0]), "input_zero_point": int(x_range[1])}
        if recurrent:
            kw.update(state_scale=float(h_range[0]), state_zero_point=int(h_range[1]))
    elif dynamic_zero_point:
        kw["dynamic_zero_point"] = True
    return with_int8(op, weights, mode=mode, scales=scales, round_half_away=round_half_away,
                     **kw)
