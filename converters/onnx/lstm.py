"""ONNX ``LSTM`` -> :class:`edgernn.LSTM`.

ONNX stacks the gates i, o, f, c in ``W``/``R``/``B`` and the peepholes i, o, f
in ``P``; edgernn (PyTorch) uses i, f, g, o and peephole rows i, f, o.
``activations`` (f, g, h), ``clip`` and ``input_forget`` map one to one.
"""

from __future__ import annotations

import numpy as np

import edgernn

from .recurrent import convert_recurrent

_GATES = [0, 2, 3, 1]  # ONNX i, o, f, c -> edgernn i, f, g, o
_PEEP = [0, 2, 1]      # ONNX i, o, f   -> edgernn i, f, o


def reorder(a: np.ndarray, order, n: int) -> np.ndarray:
    """Reorder the ``n`` equal gate blocks along axis 0 of ``a``."""
    blocks = np.split(a, n, axis=0)
    return np.concatenate([blocks[k] for k in order], axis=0)


def _make(ctx, node, w, r, wb, rb, p, acts, clip, at):
    input_forget = int(at.get("input_forget", 0))
    if input_forget not in (0, 1):
        raise ctx.unsupported(node, f"input_forget={input_forget}; supported: 0, 1")
    h = r.shape[1]
    peep = None if p is None else p.reshape(3, h)[_PEEP]
    return edgernn.LSTM(reorder(w, _GATES, 4), reorder(r, _GATES, 4), reorder(wb, _GATES, 4),
                        reorder(rb, _GATES, 4), peephole=peep, clip=clip,
                        input_forget=bool(input_forget), activations=acts)


SPEC = {"gates": 4, "attrs": ("input_forget",), "acts": 3, "inputs": ("P",),
        "default_acts": ("Sigmoid", "Tanh", "Tanh"), "make": _make, "states": ("h", "c")}


def convert_lstm(ctx, node, ins):
    """The ONNX LSTM node -> one LSTM or Bidirectional layer; outputs Y, Y_h, Y_c."""
    return convert_recurrent(ctx, node, SPEC)
