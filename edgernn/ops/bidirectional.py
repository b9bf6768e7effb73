"""Whole-sequence ops: Bidirectional and Reverse.

They run a recurrent op over the sequence reversed in time, so they need the
whole sequence: a model holding one runs with ``Stream.run`` only (``step``
raises :class:`edgernn.StreamError`). ``Stream.run`` runs each of them as its
own pass over the sequence between the step-able parts of the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelFormatError
from .base import Op, Schema
from .recurrent import Recurrent
from .registry import register

_MERGE = ("concat", "sum", "mul", "ave")


def _inner(name, config, arrays, prefix):
    from .registry import op_from_config

    sub = config[name]
    if not isinstance(sub, dict) or set(sub) != {"type", "config"}:
        raise ModelFormatError(f"{prefix}.{name}: expected an object with type and config")
    mine = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(name + ".")}
    op = op_from_config(sub["type"], sub["config"], mine)
    if not isinstance(op, Recurrent):
        raise ModelFormatError(f"{prefix}.{name}: expected RNN, LSTM or GRU, got "
                               f"{sub['type']!r}")
    return op


@register
@dataclass(frozen=True, eq=False)
class Bidirectional(Op):
    """Runs ``forward`` over the sequence and ``backward`` over it reversed.

    Parameters
    ----------
    forward, backward : RNN, LSTM or GRU with equal input and hidden sizes
    merge_mode : "concat" (output 2H), "sum", "mul" or "ave" (output H)
    return_sequences : bool
        False: one output row, the merge of the forward layer's last output and
        the backward layer's last output (its output at time 0), as Keras does.
    """

    forward: Recurrent
    backward: Recurrent
    merge_mode: str = "concat"
    return_sequences: bool = True
    streamable = False
    schema = {"merge_mode": Schema.STR, "return_sequences": Schema.BOOL,
              "forward": "nested", "backward": "nested"}

    def __post_init__(self):
        for name in ("forward", "backward"):
            if not isinstance(getattr(self, name), Recurrent):
                raise ModelFormatError(f"Bidirectional.{name}: expected RNN, LSTM or GRU, got "
                                       f"{type(getattr(self, name)).__name__}")
        f, b = self.forward, self.backward
        if (f.input_size, f.hidden_size) != (b.input_size, b.hidden_size):
            raise ModelFormatError(f"Bidirectional: forward is {f.input_size}->{f.hidden_size} "
                                   f"but backward is {b.input_size}->{b.hidden_size}")
        if self.merge_mode not in _MERGE:
            raise ModelFormatError(f"Bidirectional.merge_mode: expected one of {_MERGE}, "
                                   f"got {self.merge_mode!r}")
        object.__setattr__(self, "return_sequences", bool(self.return_sequences))

    input_size = property(lambda self: self.forward.input_size)
    output_size = property(lambda self: self.forward.hidden_size
                           * (2 if self.merge_mode == "concat" else 1))

    def inner(self):
        return (("forward", self.forward), ("backward", self.backward))

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
        if not isinstance(config, dict) or set(config) != set(cls.schema):
            raise ModelFormatError(f"Bidirectional.config: expected keys {sorted(cls.schema)}")
        Schema.check("Bidirectional", "merge_mode", Schema.STR, config["merge_mode"])
        Schema.check("Bidirectional", "return_sequences", Schema.BOOL,
                     config["return_sequences"])
        return cls(_inner("forward", config, arrays, "Bidirectional"),
                   _inner("backward", config, arrays, "Bidirectional"),
                   config["merge_mode"], config["return_sequences"])

    def macs(self) -> int:
        return self.forward.macs() + self.backward.macs()

    def expected_params(self) -> int:
        return self.forward.expected_params() * 2


@register
@dataclass(frozen=True, eq=False)
class Reverse(Op):
    """Runs ``layer`` over the sequence reversed in time; outputs are put back in
    time order (ONNX ``direction="reverse"``). Whole-sequence only.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
    """

    layer: Recurrent
    streamable = False
    schema = {"layer": "nested"}

    def __post_init__(self):
        if not isinstance(self.layer, Recurrent):
            raise ModelFormatError(f"Reverse.layer: expected RNN, LSTM or GRU, got "
                                   f"{type(self.layer).__name__}")

    input_size = property(lambda self: self.layer.input_size)
    output_size = property(lambda self: self.layer.output_size)

    def inner(self):
        return (("reverse", self.layer),)

    def arrays(self):
        return {f"layer.{k}": v for k, v in self.layer.arrays().items()}

    def config(self):
        return {"layer": {"type": type(self.layer).__name__, "config": self.layer.config()}}

    @classmethod
    def from_parts(cls, config, arrays):
        if not isinstance(config, dict) or set(config) != {"layer"}:
            raise ModelFormatError("Reverse.config: expected exactly the key 'layer'")
        return cls(_inner("layer", config, arrays, "Reverse"))

    def macs(self) -> int:
        return self.layer.macs()

    def expected_params(self) -> int:
        return self.layer.expected_params()
