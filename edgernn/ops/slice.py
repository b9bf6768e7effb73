"""Slice: ``y = x[start:stop]``.

No kernel and no copy: the output is a view of the input's buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelFormatError
from .base import Op, Schema
from .registry import register


@register
@dataclass(frozen=True, eq=False)
class Slice(Op):
    """Features ``start:stop`` of a tensor (``x[..., a:b]``, ONNX ``Slice``/``Split``).

    Parameters
    ----------
    start, stop : int, 0 <= start < stop
    """

    start: int
    stop: int
    schema = {"start": Schema.INT, "stop": Schema.INT}
    view_start = property(lambda self: self.start)

    def __post_init__(self):
        for k in ("start", "stop"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool):
                try:
                    v = int(v) if int(v) == v else None
                except (TypeError, ValueError):
                    v = None
                if v is None:
                    raise ModelFormatError(f"Slice.{k}: expected an integer, got "
                                           f"{getattr(self, k)!r}")
                object.__setattr__(self, k, v)
        if not 0 <= self.start < self.stop:
            raise ModelFormatError(f"Slice: expected 0 <= start < stop, got "
                                   f"{self.start}:{self.stop}")

    def output_size_for(self, sizes):
        (n,) = sizes
        if self.stop > n:
            raise ModelFormatError(f"Slice {self.start}:{self.stop} is out of range for an "
                                   f"input of size {n}")
        return self.stop - self.start

