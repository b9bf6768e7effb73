"""ONNX ``LSTM`` -> :class:`edgernn.LSTM`.

ONNX stacks the gates i, o, f, c in ``W``/``R``/``B`` and the peepholes i, o, f
in ``P``; edgernn (PyTorch) uses i, f, g, o and peephole rows i, f, o
(:mod:`converters.common.gates`).
``activations`` (f, g, h), ``clip`` and ``input_forget`` map one to one.
"""

from __future__ import annotations

import edgernn

from ..common.gates import reorder
from .recurrent import convert_recurrent


def _make(ctx, node, w, r, wb, rb, p, acts, clip, at):
    input_forget = int(at.get("input_forget", 0))
    if input_forget not in (0, 1):
        raise ctx.unsupported(node, f"input_forget={input_forget}; supported: 0, 1")
    h = r.shape[1]
    peep = None if p is None else reorder(p.reshape(3, h), "onnx", "peephole")
    w, r, wb, rb = (reorder(a, "onnx", "LSTM") for a in (w, r, wb, rb))
    return edgernn.LSTM(w, r, wb, rb, peephole=peep, clip=clip,
                        input_forget=bool(input_forget), activations=acts)


SPEC = {"gates": 4, "attrs": ("input_forget",), "acts": 3, "inputs": ("P",),
        "default_acts": ("Sigmoid", "Tanh", "Tanh"), "make": _make}


def convert_lstm(ctx, node, ins):
    """The ONNX LSTM node -> one LSTM or Bidirectional layer; outputs Y, Y_h, Y_c."""
    return convert_recurrent(ctx, node, SPEC)
