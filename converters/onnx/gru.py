"""ONNX ``GRU`` -> :class:`edgernn.GRU`.

ONNX stacks the gates z, r, h; edgernn (PyTorch) uses r, z, n.
``linear_before_reset=1`` is PyTorch's variant (edgernn's default);
``linear_before_reset=0`` (the ONNX default) applies the reset gate before the
recurrent matmul. ``activations`` (f, g) and ``clip`` map one to one.
"""

from __future__ import annotations

import edgernn

from .lstm import reorder
from .recurrent import convert_recurrent

_GATES = [1, 0, 2]  # ONNX z, r, h -> edgernn r, z, n


def _make(ctx, node, w, r, wb, rb, p, acts, clip, at):
    lbr = int(at.get("linear_before_reset", 0))
    if lbr not in (0, 1):
        raise ctx.unsupported(node, f"linear_before_reset={lbr}; supported: 0, 1")
    return edgernn.GRU(reorder(w, _GATES, 3), reorder(r, _GATES, 3), reorder(wb, _GATES, 3),
                       reorder(rb, _GATES, 3), linear_before_reset=bool(lbr), clip=clip,
                       activations=acts)


SPEC = {"gates": 3, "attrs": ("linear_before_reset",), "acts": 2,
        "default_acts": ("Sigmoid", "Tanh"), "make": _make, "states": ("h",)}


def convert_gru(ctx, node, ins):
    """The ONNX GRU node -> one GRU or Bidirectional layer; outputs Y, Y_h."""
    return convert_recurrent(ctx, node, SPEC)
