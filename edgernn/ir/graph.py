"""Models as graphs of named tensors, and the functional API that builds them.

    x = edgernn.Input(42, name="features")
    d = edgernn.Dense(w, b, activation="tanh")(x)
    g1 = edgernn.GRU(...)(d, name="gru1")
    g2 = edgernn.GRU(...)(edgernn.concat([x, d, g1]))
    model = edgernn.Model(inputs=x, outputs=[gains, vad])

Every tensor is a float32 vector per timestep. A :class:`Tensor` is either a
model input or the output of one op applied to other tensors; creating one
checks the sizes at once. A model's nodes run in the order they were created,
which is always a topological order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..errors import ModelFormatError

__all__ = ["Tensor", "Input", "node", "Graph"]

_ids = itertools.count()


class Tensor:
    """A float32 vector per timestep: a model input, or an op's output.

    Attributes
    ----------
    op : the op that produces it (None for a model input)
    inputs : tuple of Tensor
    name : str or None (a model names unnamed nodes by their position)
    size : int
    """

    __slots__ = ("op", "inputs", "name", "size", "order")

    def __init__(self, op, inputs, name, size):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ModelFormatError(f"a tensor name must be a non-empty string without '/', "
                                   f"got {name!r}")
        self.op, self.inputs, self.name, self.size = op, tuple(inputs), name, int(size)
        self.order = next(_ids)

    def __repr__(self) -> str:
        what = "Input" if self.op is None else type(self.op).__name__
        return f"<Tensor {self.name or '?'}: {what}, size {self.size}>"


def Input(size: int, name: str | None = None) -> Tensor:  # noqa: N802 (Keras' name)
    """A model input: a float32 vector of ``size`` per timestep (``size`` 1 for the
    token ids an Embedding takes)."""
    try:
        size = int(size)
    except (TypeError, ValueError):
        raise ModelFormatError(f"Input: expected a positive integer size, got {size!r}") \
            from None
    if size < 1:
        raise ModelFormatError(f"Input: expected a positive integer size, got {size}")
    return Tensor(None, (), name, size)


def node(op, inputs, name=None) -> Tensor:
    """``op`` applied to ``inputs`` (Tensors): the new output tensor."""
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
        inputs = tuple(inputs[0])
    for t in inputs:
        if not isinstance(t, Tensor):
            raise ModelFormatError(f"{type(op).__name__}: expected Tensor inputs (from "
                                   f"edgernn.Input or another op), got {type(t).__name__}")
    arity = op.arity
    if (arity is None and not inputs) or (arity is not None and len(inputs) != arity):
        raise ModelFormatError(f"{type(op).__name__} takes {arity or 'one or more'} "
                               f"input(s), got {len(inputs)}")
    try:
        size = op.output_size_for(tuple(t.size for t in inputs))
    except ModelFormatError as exc:
        raise ModelFormatError(f"{name or type(op).__name__}: {exc}") from None
    return Tensor(op, inputs, name, size)


@dataclass(frozen=True, eq=False)
class Graph:
    """A validated graph: named inputs, nodes in run order, named outputs."""

    inputs: tuple
    nodes: tuple
    outputs: tuple
    #: (state tensor, the tensor whose value it takes for the next step), see edgernn.State
    updates: tuple = ()

    @classmethod
    def build(cls, inputs, outputs, updates=()) -> Graph:
        """Collect the nodes between ``inputs`` and ``outputs`` (and the state updates),
        name the unnamed ones (by position: "0", "1", ...) and check the result."""
        inputs, outputs = tuple(inputs), tuple(outputs)
        updates = tuple(dict(updates).items()) if isinstance(updates, dict) else tuple(updates)
        for s, v in updates:
            if not (isinstance(s, Tensor) and isinstance(v, Tensor)):
                raise ModelFormatError(f"updates: expected state Tensor -> Tensor pairs, got "
                                       f"{type(s).__name__} -> {type(v).__name__}")
            if s.op is None or not s.op.carried:
                raise ModelFormatError(f"updates: {s!r} is not a state tensor "
                                       f"(edgernn.state)")
            if s.size != v.size:
                raise ModelFormatError(f"updates: state {s.name or '?'!r} has size {s.size}, "
                                       f"its update {v.size}")
        if len({id(s) for s, _ in updates}) != len(updates):
            raise ModelFormatError("updates: a state is given two updates")
        if not inputs or not outputs:
            raise ModelFormatError("a model needs at least one input and one output")
        for t in inputs + outputs:
            if not isinstance(t, Tensor):
                raise ModelFormatError(f"model inputs and outputs must be Tensors, got "
                                       f"{type(t).__name__}")
        for t in inputs:
            if t.op is not None:
                raise ModelFormatError(f"model input {t!r} is not an edgernn.Input")
        seen, stack = {}, list(outputs) + [v for _, v in updates] + [s for s, _ in updates]
        while stack:
            t = stack.pop()
            if id(t) in seen:
                continue
            seen[id(t)] = t
            if t.op is None and not any(t is i for i in inputs):
                raise ModelFormatError(f"the outputs depend on input {t.name or '?'!r}, which "
                                       f"is not among the model's inputs")
            stack.extend(t.inputs)
        nodes = sorted((t for t in seen.values() if t.op is not None), key=lambda t: t.order)
        used = {t.name for t in list(seen.values()) + list(inputs) if t.name is not None}
        counter = itertools.count()
        for t in nodes:
            if t.name is None:
                name = str(next(counter))
                while name in used:
                    name = str(next(counter))
                t.name = name
                used.add(name)
        for i, t in enumerate(inputs):
            if t.name is None:
                t.name = "input" if len(inputs) == 1 else f"input{i}"
        names = [t.name for t in list(inputs) + nodes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ModelFormatError(f"tensor names must be unique; repeated: {dup}")
        if len({id(t) for t in outputs}) != len(outputs):
            raise ModelFormatError("an output is listed twice")
        states = [t for t in nodes if t.op.carried]
        missing = [t.name for t in states if not any(s is t for s, _ in updates)]
        if missing:
            raise ModelFormatError(f"state tensors {missing} have no update; give "
                                   f"Model(..., updates={{state: new_value}})")
        return cls(inputs, tuple(nodes), outputs, updates)
