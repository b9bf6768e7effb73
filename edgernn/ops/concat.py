"""Concat: ``y = [a; b; ...]`` along the feature axis.

No kernel: the planner places each input inside the concatenated buffer, so the
op producing it writes there directly. Only an input that already lives
elsewhere (a model input or a tensor placed inside another Concat, a Slice)
costs a copy (a ``COPY`` row).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Op
from .registry import register


@register
@dataclass(frozen=True, eq=False)
class Concat(Op):
    """Concatenation of one or more tensors (``torch.cat(dim=-1)``, ONNX ``Concat``)."""

    arity = None
    places_inputs = True

    def output_size_for(self, sizes):
        return int(sum(sizes))

