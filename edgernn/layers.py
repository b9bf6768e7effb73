"""Layer descriptions: frozen dataclasses holding their float32 weights.

The canonical weight layout is PyTorch's, so a state dict maps straight in
(``H`` = hidden_size, ``I`` = input_size; converters do all gate reordering):

=========  ========================  ========================  ============
layer      weight_ih                 weight_hh                 gate order
=========  ========================  ========================  ============
RNN        float32[H, I]             float32[H, H]             --
LSTM       float32[4H, I]            float32[4H, H]            i, f, g, o
GRU        float32[3H, I]            float32[3H, H]            r, z, n
=========  ========================  ========================  ============

``bias_ih`` and ``bias_hh`` have the leading dimension of their weight (or are
``None``: zeros). ``Dense.weight`` is ``float32[out, in]`` as ``nn.Linear``.
``LSTM.peephole`` is ``float32[3, H]`` with rows for the i, f, o gates.
The equations each layer computes are written out in ``edgernn/kernels/``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .activations import VECTOR, Activation, as_activation

__all__ = ["Dense", "RNN", "LSTM", "GRU", "Embedding", "Activation"]


def _f32(name: str, a, shape: tuple[int, ...] | None = None, *, owner: str) -> np.ndarray:
    """A read-only C-contiguous float32 copy of ``a``, checked against ``shape``."""
    try:
        arr = np.array(a, dtype=np.float32, order="C", copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{owner}.{name}: expected a float array, got {type(a).__name__}") from exc
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{owner}.{name}: expected shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{owner}.{name}: contains non-finite values")
    arr.flags.writeable = False
    return arr


def _opt_f32(name, a, shape, *, owner):
    return None if a is None else _f32(name, a, shape, owner=owner)


def _clip(name, v, *, owner):
    if v is None:
        return None
    v = float(v)
    if not v > 0 or not np.isfinite(v):
        raise ValueError(f"{owner}.{name}: expected a positive finite threshold, got {v!r}")
    return v


class _Layer:
    """Shared behaviour: serialisation and size bookkeeping."""

    #: names of the array fields, in order
    _arrays: tuple[str, ...] = ()
    #: names of the recurrent state vectors (each of length ``hidden_size``)
    state_names: tuple[str, ...] = ()

    def arrays(self) -> dict[str, np.ndarray]:
        """The layer's arrays by field name (``None`` fields left out)."""
        return {k: getattr(self, k) for k in self._arrays if getattr(self, k) is not None}

    def config(self) -> dict:
        """JSON-able non-array fields."""
        out = {}
        for f in fields(self):
            if f.name in self._arrays:
                continue
            v = getattr(self, f.name)
            if isinstance(v, Activation):
                v = v.to_config()
            elif isinstance(v, tuple) and v and isinstance(v[0], Activation):
                v = [a.to_config() for a in v]
            out[f.name] = v
        return out

    @classmethod
    def from_parts(cls, config: dict, arrays: dict[str, np.ndarray]):
        kw = dict(config)
        kw.update(arrays)
        return cls(**kw)

    def param_count(self) -> int:
        return int(sum(a.size for a in self.arrays().values()))

    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays().values()))

    @property
    def state_size(self) -> int:
        return len(self.state_names) * getattr(self, "hidden_size", 0)


