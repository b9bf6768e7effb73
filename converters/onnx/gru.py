"""ONNX ``GRU`` -> :class:`edgernn.GRU`.

ONNX stacks the gates z, r, h; edgernn (PyTorch) uses r, z, n.
``linear_before_reset=1`` is PyTorch's variant (edgernn's default);
``linear_before_reset=0`` (the ONNX default) applies the reset gate before the
recurrent matmul. ``activations`` (f, g) and ``clip`` map one to one.
"""

from __future__ import annotations

import edgernn

from ..common.gates import reorder
from .recurrent import convert_recurrent


def _make(ctx, node, w, r, wb, rb, p, acts, clip, at):
    lbr = int(at.get("linear_before_reset", 0))
    if lbr not in (0, 1):
        raise ctx.unsupported(node, f"linear_before_reset={lbr}; supported: 0, 1")
    w, r, wb, rb = (reorder(a, "onnx", "GRU") for a in (w, r, wb, rb))
    return edgernn.GRU(w, r, wb, rb, linear_before_reset=bool(lbr), clip=clip,
                       activations=acts)


SPEC = {"gates": 3, "attrs": ("linear_before_reset",), "acts": 2,
        "default_acts": ("Sigmoid", "Tanh"), "make": _make}


def convert_gru(ctx, node, ins):
    """The ONNX GRU node -> one GRU or Bidirectional layer; outputs Y, Y_h."""
    return convert_recurrent(ctx, node, SPEC)
