"""ONNX ``RNN`` -> :class:`edgernn.RNN` (``h' = f(W x + Wb + R h + Rb)``)."""

from __future__ import annotations

import edgernn

from .recurrent import convert_recurrent


def _make(ctx, node, w, r, wb, rb, p, acts, clip, at):
    return edgernn.RNN(w, r, wb, rb, nonlinearity=acts[0], clip=clip)


SPEC = {"gates": 1, "attrs": (), "acts": 1, "default_acts": ("Tanh",), "make": _make}


def convert_rnn(ctx, node, ins):
    """The ONNX RNN node -> one RNN or Bidirectional layer; outputs Y, Y_h."""
    return convert_recurrent(ctx, node, SPEC)
