"""What RNN, LSTM and GRU share: weight checks, state, sizes, the gate-count check.

The canonical weight layout is PyTorch's (``H`` = hidden_size, ``I`` = input_size;
converters do all gate reordering):

=========  ========================  ========================  ============
op         weight_ih                 weight_hh                 gate order
=========  ========================  ========================  ============
RNN        float32[H, I]             float32[H, H]             --
LSTM       float32[4H, I]            float32[4H, H]            i, f, g, o
GRU        float32[3H, I]            float32[3H, H]            r, z, n
=========  ========================  ========================  ============

``bias_ih`` and ``bias_hh`` have the leading dimension of their weight (or are
``None``: zeros). The op's output is its new hidden state ``h``, which the
stream keeps as state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFormatError
from ..kernels import optable as T
from .activation import VECTOR, activation_field
from .base import Op, check_quant, opt_f32_array, weight_field


@dataclass(frozen=True, eq=False)
class Recurrent(Op):
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray | None = None
    bias_hh: np.ndarray | None = None
    _gates = 1
    quantizable = ("weight_ih", "weight_hh")
    #: the state vector that is also the op's output
    output_state = "h"

    def _check_weights(self):
        name = type(self).__name__
        check_quant(self)
        if self.quant is not None:
            self.quant.needs_state_scale(name)
        whh = weight_field(self, "weight_hh")
        if whh.ndim != 2 or whh.shape[1] == 0:
            raise ModelFormatError(f"{name}.weight_hh: expected [{self._gates}*H, H], "
                                   f"got {whh.shape}")
        h = whh.shape[1]
        g = self._gates
        if whh.shape != (g * h, h):
            raise ModelFormatError(f"{name}.weight_hh: expected shape {(g * h, h)} "
                                   f"({g} gates x hidden_size {h}), got {whh.shape}")
        wih = weight_field(self, "weight_ih")
        if wih.ndim != 2 or wih.shape[0] != g * h or wih.shape[1] == 0:
            raise ModelFormatError(f"{name}.weight_ih: expected shape ({g * h}, input_size), "
                                   f"got {wih.shape}")
        object.__setattr__(self, "weight_ih", wih)
        object.__setattr__(self, "weight_hh", whh)
        for b in ("bias_ih", "bias_hh"):
            object.__setattr__(self, b, opt_f32_array(b, getattr(self, b), (g * h,), owner=name))

    hidden_size = property(lambda self: self.weight_hh.shape[1])
    input_size = property(lambda self: self.weight_ih.shape[1])
    output_size = property(lambda self: self.weight_hh.shape[1])

    def state_vectors(self):
        return (("h", self.hidden_size),)

    def macs(self) -> int:
        return self.weight_ih.size + self.weight_hh.size

    def expected_params(self) -> int:
        h, n, g = self.hidden_size, self.input_size, self._gates
        nb = sum(b is not None for b in (self.bias_ih, self.bias_hh))
        return g * (h * n + h * h + nb * h)

    def pack_weights(self, pk, row, scratch: int) -> None:
        """``[weight_ih | weight_hh]`` as float panels at WOFF, or, for an int8 op, the two
        int8 matrices at QM0, QM1 with the quantisation parameters (``scratch``: the
        op's float scratch, after which the int8 scratch starts)."""
        if self.quant is None:
            row[T.WOFF] = pk.panels(np.hstack([self.weight_ih, self.weight_hh]))
            return
        s = self.quant.scales
        row[T.QM0] = pk.qmatrix(self.weight_ih, s["weight_ih"])
        row[T.QM1] = pk.qmatrix(self.weight_hh, s["weight_hh"])
        row[T.QPAR] = pk.qparams(self.quant)
        row[T.QBUF] = row[T.SCR] + scratch

    def summed_bias(self, rows: slice, n: int) -> np.ndarray:
        """``bias_ih + bias_hh`` over ``rows`` (zeros where absent)."""
        out = np.zeros(n, np.float32)
        for b in (self.bias_ih, self.bias_hh):
            if b is not None:
                out += b[rows]
        return out


def gate_activations(name, acts, n):
    acts = tuple(activation_field(f"{name}.activations", a) for a in acts)
    if len(acts) != n:
        raise ModelFormatError(f"{name}.activations: expected {n} activations, got {len(acts)}")
    if any(a.name in VECTOR for a in acts):
        raise ModelFormatError(f"{name}.activations: {[a.name for a in acts]} includes a "
                               f"vector activation; gate activations are elementwise")
    return acts
