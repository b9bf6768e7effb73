"""GRU (gates r, z, n as PyTorch; both reset variants). Kernel: :mod:`edgernn.kernels.gru`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import optable as T
from ..kernels.layout import gru_scratch
from .base import Schema, positive, quant_scratch
from .recurrent import Recurrent, gate_activations
from .registry import register

#: a float GRU (reset after ``W_hn h``) whose block matrix ``[[W_rz], [W_in, 0], [0,
#: W_hn]]`` has at most this many floats (32 KB: in L1) takes one product per step
#: instead of three: a third more multiply-adds (by zero), two fewer calls
SMALL_BLOCK = 8192


@register
@dataclass(frozen=True, eq=False)
class GRU(Recurrent):
    """Gated recurrent unit (gates r, z, n as in PyTorch).

    Parameters
    ----------
    weight_ih : float32[3H, I]
    weight_hh : float32[3H, H]
    bias_ih, bias_hh : float32[3H] or None
    linear_before_reset : bool, default True
        True: ``n = g(W_in x + b_in + r * (W_hn h + b_hn))`` (PyTorch, Keras
        ``reset_after=True``, ONNX ``linear_before_reset=1``). False:
        ``n = g(W_in x + b_in + W_hn (r * h) + b_hn)`` (Keras ``reset_after=False``,
        ONNX default).
    clip : float or None
        Gate pre-activations are clipped to [-clip, clip] (ONNX ``clip``).
    activations : (f, g)
        Gate and candidate activations, default sigmoid, tanh.
    """

    linear_before_reset: bool = True
    clip: float | None = None
    activations: tuple = ("sigmoid", "tanh")
    quant: object = None
    _gates = 3
    _arrays = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    schema = {"linear_before_reset": Schema.BOOL, "clip": Schema.OPT_FLOAT,
              "activations": Schema.ACTS,
              "quant": Schema.QUANT}

    def __post_init__(self):
        self._check_weights()
        object.__setattr__(self, "linear_before_reset", bool(self.linear_before_reset))
        object.__setattr__(self, "clip", positive("clip", self.clip, owner="GRU"))
        object.__setattr__(self, "activations", gate_activations("GRU", self.activations, 2))

    @property
    def kernel(self) -> str:
        plain = (self.linear_before_reset and not self.clip
                 and [a.name for a in self.activations] == ["sigmoid", "tanh"])
        return "gru:gru_kernel" if plain else "gru:gru_general_kernel"

    def kernel_for(self, exact: bool) -> str:
        # the fused kernel computes the fast sigmoid/tanh inline; libm's: the general one
        return "gru:gru_general_kernel" if exact else self.kernel

    kernels = ("gru:gru_kernel", "gru:gru_general_kernel")

    def _float_scratch(self) -> int:
        return gru_scratch(self.hidden_size)[-1]

    def scratch_floats(self) -> int:
        H = self.hidden_size
        return self._float_scratch() + quant_scratch(self, max(self.input_size, H), 3 * H)

    def pack(self, pk, row, state) -> None:
        H = self.hidden_size
        wih, whh = self.weight_ih, self.weight_hh
        rz, nx, nh, rh, _ = gru_scratch(H)
        I = self.input_size
        if self.quant is None and self.linear_before_reset and rh * (I + H) <= SMALL_BLOCK:
            block = np.zeros((rh, I + H), np.float32)   # one product, rows as the scratch
            block[:2 * H, :I], block[:2 * H, I:] = wih[:2 * H], whh[:2 * H]
            block[nx:nx + H, :I], block[nh:nh + H, I:] = wih[2 * H:], whh[2 * H:]
            row[T.WOFF] = pk.panels(block)
        elif self.quant is None:
            row[T.WOFF] = pk.panels(np.hstack([wih[:2 * H], whh[:2 * H]]))
            row[T.WIN] = pk.panels(wih[2 * H:])
            row[T.WHN] = pk.panels(whh[2 * H:])
        else:
            s = self.quant.scales
            if self.linear_before_reset:   # one product for the three gates
                row[T.QM0] = pk.qmatrix(wih, s["weight_ih"])
                row[T.QM1] = pk.qmatrix(whh, s["weight_hh"])
            else:
                row[T.QM0] = pk.qmatrix(wih[:2 * H], s["weight_ih"][:2 * H])
                row[T.QM1] = pk.qmatrix(whh[:2 * H], s["weight_hh"][:2 * H])
                row[T.QM2] = pk.qmatrix(wih[2 * H:], s["weight_ih"][2 * H:])
                row[T.QM3] = pk.qmatrix(whh[2 * H:], s["weight_hh"][2 * H:])
            row[T.QPAR] = pk.qparams(self.quant)
            row[T.QBUF] = row[T.SCR] + self._float_scratch()
        zero = np.zeros(3 * H, np.float32)
        bih = zero if self.bias_ih is None else self.bias_ih
        bhh = zero if self.bias_hh is None else self.bias_hh
        # the biases are laid out as the scratch
        parts = [(bih[:2 * H] + bhh[:2 * H], nx - rz), (bih[2 * H:], nh - nx),
                 (bhh[2 * H:], rh - nh)]
        row[T.BOFF] = pk.f32(np.concatenate([np.pad(b, (0, n - b.size)) for b, n in parts]))
        af, ag = self.activations
        row[T.ACT_CODE], row[T.AG] = pk.act(af), pk.act(ag)
        row[T.PAR] = pk.f32([af.alpha, af.beta, ag.alpha, ag.beta, self.clip or 0.0])
        flags = T.F_LBR if self.linear_before_reset else 0
        row[T.FLAGS] = flags | (T.F_CLIP if self.clip else 0)
