"""Whole-sequence wrappers (Bidirectional, Reverse) and the layer registry.

These layers run a recurrent layer over the sequence reversed in time, so they
need the whole sequence: a model holding one is run with ``Stream.run`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .errors import ModelFormatError
from .layers import GRU, LSTM, RNN, Dense, Embedding, _Layer, _Recurrent

__all__ = ["Bidirectional", "Reverse", "LAYER_TYPES", "layer_from_config"]

_MERGE = ("concat", "sum", "mul", "ave")


@dataclass(frozen=True, eq=False)
class Bidirectional(_Layer):
    """Runs ``forward`` over the sequence and ``backward`` over it reversed.

    Whole-sequence only (``Stream.run``); ``Stream.step`` on a model holding one
    raises :class:`edgernn.StreamError`.

    Parameters
    ----------
    forward, backward : RNN, LSTM or GRU with equal input and hidden sizes
    merge_mode : "concat" (output 2H), "sum", "mul" or "ave" (output H)
    return_sequences : bool
        False: one output row, the merge of the forward layer's last output and
        the backward layer's last output (its output at time 0), as Keras does.
    """

    forward: _Recurrent
    backward: _Recurrent
    merge_mode: str = "concat"
    return_sequences: bool = True

    def __post_init__(self):
        for name in ("forward", "backward"):
            if not isinstance(getattr(self, name), _Recurrent):
                raise ValueError(f"Bidirectional.{name}: expected RNN, LSTM or GRU, "
                                 f"got {type(getattr(self, name)).__name__}")
        f, b = self.forward, self.backward
        if (f.input_size, f.hidden_size) != (b.input_size, b.hidden_size):
            raise ValueError(f"Bidirectional: forward is {f.input_size}->{f.hidden_size} but "
                             f"backward is {b.input_size}->{b.hidden_size}")
        if self.merge_mode not in _MERGE:
            raise ValueError(f"Bidirectional.merge_mode: expected one of {_MERGE}, "
                             f"got {self.merge_mode!r}")
        object.__setattr__(self, "return_sequences", bool(self.return_sequences))

    input_size = property(lambda self: self.forward.input_size)
    output_size = property(lambda self: self.forward.hidden_size
                           * (2 if self.merge_mode == "concat" else 1))

    def arrays(self):
        out = {f"forward.{k}": v for k, v in self.forward.arrays().items()}
        out.update({f"backward.{k}": v for k, v in self.backward.arrays().items()})
        return out

    def config(self):
        return {"merge_mode": self.merge_mode, "return_sequences": self.return_sequences,
                "forward": {"type": type(self.forward).__name__, "config": self.forward.config()},
                "backward": {"type": type(self.backward).__name__,
                             "config": self.backward.config()}}

    @classmethod
    def from_parts(cls, config, arrays):
        parts = {}
        for d in ("forward", "backward"):
            sub = config[d]
            sub_arrays = {k.split(".", 1)[1]: v for k, v in arrays.items()
                          if k.startswith(d + ".")}
            parts[d] = layer_from_config(sub["type"], sub["config"], sub_arrays)
        return cls(parts["forward"], parts["backward"], config["merge_mode"],
                   config["return_sequences"])

    def macs(self) -> int:
        return self.forward.macs() + self.backward.macs()


@dataclass(frozen=True, eq=False)
class Reverse(_Layer):
    """Runs ``layer`` over the sequence reversed in time; outputs are put back in
    time order (ONNX ``direction="reverse"``). Whole-sequence only, like
    :class:`Bidirectional`.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
    """

    layer: _Recurrent

    def __post_init__(self):
        if not isinstance(self.layer, _Recurrent):
            raise ValueError(f"Reverse.layer: expected RNN, LSTM or GRU, got "
                             f"{type(self.layer).__name__}")

    input_size = property(lambda self: self.layer.input_size)
    output_size = property(lambda self: self.layer.output_size)

    def arrays(self):
        return {f"layer.{k}": v for k, v in self.layer.arrays().items()}

    def config(self):
        return {"layer": {"type": type(self.layer).__name__, "config": self.layer.config()}}

    @classmethod
    def from_parts(cls, config, arrays):
        sub = config["layer"]
        inner = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("layer.")}
        return cls(layer_from_config(sub["type"], sub["config"], inner))

    def macs(self) -> int:
        return self.layer.macs()


LAYER_TYPES: dict[str, type] = {c.__name__: c for c in
                                (Dense, RNN, LSTM, GRU, Embedding, Bidirectional, Reverse)}


def layer_from_config(type_name: str, config: dict, arrays: dict[str, np.ndarray]):
    """Rebuild a layer from its manifest entry; any inconsistency is a ModelFormatError."""
    if type_name == "Activation":
        try:
            return Activation(**config)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"invalid Activation layer: {exc}") from exc
    cls = LAYER_TYPES.get(type_name)
    if cls is None:
        raise ModelFormatError(f"unknown layer type {type_name!r}; expected one of "
                               f"{sorted(LAYER_TYPES)}")
    try:
        return cls.from_parts(config, arrays)
    except ModelFormatError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ModelFormatError(f"invalid {type_name} layer: {exc}") from exc