@dataclass(frozen=True, eq=False)
class Dense(_Layer):
    """Fully connected layer ``y = act(weight @ x + bias)``.

    Parameters
    ----------
    weight : float32[out_features, in_features]
    bias : float32[out_features] or None
    activation : str or Activation, default "linear"
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    activation: Activation | str | None = "linear"
    _arrays = ("weight", "bias")

    def __post_init__(self):
        w = _f32("weight", self.weight, None, owner="Dense")
        if w.ndim != 2 or 0 in w.shape:
            raise ValueError(f"Dense.weight: expected a non-empty 2-D [out, in] array, "
                             f"got shape {w.shape}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", _opt_f32("bias", self.bias, (w.shape[0],), owner="Dense"))
        object.__setattr__(self, "activation", as_activation(self.activation))

    input_size = property(lambda self: self.weight.shape[1])
    output_size = property(lambda self: self.weight.shape[0])

    def macs(self) -> int:
        return self.weight.size


@dataclass(frozen=True, eq=False)
class _Recurrent(_Layer):
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray | None = None
    bias_hh: np.ndarray | None = None
    _gates = 1

    def _check_weights(self):
        name = type(self).__name__
        whh = _f32("weight_hh", self.weight_hh, None, owner=name)
        if whh.ndim != 2 or whh.shape[1] == 0:
            raise ValueError(f"{name}.weight_hh: expected [{self._gates}*H, H], got {whh.shape}")
        h = whh.shape[1]
        g = self._gates
        if whh.shape != (g * h, h):
            raise ValueError(f"{name}.weight_hh: expected shape {(g * h, h)} "
                             f"({g} gates x hidden_size {h}), got {whh.shape}")
        wih = _f32("weight_ih", self.weight_ih, None, owner=name)
        if wih.ndim != 2 or wih.shape[0] != g * h or wih.shape[1] == 0:
            raise ValueError(f"{name}.weight_ih: expected shape ({g * h}, input_size), "
                             f"got {wih.shape}")
        object.__setattr__(self, "weight_ih", wih)
        object.__setattr__(self, "weight_hh", whh)
        for b in ("bias_ih", "bias_hh"):
            object.__setattr__(self, b, _opt_f32(b, getattr(self, b), (g * h,), owner=name))

    hidden_size = property(lambda self: self.weight_hh.shape[1])
    input_size = property(lambda self: self.weight_ih.shape[1])
    output_size = property(lambda self: self.weight_hh.shape[1])

    def macs(self) -> int:
        return self.weight_ih.size + self.weight_hh.size


@dataclass(frozen=True, eq=False)
class RNN(_Recurrent):
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
    _arrays = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    state_names = ("h",)

    def __post_init__(self):
        self._check_weights()
        object.__setattr__(self, "nonlinearity", as_activation(self.nonlinearity))
        object.__setattr__(self, "clip", _clip("clip", self.clip, owner="RNN"))


def _acts(name, acts, n):
    acts = tuple(as_activation(a) for a in acts)
    if len(acts) != n:
        raise ValueError(f"{name}.activations: expected {n} activations, got {len(acts)}")
    if any(a.name in VECTOR for a in acts):
        raise ValueError(f"{name}.activations: {[a.name for a in acts]} includes a vector "
                         f"activation; gate activations are elementwise")
    return acts


@dataclass(frozen=True, eq=False)
class LSTM(_Recurrent):
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
    _gates = 4
    _arrays = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "peephole")
    state_names = ("h", "c")

    def __post_init__(self):
        self._check_weights()
        h = self.hidden_size
        object.__setattr__(self, "peephole",
                           _opt_f32("peephole", self.peephole, (3, h), owner="LSTM"))
        object.__setattr__(self, "cell_clip", _clip("cell_clip", self.cell_clip, owner="LSTM"))
        object.__setattr__(self, "clip", _clip("clip", self.clip, owner="LSTM"))
        object.__setattr__(self, "input_forget", bool(self.input_forget))
        object.__setattr__(self, "activations", _acts("LSTM", self.activations, 3))


@dataclass(frozen=True, eq=False)
class GRU(_Recurrent):
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
    _gates = 3
    _arrays = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    state_names = ("h",)

    def __post_init__(self):
        self._check_weights()
        object.__setattr__(self, "linear_before_reset", bool(self.linear_before_reset))
        object.__setattr__(self, "clip", _clip("clip", self.clip, owner="GRU"))
        object.__setattr__(self, "activations", _acts("GRU", self.activations, 2))


@dataclass(frozen=True, eq=False)
class Embedding(_Layer):
    """Token lookup ``y = weight[token]``; as first layer the model takes token ids.

    Parameters
    ----------
    weight : float32[num_embeddings, embedding_dim]
    """

    weight: np.ndarray
    _arrays = ("weight",)

    def __post_init__(self):
        w = _f32("weight", self.weight, None, owner="Embedding")
        if w.ndim != 2 or 0 in w.shape:
            raise ValueError(f"Embedding.weight: expected a non-empty 2-D array, got {w.shape}")
        object.__setattr__(self, "weight", w)

    input_size = property(lambda self: 1)
    output_size = property(lambda self: self.weight.shape[1])
    num_embeddings = property(lambda self: self.weight.shape[0])

    def macs(self) -> int:
        return 0
