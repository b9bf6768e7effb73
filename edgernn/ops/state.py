"""State: a tensor carried from one step to the next (generic stream state).

``s = edgernn.state(128, name="h")`` is, at step ``t``, the value that the
model's update for ``s`` had at step ``t - 1`` (zeros after ``reset()``, or the
model's ``initial_state``). The update is given when the model is built::

    h = edgernn.state(128, name="h")
    h_new = edgernn.GRU(...)(...)                   # anything computed from h and the inputs
    model = edgernn.Model(inputs=x, outputs=y, updates={h: h_new})

No kernel: the planner gives ``s`` a slot in the stream's state arena (a state
span, named ``s``'s name in ``get_state``/``set_state``), and after the step's
outputs a copy row writes the update's value into it. Exported models' state
inputs and outputs (DTLN's ``[1, 2, 128, 2]``, Silero's ``[2, 1, 128]``) map onto
such tensors in whatever flat layout the converter chooses.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelFormatError
from .base import Op, Schema, set_count
from .registry import register


@register
@dataclass(frozen=True, eq=False)
class State(Op):
    """A state tensor of ``size`` floats (see module docstring).

    Parameters
    ----------
    size : int
    """

    size: int
    schema = {"size": Schema.INT}
    arity = 0
    carried = True
    #: the state vector is the op's output slot
    output_state = ""

    def __post_init__(self):
        set_count(self, "size")

    def output_size_for(self, sizes):
        if sizes:
            raise ModelFormatError(f"State takes no inputs, got {len(sizes)}")
        return self.size

    def state_vectors(self):
        return (("", self.size),)

