"""Symbolic values the graph walker tracks in place of real tensors.

The walker never runs the graph. Each ONNX value name is bound to one of:

============  ==============================================================
class         stands for
============  ==============================================================
Const         a tensor known at conversion time (initializer, Constant, folded)
Seq           the data flowing through the layer chain, with labelled axes
ShapeOf       an integer tensor computed from runtime shapes (Shape chains)
Zeros         an all-zero tensor of runtime shape (zero initial states)
StateIn       a graph input (or a slice of it) that carries recurrent state
StateOut      recurrent state leaving a recurrent node (``Y_h`` / ``Y_c``)
Squared       a Seq squared elementwise (``x * x``, ``Pow(x, 2)``)
Norm          the L2 norm (or sum of squares) of a Seq over its features
============  ==============================================================

Axis labels of a :class:`Seq`: ``"T"`` time, ``"B"`` batch, ``"D"`` direction
(the ``num_directions`` axis of an RNN op's ``Y``), ``"F"`` features, ``"U"``
an inserted unit axis, and ``"?k"`` an axis of the data graph input whose
meaning the first recurrent node decides (see ``Context.label``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Const:
    """A tensor known at conversion time."""

    value: np.ndarray


@dataclass(frozen=True)
class Seq:
    """The chain's data: ``axes``/``sizes`` per axis (size None = runtime).

    ``pos`` is the chain's ``Context.head`` when the value was produced: only
    a value with ``pos == head`` may grow the chain or be the graph's output
    (no branches, no use of a value from before a bias was folded in).
    ``last``: the time axis was reduced to its last step. ``tokens``: integer
    ids (no feature axis yet). ``dense_open``: direct output of a Dense layer
    that still has a linear activation, so Add/activations can fold into it.
    """

    axes: tuple
    sizes: tuple
    pos: int
    last: bool = False
    tokens: bool = False
    dense_open: bool = False

    def with_axes(self, axes, sizes, **kw) -> Seq:
        return replace(self, axes=tuple(axes), sizes=tuple(sizes), dense_open=False, **kw)


@dataclass(frozen=True)
class ShapeOf:
    """An integer tensor derived from runtime shapes."""


@dataclass(frozen=True)
class Zeros:
    """An all-zero float tensor of (partly) runtime shape."""


@dataclass(frozen=True)
class StateIn:
    """A graph input carrying recurrent state, possibly sliced.

    ``axes`` lists, per current axis, the graph input's axis it comes from
    (None for an inserted unit axis). ``sel`` maps an original axis to the
    original indices kept along it (missing: all); ``fixed`` maps an original
    axis removed by Gather/Squeeze to its index.
    """

    name: str
    shape: tuple
    axes: tuple
    sel: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StateOut:
    """State leaving recurrent nodes: ``parts`` = stream state name per row of
    the ``"R"`` axis; ``axes`` labels among R, B, F, U."""

    parts: tuple
    axes: tuple
    hidden: int


@dataclass(frozen=True)
class Squared:
    """``seq * seq`` (or ``Pow(seq, 2)``): only summed over the features into a Norm."""

    seq: Seq


@dataclass(frozen=True)
class Norm:
    """``ReduceL2`` (``squared``: ``ReduceSumSquare``) of ``seq`` over its feature
    axis, kept as a unit axis, floored at ``floor`` (Clip/Max; same units)."""

    seq: Seq
    squared: bool = False
    floor: float = 0.0


@dataclass(frozen=True)
class Opaque:
    """An output the converter does not model (e.g. Dropout's mask)."""

    producer: str
