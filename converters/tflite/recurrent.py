"""A fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` in a graph walked one step at a time.

Called once per step, the LSTM sees one step ``[1, 1, I]``; its state lives in
variable tensors that LiteRT keeps from call to call, as an edgernn stream keeps
the LSTM's ``h`` and ``c``. An LSTM whose state is not variable starts from zero
at every call in LiteRT: edgernn would carry it, so it is refused.
"""

from __future__ import annotations

from edgernn.errors import UnsupportedOpError

from .fused_lstm import convert_fused_lstm, state_persists


def _lstm(w, op):
    x = w.data(op, 0)
    if x.ndim != 3 or x.shape[:2] != (1, 1):
        raise UnsupportedOpError(f"{op}: input {list(x.shape)} in a graph called once per "
                                 f"step; supported: one step [1, 1, I]")
    if not state_persists(w.sg, op):
        raise UnsupportedOpError(f"{op}: its state is not kept between calls (no variable "
                                 f"state tensors): LiteRT starts it from zero at every step, "
                                 f"an edgernn stream carries it; supported: a stateful LSTM")
    y = w.apply(op, [convert_fused_lstm(w.sg, op)], w.tensor(op, x))
    return [w.wrap(op, y, w.out_shape(op))]


WALK = {"UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm}

__all__ = ["WALK"]
