"""The conversion context: bound values, the graph being built and the I/O record."""

from __future__ import annotations

import numpy as np
from onnx import helper

from edgernn.errors import ModelFormatError, UnsupportedOpError

from .values import Const, Frames, Norm, Seq, StateIn, StateOut, TimeExtended, TimePadded


def _reads(node) -> list:
    """The value names ``node`` reads: its inputs and, for ``If``/``Loop``, the outer
    values its subgraphs read."""
    names = list(node.input)
    for a in node.attribute:
        for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            inner = {o for n in g.node for o in n.output} | {t.name for t in g.initializer}
            names += [x for n in g.node for x in _reads(n) if x not in inner]
    return names


def node_desc(node) -> str:
    return f"{node.op_type} node {node.name or '<unnamed>'!r}"


class Context:
    """State of one conversion: ``env`` maps value names to symbolic values.

    Attributes
    ----------
    io : dict
        How graph inputs and outputs map onto the model (see
        :func:`converters.onnx.run_like_onnx`); made JSON-able when the model
        is built (state is referred to by :class:`StateRef` until then) and
        stored in ``model.provenance["onnx_io"]``.
    uses : dict of value name -> number of live nodes (and graph outputs) reading it
    live : set of the indices of the nodes some graph output depends on
    inputs : list of Tensor, the model inputs (one per data graph input)
    recurrent : list of Tensor, the recurrent nodes built so far
    moved : dict of id(Tensor) -> Tensor
        A node rebuilt in another form (a bidirectional node that outputs its
        last step only); its state refers to the new one.
    y_of : dict of id(Tensor) -> the ONNX name of its recurrent node's ``Y``
    no_fold : set of id(Tensor) of nodes that must not fold into the Dense before
        them (a quantised output's clip)
    supported : list of str
        Op types of the registry (for error messages).
    """

    def __init__(self, opset: int, supported, graph=None):
        self.opset = opset
        self.env: dict[str, object] = {}
        self.binding: dict[str, str] = {}
        self.io: dict = {"state_inputs": [], "init_state": [], "sequence_lens": None,
                         "outputs": {}, "data": [], "onestep": False}
        #: generic state read from graph inputs: key -> (edgernn.state tensor, index)
        self.generic: dict = {}
        #: generic state: graph input name -> the graph output that gives it back
        self.pairs: dict = {}
        #: every data input has a fully known shape (given or declared)
        self.static_inputs = False
        self.supported = sorted(supported)
        self.inputs: list = []
        self.recurrent: list = []
        self.moved: dict = {}
        self.y_of: dict = {}
        self.no_fold: set = set()
        #: delay lines (converters.onnx.conv2d): edgernn.state tensor -> the tensor it
        #: takes at the end of a step; id(tensor) -> [tensor, 1 step ago, 2 steps ago, ...]
        self.delays: dict = {}
        self.delay_lines: dict = {}
        self.uses: dict[str, int] = {}
        self.live: set = set()
        if graph is not None:
            for o in graph.output:
                self.uses[o.name] = self.uses.get(o.name, 0) + 1
            nodes = list(graph.node)
            for k in range(len(nodes) - 1, -1, -1):  # nodes are in topological order
                n = nodes[k]
                if any(o in self.uses for o in n.output if o):
                    self.live.add(k)
                    for name in _reads(n):
                        self.uses[name] = self.uses.get(name, 0) + 1

    # --- errors -----------------------------------------------------------
    def unsupported(self, node, what: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{node_desc(node)}: {what}; supported op types: "
                                  f"{', '.join(self.supported)}")

    def bad(self, node, what: str) -> ModelFormatError:
        return ModelFormatError(f"{node_desc(node)}: {what}")

    # --- attributes and constants -----------------------------------------
    @staticmethod
    def attrs(node) -> dict:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def check_attrs(self, node, allowed) -> dict:
        at = self.attrs(node)
        extra = sorted(set(at) - set(allowed))
        if extra:
            raise self.unsupported(node, f"attribute {extra[0]!r} is not supported "
                                         f"(supported attributes: {sorted(allowed)})")
        return at

    def value(self, name: str):
        if name == "":
            return None
        if name not in self.env:
            raise ModelFormatError(f"value {name!r} is used before it is produced")
        return self.env[name]

    def const(self, node, i: int, what: str, optional: bool = False):
        """Input ``i`` of ``node`` as a numpy array (it must be constant)."""
        name = node.input[i] if i < len(node.input) else ""
        v = self.value(name)
        if v is None:
            if optional:
                return None
            raise self.bad(node, f"input {i} ({what}) is missing")
        if not isinstance(v, Const):
            raise self.unsupported(node, f"input {i} ({what}, {name!r}) must be an initializer "
                                         f"or constant, got a {type(v).__name__} value")
        return v.value

    def ints(self, node, i, attr, at, what):
        """An int list from input ``i`` (opset >= 13 style) or attribute ``attr``
        (None when neither is given)."""
        if i is not None and len(node.input) > i and node.input[i]:
            return [int(v) for v in np.asarray(self.const(node, i, what)).reshape(-1)]
        v = at.get(attr)
        return None if v is None else [int(x) for x in v]

    @staticmethod
    def auto_pad(at) -> str:
        """A convolution's or pool's ``auto_pad`` attribute as a string (``NOTSET`` when
        absent; ONNX stores it as bytes)."""
        auto = at.get("auto_pad", b"NOTSET")
        return auto.decode() if isinstance(auto, bytes) else str(auto)

    def slice_args(self, node) -> tuple:
        """``(starts, ends, axes, steps)`` of a Slice (inputs from opset 10, attributes
        before), ``axes`` and ``steps`` defaulted as ONNX says."""
        at = self.check_attrs(node, ("starts", "ends", "axes", "steps"))
        starts = self.ints(node, 1, "starts", at, "starts")
        ends = self.ints(node, 2, "ends", at, "ends")
        axes = self.ints(node, 3, "axes", at, "axes") or list(range(len(starts)))
        steps = self.ints(node, 4, "steps", at, "steps") or [1] * len(starts)
        return starts, ends, axes, steps

    def rank(self, node, v) -> int:
        """The rank of ``v``, a value with labelled axes (data or state); refuses any
        other (a constant would have been folded; a quantisation parameter has none)."""
        if not hasattr(v, "axes"):
            raise self.unsupported(node, f"its input is a {type(v).__name__} value, not data "
                                         f"or recurrent state")
        return len(v.axes)

    def axes(self, node, axes, rank: int, what: str = "axis") -> list:
        """``axes`` (ints in ``[-rank, rank)``) as indices in ``[0, rank)``; refuses one
        out of range, which ONNX does not allow (a modulo would hide it)."""
        bad = [a for a in axes if not -rank <= a < rank]
        if bad:
            raise self.bad(node, f"{what} {bad[0]} is out of range for a rank-{rank} tensor "
                                 f"(expected {-rank}..{rank - 1})")
        return [a % rank for a in axes]

    # --- the graph --------------------------------------------------------
    def apply(self, node, op, *inputs):
        """``op`` applied to edgernn tensors: the new node's output Tensor."""
        try:
            return op(*inputs)
        except ModelFormatError as exc:
            raise self.bad(node, str(exc)) from None

    def resolve(self, tensor):
        while id(tensor) in self.moved:
            tensor = self.moved[id(tensor)]
        return tensor

    # --- axis labels ------------------------------------------------------
    def label(self, a: str) -> str:
        while a in self.binding:
            a = self.binding[a]
        return a

    def labels(self, seq: Seq) -> tuple:
        return tuple(self.label(a) for a in seq.axes)

    def bind(self, node, var: str, want: str) -> None:
        cur = self.label(var)
        if cur == want:
            return
        if cur.startswith("?"):
            self.binding[cur] = want
            return
        if cur == "U" and want == "B":
            return
        raise self.unsupported(node, f"an axis labelled {cur!r} is used as {want!r} "
                                     f"(time and batch axes got mixed up)")

    def feature_axis(self, node, seq: Seq) -> int:
        """The index of ``seq``'s feature axis; refuses token ids and a bidirectional
        ``Y``'s direction axis (its features are per direction)."""
        labels = self.labels(seq)
        if seq.tokens or "F" not in labels:
            raise self.unsupported(node, "token ids are not features (an Embedding must "
                                         "come first)")
        if any(lab == "D" and s != 1 for lab, s in zip(labels, seq.sizes, strict=True)):
            raise self.unsupported(node, "a per-step op on each direction of a bidirectional "
                                         "Y [T, 2, B, H] (transpose/reshape it to [T, B, 2H] "
                                         "first)")
        return labels.index("F")

    def inner_length(self, seq: Seq) -> int:
        """The length of ``seq``'s ``"L"`` axis: a convolution's output keeps its length
        after its channels (``[N, C, L]``: the step's values are ``(C, L)``, row-major),
        1 when it has none."""
        labels = self.labels(seq)
        return int(seq.sizes[labels.index("L")]) if "L" in labels else 1

    def plain(self, node, seq: Seq) -> int:
        """``feature_axis``, refusing data whose step holds ``(channels, length)`` with a
        length > 1 (only convolutions, slices of channels and elementwise ops take it)."""
        k = self.feature_axis(node, seq)
        if self.inner_length(seq) > 1:
            raise self.unsupported(node, f"{node.op_type} of data whose steps are (channels, "
                                         f"length) = ({seq.sizes[k]}, "
                                         f"{self.inner_length(seq)}); only convolutions, "
                                         f"channel slices and elementwise ops take them")
        return k

    def match(self, node, seqs) -> tuple:
        """Check that data tensors line up axis by axis outside their features (the
        same time and batch axes, both last-step or neither); unlabelled axes of
        graph inputs take each other's meaning. Returns the common sizes (None:
        runtime)."""
        first = seqs[0]
        for s in seqs[1:]:
            if len(s.axes) != len(first.axes) or s.last != first.last:
                raise self.unsupported(node, f"combines data of shapes {list(first.sizes)} "
                                             f"and {list(s.sizes)}"
                                       + (" (one of them the last step only)"
                                          if s.last != first.last else "")
                                       + "; only tensors with the same time and batch axes")
            for k, (a, b) in enumerate(zip(first.axes, s.axes, strict=True)):
                la, lb = self.label(a), self.label(b)
                if la != lb:
                    if la.startswith("?"):
                        self.binding[la] = lb
                    elif lb.startswith("?"):
                        self.binding[lb] = la
                    elif not (first.sizes[k] == 1 and s.sizes[k] == 1):
                        raise self.unsupported(node, f"combines data whose axis {k} is "
                                                     f"{la!r} in one input and {lb!r} in "
                                                     f"another")
        sizes = []
        for k in range(len(first.axes)):
            known = {s.sizes[k] for s in seqs} - {None}
            if len(known) > 1 and self.label(first.axes[k]) != "F":
                raise self.unsupported(node, f"combines data of sizes {sorted(known)} along "
                                             f"axis {k} ({self.label(first.axes[k])!r}); "
                                             f"broadcasting data along it is not supported")
            sizes.append(known.pop() if len(known) == 1 else None)
        return tuple(sizes)

    # --- data and state ---------------------------------------------------
    @staticmethod
    def describe(node) -> str:
        return node_desc(node)

    def as_seq(self, node, v, what: str = "input") -> Seq:
        """``v`` as data, converting the ``Y_h`` of a forward recurrent node (its last
        output) and a slice of a generic state input (an ``edgernn.state`` tensor)."""
        if isinstance(v, StateOut):
            v = self._state_as_seq(node, v)
        if isinstance(v, StateIn) and v.generic:
            from .statepack import state_seq

            v = state_seq(self, node, v)
        if isinstance(v, Norm):  # a norm used as data, not (only) to normalise by
            v = self._norm_as_seq(node, v)
        if isinstance(v, Frames):
            if v.cells.size == 1:
                return v.first
            raise self.unsupported(node, f"{what} is {v.cells.size} frames of a convolution "
                                         f"cache joined with the step's data by {v.producer}; "
                                         f"only a Conv over time, or a Slice, Split, Gather, "
                                         f"Concat, Transpose, Unsqueeze, Squeeze or Scatter "
                                         f"along the axes no frame holds, or a graph output "
                                         f"giving the cache back may take them")
        if isinstance(v, TimePadded):
            raise self.unsupported(node, f"{what} is the time axis padded by {v.producer}; "
                                         f"only a causal convolution over time may take it")
        if isinstance(v, TimeExtended):
            raise self.unsupported(node, f"{what} has {v.frames} time steps past the input's "
                                         f"last that the padding of {v.producer} made; only a "
                                         f"Slice dropping exactly them (a TCN's Chomp1d) may "
                                         f"take it")
        if not isinstance(v, Seq):
            raise self.unsupported(node, f"{what} must be the model's data flow, got a "
                                         f"{type(v).__name__} value")
        return v

    def _norm_as_seq(self, node, v: Norm) -> Seq:
        """``ReduceL2`` (``ReduceSumSquare``) of the features, floored, as a one-value
        step (the feature axis kept with size 1, as ``keepdims=1`` leaves it)."""
        import edgernn

        seq = v.seq
        k = self.plain(node, seq)
        t = self.apply(node, edgernn.Reduce("sum_square" if v.squared else "l2",
                                            seq.sizes[k]), seq.tensor)
        if v.floor > 0:
            t = self.apply(node, edgernn.Unary("max", v.floor), t)
        sizes = list(seq.sizes)
        sizes[k] = 1
        return seq.with_tensor(t, sizes)

    def _state_as_seq(self, node, v: StateOut) -> Seq:
        if len(v.parts) == 1 and "R" not in v.axes and v.parts[0].suffix == "h":
            t = self.resolve(v.parts[0].tensor)
            if t.op.state_vectors() and not t.op.inner():  # a forward recurrent op
                axes = tuple("B" if a == "B" else ("F" if a == "F" else "U") for a in v.axes)
                sizes = tuple(v.hidden if a == "F" else (None if a == "B" else 1) for a in axes)
                return Seq(t, axes, sizes, last=True)
        raise self.unsupported(node, f"uses recurrent state {[p.suffix for p in v.parts]} as "
                                     f"data; only the h state of a forward recurrent node, "
                                     f"one row of Y_h, can stand for its last output")


__all__ = ["Context", "node_desc"]
