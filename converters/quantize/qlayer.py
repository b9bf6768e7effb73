"""Quantised layers as QUANT_SPEC.md describes them, with or without the runtime's int8.

A quantised layer keeps its op type; its matrices (``weight``, ``weight_ih``,
``weight_hh``) become int8 ``[rows, cols]`` with a float32 scale per output row
(symmetric, ``s = max|row| / 127``), everything else stays float32, and it
carries ``quant`` (:class:`QuantParams`: mode, scales, static input/state scale
and zero point).

:func:`build` is the one place that knows how the runtime spells this: with
``edgernn.QuantParams`` present it returns the real layer
(``dataclasses.replace(layer, weight_ih=int8, ..., quant=edgernn.QuantParams(...))``);
before that, a :class:`QuantizedLayer` stand-in with the same public fields,
which the numpy simulation and the test oracle read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

import edgernn

#: layer kind -> its matrices, in QUANT_SPEC's names
MATRICES = {"Dense": ("weight",), "RNN": ("weight_ih", "weight_hh"),
            "LSTM": ("weight_ih", "weight_hh"), "GRU": ("weight_ih", "weight_hh")}
MODES = ("int8-weights", "int8")


@dataclass(frozen=True)
class QuantParams:
    """Mirror of ``edgernn.QuantParams`` (QUANT_SPEC.md), field for field."""

    mode: str
    scales: dict = field(default_factory=dict)
    input_scale: float | None = None
    input_zero_point: int = 0
    state_scale: float | None = None
    state_zero_point: int = 0
    #: proposed, not in QUANT_SPEC yet: "int8-weights" inputs quantised per call with a
    #: zero point (s = (max(v, 0) - min(v, 0)) / 255), as LiteRT and ONNX Runtime do
    dynamic_zero_point: bool = False


def kind(layer) -> str:
    return getattr(layer, "kind", None) or type(layer).__name__


def quant(layer):
    return getattr(layer, "quant", None)


def runtime_has_int8() -> bool:
    """True once the engine runs int8 layers (``edgernn.QuantParams`` exists)."""
    return hasattr(edgernn, "QuantParams")


def quantize_weight(w) -> tuple[np.ndarray, np.ndarray]:
    """(int8[R, K], float32[R]): per-output-row symmetric quantisation, scale > 0."""
    w64 = np.asarray(w, np.float64)
    m = np.abs(w64).max(axis=1)
    s = (m / 127).astype(np.float32)
    s[~(s > np.finfo(np.float32).tiny)] = 1.0  # zero rows (and rows too small to scale)
    q = np.clip(np.rint(w64 / s[:, None].astype(np.float64)), -127, 127).astype(np.int8)
    return q, s


class QuantizedLayer:
    """Stand-in for a runtime layer with int8 matrices and ``quant``, until the
    runtime has them: every public field of ``layer``, the int8 ``weights``
    instead of its float matrices, ``quant`` and ``kind``; ``float_layer`` is the
    original."""

    def __init__(self, layer, weights: dict, params: QuantParams):
        self.float_layer = layer
        self.kind = type(layer).__name__
        self.quant = params
        self._weights = {k: np.asarray(v, np.int8) for k, v in weights.items()}

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        w = self.__dict__.get("_weights", {})
        if name in w:
            return w[name]
        return getattr(self.__dict__["float_layer"], name)

    def nbytes(self) -> int:
        out = 0
        for k, a in self.float_layer.arrays().items():
            out += self._weights[k].nbytes if k in self._weights else a.nbytes
        return out + sum(4 * len(s) for s in self.quant.scales.values())

    def __repr__(self) -> str:
        return f"QuantizedLayer({self.kind}, {self.quant.mode})"


def float_layer(layer):
    """The float original of a quantised layer (the layer itself when float)."""
    return getattr(layer, "float_layer", layer)


def build(layer, mode: str, x_range=None, h_range=None, dynamic_zero_point=False):
    """The quantised version of float ``layer``.

    Parameters
    ----------
    layer : edgernn Dense, RNN, LSTM or GRU (float)
    mode : "int8-weights" or "int8"
    x_range, h_range : (scale, zero_point), static mode only (h: recurrent layers)
    dynamic_zero_point : bool
        "int8-weights" only: asymmetric per-call input quantisation (a proposed
        QUANT_SPEC variant; see :class:`QuantParams`).
    """
    k = kind(layer)
    if k not in MATRICES:
        raise TypeError(f"{k} has no matrix product to quantise")
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    weights, scales = {}, {}
    for name in MATRICES[k]:
        weights[name], scales[name] = quantize_weight(getattr(layer, name))
    kw = {}
    if mode == "int8":
        if x_range is None or (k != "Dense" and h_range is None):
            raise ValueError(f"static int8 {k} needs calibrated input"
                             f"{'' if k == 'Dense' else ' and state'} ranges")
        kw = {"input_scale": float(x_range[0]), "input_zero_point": int(x_range[1])}
        if k != "Dense":
            kw.update(state_scale=float(h_range[0]), state_zero_point=int(h_range[1]))
    if dynamic_zero_point:
        if mode != "int8-weights":
            raise ValueError("dynamic_zero_point applies to int8-weights only")
        kw["dynamic_zero_point"] = True
    params = QuantParams(mode, scales, **kw)
    if runtime_has_int8():
        fields = getattr(edgernn.QuantParams, "__dataclass_fields__", {})
        if dynamic_zero_point and "dynamic_zero_point" not in fields:
            raise ValueError("this edgernn's QuantParams has no dynamic_zero_point")
        rt = edgernn.QuantParams(mode=mode, scales=scales, **kw)
        return dataclasses.replace(layer, **weights, quant=rt)
    return QuantizedLayer(layer, weights, params)
