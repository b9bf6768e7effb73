"""The table of every op kind: its name in model files -> its class.

Each class is the whole registry entry of its kind: config schema and
validation (``from_parts``), sizes (``output_size_for``), state
(``state_vectors``), scratch (``scratch_floats``) and packing into the engine's
arenas and op table (``pack``, which sets the kernel opcode). Adding an op kind
means: a module in :mod:`edgernn.ops`, a kernel in :mod:`edgernn.kernels`, one
line in the engine's dispatch, and one entry here.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation
from .errors import ModelFormatError
from .ops.bidirectional import Bidirectional, Reverse
from .ops.concat import Concat
from .ops.dense import Dense
from .ops.elementwise import Add, Mul, Sub
from .ops.embedding import Embedding
from .ops.gru import GRU
from .ops.lstm import LSTM
from .ops.rnn import RNN
from .ops.slice import Slice

OPS: dict[str, type] = {cls.__name__: cls for cls in (
    Dense, RNN, LSTM, GRU, Embedding, Activation, Concat, Slice, Add, Sub, Mul,
    Bidirectional, Reverse)}


def op_from_config(type_name: str, config: dict, arrays: dict[str, np.ndarray]):
    """Rebuild an op from its manifest entry; any inconsistency is a ModelFormatError."""
    cls = OPS.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ModelFormatError(f"unknown op type {type_name!r}; expected one of {sorted(OPS)}")
    try:
        return cls.from_parts(config, arrays)
    except ModelFormatError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ModelFormatError(f"invalid {type_name}: {exc}") from exc
