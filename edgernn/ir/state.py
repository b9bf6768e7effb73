"""A copy of a stream's state, by name: what ``get_state`` returns and ``set_state`` takes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, eq=False)
class StreamState:
    """A copy of a stream's recurrent state (h, and c for LSTM, per node).

    Attributes
    ----------
    names : tuple of str     e.g. ``("0.h", "0.c", "1.h")``
    arrays : tuple of float32[hidden_size] arrays, in the same order
    """

    names: tuple
    arrays: tuple

    def copy(self) -> StreamState:
        return StreamState(self.names, tuple(a.copy() for a in self.arrays))

    @property
    def shapes(self):
        return tuple(a.shape for a in self.arrays)
