"""LSTM (gates i, f, g, o as PyTorch). Kernel: :mod:`edgernn.kernels.lstm`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import optable as T
from .base import Schema, opt_f32_array, pad8, positive, quant_scratch
from .recurrent import Recurrent, gate_activations
from .registry import register


@register
@dataclass(frozen=True, eq=False)
class LSTM(Recurrent):
    """Long short-term memory layer (gates i, f, g, o as in PyTorch).

    Parameters
    ----------
    weight_ih : float32[4H, I]
    weight_hh : float32[4H, H]
    bias_ih, bias_hh : float32[4H] or None
    peephole : float32[3, H] or None
        Peephole weights for the i, f and o gates (ONNX ``P`` reordered).
    cell_clip : float or None
        The cell state is clipped to [-cell_clip, cell_clip] (TFLite/Keras).
    clip : float or None
        Gate pre-activations are clipped to [-clip, clip] (ONNX ``clip``).
    input_forget : bool
        Couple the gates: ``f = 1 - i`` (ONNX ``input_forget``).
    activations : (f, g, h)
        Gate, cell-input and cell-output activations, default sigmoid, tanh, tanh.
    """

    peephole: np.ndarray | None = None
    cell_clip: float | None = None
    clip: float | None = None
    input_forget: bool = False
    activations: tuple = ("sigmoid", "tanh", "tanh")
    quant: object = None
    _gates = 4
    _arrays = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "peephole")
    schema = {"cell_clip": Schema.OPT_FLOAT, "clip": Schema.OPT_FLOAT,
              "input_forget": Schema.BOOL, "activations": Schema.ACTS,
              "quant": Schema.QUANT}

    def __post_init__(self):
        self._check_weights()
        h = self.hidden_size
        object.__setattr__(self, "peephole",
                           opt_f32_array("peephole", self.peephole, (3, h), owner="LSTM"))
        object.__setattr__(self, "cell_clip", positive("cell_clip", self.cell_clip, owner="LSTM"))
        object.__setattr__(self, "clip", positive("clip", self.clip, owner="LSTM"))
        object.__setattr__(self, "input_forget", bool(self.input_forget))
        object.__setattr__(self, "activations", gate_activations("LSTM", self.activations, 3))

    kernels = ("lstm:lstm_kernel", "lstm:lstm_general_kernel")

    @property
    def kernel(self) -> str:
        plain = (self.peephole is None and not self.clip and not self.cell_clip
                 and not self.input_forget
                 and [a.name for a in self.activations] == ["sigmoid", "tanh", "tanh"])
        return "lstm:lstm_kernel" if plain else "lstm:lstm_general_kernel"

    def kernel_for(self, exact: bool) -> str:
        # the fused kernel computes the fast sigmoid/tanh inline; libm's: the general one
        return "lstm:lstm_general_kernel" if exact else self.kernel

    def state_vectors(self):
        return (("h", self.hidden_size), ("c", self.hidden_size))

    def expected_params(self) -> int:
        return super().expected_params() + (0 if self.peephole is None else 3 * self.hidden_size)

    def scratch_floats(self) -> int:
        H = self.hidden_size
        return pad8(4 * H) + quant_scratch(self, max(self.input_size, H), 4 * H)

    def pack(self, pk, row, state) -> None:
        H = self.hidden_size
        self.pack_weights(pk, row, pad8(4 * H))
        row[T.BOFF] = pk.f32(self.summed_bias(slice(None), 4 * H), pad8(4 * H))
        row[T.STATE_C] = state["c"]
        af, ag, ah = self.activations
        row[T.ACT_CODE], row[T.AG], row[T.AH] = pk.act(af), pk.act(ag), pk.act(ah)
        row[T.PAR] = pk.f32([af.alpha, af.beta, ag.alpha, ag.beta, ah.alpha, ah.beta,
                             self.clip or 0.0, self.cell_clip or 0.0])
        flags = 0
        if self.peephole is not None:
            flags |= T.F_PEEPHOLE
            row[T.PEEP] = pk.f32(self.peephole)
        flags |= T.F_CLIP if self.clip else 0
        flags |= T.F_CELL_CLIP if self.cell_clip else 0
        flags |= T.F_INPUT_FORGET if self.input_forget else 0
        row[T.FLAGS] = flags
