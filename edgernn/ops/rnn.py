"""RNN: ``h' = act(clip(W_ih x + b_ih + W_hh h + b_hh))``. Kernel: :mod:`edgernn.kernels.rnn`."""

from __future__ import annotations

from dataclasses import dataclass

from ..kernels import optable as T
from .activation import Activation, activation_field
from .base import Schema, pad8, positive, quant_scratch
from .recurrent import Recurrent
from .registry import register


@register
@dataclass(frozen=True, eq=False)
class RNN(Recurrent):
    """Elman RNN: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``.

    Parameters
    ----------
    weight_ih : float32[H, I]
    weight_hh : float32[H, H]
    bias_ih, bias_hh : float32[H] or None
    nonlinearity : "tanh", "relu" or any Activation (ONNX ``activations``)
    clip : float or None
        ONNX ``clip``: pre-activations are clipped to [-clip, clip].
    """

    nonlinearity: Activation | str = "tanh"
    clip: float | None = None
    quant: object = None
    _arrays = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    kernel = "rnn:rnn_kernel"
    schema = {"nonlinearity": Schema.ACT, "clip": Schema.OPT_FLOAT, "quant": Schema.QUANT}

    def __post_init__(self):
        self._check_weights()
        object.__setattr__(self, "nonlinearity",
                           activation_field("RNN.nonlinearity", self.nonlinearity))
        object.__setattr__(self, "clip", positive("clip", self.clip, owner="RNN"))

    def scratch_floats(self) -> int:
        H = self.hidden_size
        return pad8(H) + quant_scratch(self, max(self.input_size, H), H)

    def pack(self, pk, row, state) -> None:
        H = self.hidden_size
        self.pack_weights(pk, row, pad8(H))
        row[T.BOFF] = pk.f32(self.summed_bias(slice(None), H), pad8(H))
        act = self.nonlinearity
        row[T.ACT_CODE] = pk.act(act)
        row[T.PAR] = pk.f32([act.alpha, act.beta, self.clip or 0.0])
        row[T.FLAGS] = T.F_CLIP if self.clip else 0
