"""Activation functions: names, parameters and their integer codes.

An activation is named as in Keras/ONNX and may carry two parameters ``alpha``
and ``beta`` (defaults from the ONNX operator spec):

==================  ==============================================  ============
name                y =                                             defaults
==================  ==============================================  ============
linear              x
relu                max(x, 0)
tanh                tanh(x)
sigmoid             1 / (1 + exp(-x))
softmax             exp(x - max x) / sum exp(x - max x)  (vector)
leaky_relu          x if x >= 0 else alpha * x                      alpha=0.01
elu                 x if x >= 0 else alpha * (exp(x) - 1)           alpha=1.0
hard_sigmoid        clip(alpha * x + beta, 0, 1)                    0.2, 0.5
softsign            x / (1 + |x|)
softplus            log(1 + exp(x))
affine              alpha * x + beta                                1.0, 0.0
thresholded_relu    x if x > alpha else 0                           alpha=1.0
scaled_tanh         alpha * tanh(beta * x)                          1.0, 1.0
log_softmax         x - max x - log sum exp(x - max x)  (vector)
l2_normalize        x / sqrt(max(sum x**2, alpha))      (vector)   alpha=1e-24
tanh_litert         tanh(x) as LiteRT's builtin TANH kernel
sigmoid_litert      sigmoid(x) as LiteRT's builtin LOGISTIC kernel
==================  ==============================================  ============

``tanh_litert`` and ``sigmoid_litert`` compute, bit for bit, the float32
approximations LiteRT's builtin kernels run (Eigen's, see
:mod:`edgernn.kernels.mathfn`; within 5 ulp of the true function), whatever the
stream's ``math``: the TFLite importer's ``arithmetic="litert"``, so that a
model with int8 weights quantised per call follows LiteRT step after step.

``l2_normalize`` with ``alpha=1e-24`` is ``torch.nn.functional.normalize``
(``x / max(||x||, 1e-12)``); Keras' ``l2_normalize`` is ``alpha=1e-12``.

Keras 3's ``hard_sigmoid`` is ``alpha=1/6, beta=0.5``; Keras 2's and ONNX's is
``0.2, 0.5``: converters pass the parameters explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelFormatError
from ..kernels import optable as T
from ..kernels.spec.mathfn import (
    AFFINE,
    ELU,
    HARD_SIGMOID,
    L2_NORMALIZE,
    LEAKY_RELU,
    LINEAR,
    LOG_SOFTMAX,
    RELU,
    SCALED_TANH,
    SIGMOID,
    SIGMOID_LITERT,
    SOFTMAX,
    SOFTPLUS,
    SOFTSIGN,
    TANH,
    TANH_LITERT,
    THRESHOLDED_RELU,
)
from .base import Op, Schema
from .registry import register

#: name -> (code, default alpha, default beta)
ACTIVATIONS: dict[str, tuple[int, float, float]] = {
    "linear": (LINEAR, 0.0, 0.0),
    "relu": (RELU, 0.0, 0.0),
    "tanh": (TANH, 0.0, 0.0),
    "sigmoid": (SIGMOID, 0.0, 0.0),
    "softmax": (SOFTMAX, 0.0, 0.0),
    "leaky_relu": (LEAKY_RELU, 0.01, 0.0),
    "elu": (ELU, 1.0, 0.0),
    "hard_sigmoid": (HARD_SIGMOID, 0.2, 0.5),
    "softsign": (SOFTSIGN, 0.0, 0.0),
    "softplus": (SOFTPLUS, 0.0, 0.0),
    "affine": (AFFINE, 1.0, 0.0),
    "thresholded_relu": (THRESHOLDED_RELU, 1.0, 0.0),
    "scaled_tanh": (SCALED_TANH, 1.0, 1.0),
    "log_softmax": (LOG_SOFTMAX, 0.0, 0.0),
    "l2_normalize": (L2_NORMALIZE, 1e-24, 0.0),
    "tanh_litert": (TANH_LITERT, 0.0, 0.0),
    "sigmoid_litert": (SIGMOID_LITERT, 0.0, 0.0),
}

#: activations over the whole vector (not elementwise): never gate activations
VECTOR = ("softmax", "log_softmax", "l2_normalize")

_ALIASES = {None: "linear", "identity": "linear", "none": "linear", "logistic": "sigmoid",
            "leakyrelu": "leaky_relu", "hardsigmoid": "hard_sigmoid",
            "thresholdedrelu": "thresholded_relu", "scaledtanh": "scaled_tanh",
            "logsoftmax": "log_softmax", "l2normalize": "l2_normalize"}


@register
@dataclass(frozen=True)
class Activation(Op):
    """An elementwise (or, for softmax, vector) activation; also usable as a layer
    and as a graph op on any tensor (``edgernn.Activation("relu")(t)``).

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS` (case-insensitive; ``None``/"identity" mean linear).
    alpha, beta : float, optional
        Parameters; the defaults of the table above when omitted.
    """

    name: str
    alpha: float | None = None
    beta: float | None = None

    def __post_init__(self):
        key = self.name.lower() if isinstance(self.name, str) else self.name
        key = _ALIASES.get(key, key)
        if key not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.name!r}; expected one of {sorted(ACTIVATIONS)}")
        _, a0, b0 = ACTIVATIONS[key]
        object.__setattr__(self, "name", key)
        object.__setattr__(self, "alpha", float(a0 if self.alpha is None else self.alpha))
        object.__setattr__(self, "beta", float(b0 if self.beta is None else self.beta))

    @property
    def code(self) -> int:
        """The engine's integer code for this activation."""
        return ACTIVATIONS[self.name][0]

    def label(self) -> str:
        return f"Activation({self.name})"

    def to_config(self) -> dict:
        return {"name": self.name, "alpha": self.alpha, "beta": self.beta}

    # --- as an op -------------------------------------------------------------
    schema = {"name": Schema.STR, "alpha": Schema.FLOAT, "beta": Schema.FLOAT}
    kernel = "dense:activation_kernel"

    def config(self) -> dict:
        return self.to_config()

    def output_size_for(self, sizes):
        (n,) = sizes
        return n

    def pack(self, pk, row, state) -> None:
        row[T.ACT_CODE] = pk.act(self)
        row[T.PAR] = pk.f32([self.alpha, self.beta])


def as_activation(spec) -> Activation:
    """Normalise ``None``, a name or an :class:`Activation` to an :class:`Activation`."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, dict):
        return Activation(**spec)
    return Activation(spec)


def activation_field(owner: str, spec):
    """``spec`` (a name, a config dict or an Activation) as an :class:`edgernn.Activation`."""
    try:
        return as_activation(spec)
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"{owner}: {exc}") from None
