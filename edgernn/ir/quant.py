"""Quantisation parameters of an int8 op (Dense, RNN, LSTM, GRU).

A quantised op keeps its type; its weight matrices (``weight``, ``weight_ih``,
``weight_hh``) are int8 arrays in the canonical layout, with one float32 scale
per output row; biases and everything else stay float32. Each matrix product
``y = W v`` runs in integers (the kernels: :mod:`edgernn.kernels.qlinalg`):

1. ``v`` (float32[K]) is quantised: ``v_q = clip(rint(v / s_v) + zp, -128, 127)``
   (a float32 quotient, not a product with ``1 / s_v``: they differ in rare last bits;
   ``multiply_by_inverse``, dynamic symmetric only: ``rint(v * (127 / max|v|))``, the
   product LiteRT's dynamic-range kernels round)
   (``rint``: half to even; ``round_half_away``: half away from zero, as LiteRT),
   with ``s_v, zp`` from calibration (mode ``"int8"``: ``input_*`` for x,
   ``state_*`` for h) or from ``v`` itself at every step (mode ``"int8-weights"``,
   dynamic range: ``s_v = max|v| / 127``, ``zp = 0``; or, with
   ``dynamic_zero_point``, ``lo, hi = min(v, 0), max(v, 0)``, ``s_v = (hi - lo) / 255``,
   ``zp = clip(rint(-128 - lo / s_v), -128, 127)`` as LiteRT and ONNX Runtime do);
2. ``acc = sum_k W_q[r, k] * (v_q[k] - zp)`` exactly in int32;
3. ``y[r] = float32(acc) * float32(s_w[r] * s_v)``, then the float bias and the
   op's float equations (gates, cell state, activations).

A recurrent op quantises x and h separately (``weight_ih`` and ``weight_hh``
have their own scales); a GRU with ``linear_before_reset=False`` quantises
``r * h`` like h. ``output_scale``: a Dense's output is re-quantised after its
activation (``(clip(rint(y / s) + zp, -128, 127) - zp) * s``), as an int8
model's next op would see it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFormatError

MODES = ("int8-weights", "int8")
_KEYS = ("mode", "input_scale", "input_zero_point", "state_scale", "state_zero_point",
         "dynamic_zero_point", "output_scale", "output_zero_point", "round_half_away",
         "multiply_by_inverse")


def _scale(name, v, required):
    if v is None:
        if required:
            raise ModelFormatError(f"QuantParams.{name}: required for mode 'int8', got None")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)):
        raise ModelFormatError(f"QuantParams.{name}: expected a positive number, got {v!r}")
    v = float(np.float32(v))
    if not (v > 0 and math.isfinite(v)):
        raise ModelFormatError(f"QuantParams.{name}: expected a positive finite number, "
                               f"got {v!r}")
    return v


def _zero_point(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not -128 <= v <= 127:
        raise ModelFormatError(f"QuantParams.{name}: expected an integer in [-128, 127], "
                               f"got {v!r}")
    return int(v)


@dataclass(frozen=True, eq=False)
class QuantParams:
    """How an op's int8 weights and its inputs are quantised (module docstring).

    Parameters
    ----------
    mode : "int8-weights" (dynamic range) or "int8" (static)
    scales : dict of weight field name -> float32[rows], one positive scale per row
    input_scale, input_zero_point : static quantisation of the op's input x
    state_scale, state_zero_point : static quantisation of h (recurrent ops)
    dynamic_zero_point : "int8-weights" only: asymmetric per-step ranges
    output_scale, output_zero_point : optional re-quantisation of a Dense's output
    round_half_away : quantise with round-half-away-from-zero (LiteRT's ``TfLiteRound``)
        instead of round-half-to-even (``rint``, ONNX Runtime's)
    multiply_by_inverse : "int8-weights", ``round_half_away``, no ``dynamic_zero_point``: quantise
        ``v * (127 / max|v|)`` (LiteRT's float32 product) instead of ``v / s_v``
    """

    mode: str
    scales: dict = field(default_factory=dict)
    input_scale: float | None = None
    input_zero_point: int = 0
    state_scale: float | None = None
    state_zero_point: int = 0
    dynamic_zero_point: bool = False
    output_scale: float | None = None
    output_zero_point: int = 0
    round_half_away: bool = False
    multiply_by_inverse: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ModelFormatError(f"QuantParams.mode: expected one of {MODES}, "
                                   f"got {self.mode!r}")
        static = self.mode == "int8"
        set_ = object.__setattr__
        set_(self, "input_scale", _scale("input_scale", self.input_scale, static))
        set_(self, "state_scale", _scale("state_scale", self.state_scale, False))
        set_(self, "output_scale", _scale("output_scale", self.output_scale, False))
        for k in ("input_zero_point", "state_zero_point", "output_zero_point"):
            set_(self, k, _zero_point(k, getattr(self, k)))
        if not isinstance(self.round_half_away, bool):
            raise ModelFormatError(f"QuantParams.round_half_away: expected true/false, "
                                   f"got {self.round_half_away!r}")
        if not isinstance(self.dynamic_zero_point, bool):
            raise ModelFormatError(f"QuantParams.dynamic_zero_point: expected true/false, "
                                   f"got {self.dynamic_zero_point!r}")
        if not isinstance(self.multiply_by_inverse, bool):
            raise ModelFormatError(f"QuantParams.multiply_by_inverse: expected true/false, "
                                   f"got {self.multiply_by_inverse!r}")
        if self.multiply_by_inverse and (static or self.dynamic_zero_point
                                         or not self.round_half_away):
            raise ModelFormatError("QuantParams: multiply_by_inverse is for mode "
                                   "'int8-weights' with round_half_away and without "
                                   "dynamic_zero_point (LiteRT's symmetric inputs)")
        if static and self.dynamic_zero_point:
            raise ModelFormatError("QuantParams: dynamic_zero_point is for mode "
                                   "'int8-weights'")
        if not isinstance(self.scales, dict) or not self.scales:
            raise ModelFormatError("QuantParams.scales: expected a dict of weight name -> "
                                   "per-row scales")
        scales = {}
        for k, s in self.scales.items():
            a = np.array(s, dtype=np.float32, copy=True)
            if a.ndim != 1 or not np.all(np.isfinite(a)) or not np.all(a > 0):
                raise ModelFormatError(f"QuantParams.scales[{k!r}]: expected positive finite "
                                       f"per-row scales, got shape {a.shape}")
            a.flags.writeable = False
            scales[k] = a
        set_(self, "scales", scales)

    def check_weight(self, owner: str, name: str, w) -> np.ndarray:
        """The int8 weight ``name`` (checked against its scales) as a read-only array."""
        if name not in self.scales:
            raise ModelFormatError(f"{owner}.{name}: int8 weights need QuantParams.scales"
                                   f"[{name!r}]")
        a = np.asarray(w)
        if a.dtype != np.int8 or a.ndim not in (2, 3):
            raise ModelFormatError(f"{owner}.{name}: expected a 2-D (3-D for a convolution) "
                                   f"int8 array, got {a.dtype} {a.shape}")
        if self.scales[name].shape != (a.shape[0],):
            raise ModelFormatError(f"{owner}.{name}: {a.shape[0]} rows but "
                                   f"{self.scales[name].size} scales")
        a = np.array(a, copy=True, order="C")
        a.flags.writeable = False
        return a

    def needs_state_scale(self, owner: str) -> None:
        if self.mode == "int8" and self.state_scale is None:
            raise ModelFormatError(f"{owner}.quant.state_scale: required for a recurrent "
                                   f"op in mode 'int8'")

    # --- manifest ---------------------------------------------------------------
    def to_config(self) -> dict:
        """The parameters; ``multiply_by_inverse`` only when set (earlier files lack it)."""
        return {k: getattr(self, k) for k in _KEYS
                if k != "multiply_by_inverse" or self.multiply_by_inverse}

    @classmethod
    def from_config(cls, owner: str, config, scales: dict) -> QuantParams:
        if not isinstance(config, dict) or set(config) - set(_KEYS) or "mode" not in config:
            raise ModelFormatError(f"{owner}.quant: expected an object with keys among "
                                   f"{list(_KEYS)} including 'mode', got {config!r}"[:300])
        return cls(scales=scales, **config)
