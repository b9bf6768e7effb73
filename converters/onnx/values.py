"""Symbolic values the graph walker tracks in place of real tensors.

The walker never runs the graph. Each ONNX value name is bound to one of:

============  ==============================================================
class         stands for
============  ==============================================================
Const         a tensor known at conversion time (initializer, Constant, folded)
Seq           data: an edgernn Tensor (the per-step feature vector) whose
              ONNX tensor has the labelled axes ``axes``
ShapeOf       an integer tensor computed from runtime shapes (Shape chains)
Zeros         an all-zero tensor of runtime shape (zero initial states)
StateIn       a graph input (or a slice of it) that carries recurrent state
StateOut      recurrent state leaving a recurrent node (``Y_h`` / ``Y_c``)
Frames        a convolution cache held frame by frame (an object array of Seq)
Norm          the L2 norm (or sum of squares) of a Seq over its features
Opaque        an output edgernn does not model (Dropout's mask)
============  ==============================================================

Axis labels of a :class:`Seq`: ``"T"`` time, ``"B"`` batch, ``"D"`` direction
(the ``num_directions`` axis of an RNN op's ``Y``), ``"F"`` features, ``"U"``
an inserted unit axis, and ``"?k"`` an axis of a data graph input whose
meaning the first recurrent node decides (see ``Context.label``).

Recurrent state is named ``"<node name>.<suffix>"`` in a stream, but node
names are given only when the model is built, after folding: until then a
state is a :class:`StateRef` to the node's tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from edgernn.ir.graph import Tensor


@dataclass(frozen=True)
class Const:
    """A tensor known at conversion time."""

    value: np.ndarray


@dataclass(frozen=True)
class Seq:
    """Data: ``tensor`` holds the features of one step; ``axes``/``sizes`` label the
    ONNX tensor's axes (size None = runtime).

    ``last``: the time axis was reduced to its last step. ``tokens``: integer
    ids (no feature axis yet). ``square_of``: this is ``x * x`` of that Seq (an
    L2 norm may be summed from it).
    """

    tensor: Tensor
    axes: tuple
    sizes: tuple
    last: bool = False
    tokens: bool = False
    square_of: Seq | None = None

    def with_axes(self, axes, sizes, **kw) -> Seq:
        return replace(self, axes=tuple(axes), sizes=tuple(sizes), square_of=None, **kw)

    def with_tensor(self, tensor: Tensor, sizes=None, **kw) -> Seq:
        """The same axes holding the output of a per-step op."""
        return replace(self, tensor=tensor, sizes=self.sizes if sizes is None else
                       tuple(sizes), square_of=None, **kw)


@dataclass(frozen=True)
class ShapeOf:
    """An integer tensor derived from runtime shapes.

    ``probes``: its value computed twice, with each runtime dimension set to two
    different large primes (None: not known). Where the two agree the entry does not
    depend on a runtime size; a Reshape target that differs in one entry only is that
    entry inferred (``-1``), exactly as ONNX infers it (the dynamo exporter's
    ``Reshape(y, Concat(Shape(y)[:2], Shape(y)[2] * Shape(y)[3]))``).
    """

    probes: tuple | None = None


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
    #: paired with a graph output by the caller or by name (generic state: read as
    #: data through edgernn.state tensors, see converters.onnx.statepack)
    generic: bool = False


@dataclass(frozen=True)
class StateRef:
    """One state vector of a recurrent node: ``suffix`` is ``"h"``, ``"c"``,
    ``"reverse.h"``, ``"forward.h"``, ``"backward.c"``, ..."""

    tensor: Tensor
    suffix: str


@dataclass(frozen=True)
class StateOut:
    """State leaving recurrent nodes: ``parts`` = one :class:`StateRef` per row of
    the ``"R"`` axis; ``axes`` labels among R, B, F, U."""

    parts: tuple
    axes: tuple
    hidden: int


@dataclass(frozen=True)
class Norm:
    """``ReduceL2`` (``squared``: ``ReduceSumSquare``) of ``seq`` over its feature
    axis, kept as a unit axis, floored at ``floor`` (Clip/Max; same units)."""

    seq: Seq
    squared: bool = False
    floor: float = 0.0


@dataclass(frozen=True)
class TimePadded:
    """``seq`` with ``frames`` zero frames before its first time step (a ``Pad`` of the
    time axis): only a convolution over time may take it (a causal convolution)."""

    seq: Seq
    frames: int
    producer: str = ""


@dataclass(frozen=True)
class TimeExtended:
    """``seq`` followed by ``frames`` time steps that only a convolution's own right
    padding made (``Conv(pads=[p, p])`` over time, the first ``p`` causal): a Slice
    dropping exactly those last frames (a TCN's ``Chomp1d``) gives ``seq``."""

    seq: Seq
    frames: int
    producer: str = ""


@dataclass(frozen=True, eq=False)
class Frames:
    """A convolution cache held frame by frame (:mod:`converters.onnx.cache`): ``cells``
    is an object array shaped as the ONNX tensor except along the axes every cell holds
    (its axes longer than 1: channels, frequency), each cell a :class:`Seq` of the same
    rank, of size 1 along the other axes (time, the packing axes of a cache tensor)."""

    cells: np.ndarray
    producer: str = ""

    @property
    def first(self) -> Seq:
        return self.cells.flat[0]

    @property
    def axes(self) -> tuple:
        return self.first.axes

    def held(self, k: int) -> bool:
        """Axis ``k`` is inside each cell."""
        return self.first.sizes[k] not in (None, 1)

    def size(self, k: int):
        return self.first.sizes[k] if self.held(k) else self.cells.shape[k]


@dataclass(frozen=True)
class Opaque:
    """An output the converter does not model (e.g. Dropout's mask)."""

    producer: str
