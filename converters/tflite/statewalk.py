"""A TFLite subgraph walked one step at a time with shaped values.

Used for graphs whose recurrent state is a graph input/output pair (DTLN's
``[1, 2, 128, 2]``: layer, unit, h/c; Silero's ``[2, 1, 128]``), fed back by hand
in LiteRT (``from_tflite(path, states={"input_3": "Identity_1"})``), and for graphs
called once per step on a shaped input (``input_shapes={"input": (1, 576)}``).

A data value is an array of *places*, one per element of the TFLite tensor (an
int64 ``source * 2**32 + element``), over a list of sources: an edgernn Tensor
computed in the step, or a state input. Shape ops (:mod:`.shape_ops`: RESHAPE,
TRANSPOSE, CONCATENATION, STRIDED_SLICE, ... and a zero PAD) only move places, so a
transpose or a channels-last layout costs nothing. An op that computes reads its
operands in the memory order it needs (:meth:`Walker.tensor`): a whole source, a
contiguous part (``edgernn.Slice``), a few such parts (``edgernn.Concat``) or, for
a state input, one ``edgernn.state`` tensor per distinct set of places (named
after them, e.g. ``input_3[0,1,:,0]``); elementwise ops keep their operand's
layout (:meth:`Walker.elementwise`). The paired output's places give each state
tensor its new value (``Model(updates=)``), so an edgernn stream carries the state.

The ops are the table :data:`.registry.WALK`, handed to the Walker.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

_BIG = np.int64(1) << 32
#: most pieces one operand may be gathered from before it counts as a transpose
MAX_PIECES = 16


def _node(op, fn, *args):
    try:
        return fn(*args)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{op}: {exc}") from None


class Walker:
    """The walk of subgraph ``sg``; ``ops``: op name -> handler (:data:`.registry.WALK`),
    ``apply(op, layers, x)`` applies converted layers (keeping int8 sources aside, see
    ``from_tflite``); ``consts``: graph inputs given as constants (``constants=``)."""

    def __init__(self, sg, ops, apply, consts=None):
        self.sg, self.ops, self.apply = sg, ops, apply
        self.consts: dict = dict(consts or {})  # tensor index -> array
        self.srcs: list = []          # edgernn Tensor, or (input name, shape)
        self.values: dict = {}        # tensor index -> places (int64 array)
        self.slices: dict = {}        # (source, start, stop) -> Tensor
        self.state_reads: dict = {}   # (input name, places) -> edgernn.state tensor

    def source(self, src, shape) -> np.ndarray:
        """Places of a new source ``src`` laid out as ``shape``."""
        self.srcs.append(src)
        return len(self.srcs) - 1 << 32 | np.arange(int(np.prod(shape)),
                                                     dtype=np.int64).reshape(shape)

    def wrap(self, op, t, shape) -> np.ndarray:
        """Places of Tensor ``t`` read as ``shape`` (row-major)."""
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape)) != t.size:
            raise UnsupportedOpError(f"{op}: gives {t.size} values per step where the "
                                     f"output is {list(shape)}")
        return self.source(t, shape)

    def wrap_as(self, t, order_shape, perm) -> np.ndarray:
        """Places of ``t`` laid out as ``order_shape`` in memory, seen through axis
        permutation ``perm`` (the TFLite tensor's axis ``i`` is memory axis ``perm[i]``)."""
        return self.source(t, order_shape).transpose(perm)

    def tensor(self, op, places):
        """The edgernn Tensor holding ``places`` in (flat) order."""
        flat = np.asarray(places).reshape(-1)
        pieces = []
        cut = np.flatnonzero((flat[1:] >> 32 != flat[:-1] >> 32) |
                             (flat[1:] - flat[:-1] != 1)) + 1
        bounds = [0, *cut.tolist(), len(flat)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):  # merge a state input's run
            s = int(flat[a] >> 32)
            if pieces and isinstance(self.srcs[s], tuple) and pieces[-1][0] == s:
                pieces[-1] = (s, pieces[-1][1], b)
            else:
                pieces.append((s, a, b))
        if len(pieces) > MAX_PIECES:
            raise UnsupportedOpError(
                f"{op}: reads its operand in an order {len(pieces)} pieces apart from how the "
                f"values lie (a transpose that moves data, or a gather); supported: "
                f"contiguous parts of at most {MAX_PIECES} tensors (a transpose or "
                f"channels-last layout is folded when the reading op allows it)")
        parts = [self._piece(op, s, flat[a:b] & (_BIG - 1)) for s, a, b in pieces]
        return parts[0] if len(parts) == 1 else _node(op, edgernn.Concat(), *parts)

    def _piece(self, op, s, elem):
        src = self.srcs[s]
        if isinstance(src, tuple):
            return self.state_read(src, elem)
        start, n = int(elem[0]), len(elem)
        if start == 0 and n == src.size:
            return src
        key = (s, start, n)
        if key not in self.slices:
            self.slices[key] = _node(op, edgernn.Slice(start, start + n), src)
        return self.slices[key]

    def state_read(self, src, elem):
        """One ``edgernn.state`` tensor per distinct set of places of state input ``src``."""
        name, shape = src
        key = (name, tuple(int(e) for e in elem))
        if key not in self.state_reads:
            idx = np.unravel_index(elem, shape)
            label = []
            for ax, ix in enumerate(idx):
                u = np.unique(ix)
                label.append(str(u[0]) if len(u) == 1 else
                             ":" if len(u) == shape[ax] else "*")
            self.state_reads[key] = edgernn.state(len(elem), name=f"{name}[{','.join(label)}]")
        return self.state_reads[key]

    def region(self, places):
        """``(tensor, offsets)`` when ``places`` are, in some order, exactly a contiguous
        part of one computed source: ``offsets[i]`` is where element ``i`` lies in that
        part. None otherwise (a state input, several sources, repeats or gaps)."""
        flat = np.asarray(places).reshape(-1)
        s = np.unique(flat >> 32)
        if len(s) != 1 or isinstance(self.srcs[int(s[0])], tuple):
            return None
        elem = flat & (_BIG - 1)
        lo, n = int(elem.min()), len(elem)
        if int(elem.max()) - lo + 1 != n or len(np.unique(elem)) != n:
            return None
        t = self.tensor("region", (s[0] << 32) + np.arange(lo, lo + n, dtype=np.int64))
        return t, (elem - lo).reshape(np.shape(places))

    def elementwise(self, op, places, layers, const=None):
        """``layers`` (a list of elementwise layers, or a function of the constant laid
        out like the operand giving them) applied to ``places`` in the order the values
        lie; the result keeps that layout."""
        reg = self.region(places)
        if reg is None:  # gathered in the TFLite order
            t, offsets = self.tensor(op, places), np.arange(np.size(places)).reshape(
                np.shape(places))
        else:
            t, offsets = reg
        if const is not None:
            laid = np.empty(t.size, np.float32)
            laid[offsets.reshape(-1)] = np.broadcast_to(const, np.shape(places)).reshape(-1)
            layers = layers(laid[0] if np.all(laid == laid[0]) else laid)
        y = self.apply(op, layers, t)
        base = self.source(y, (y.size,))[0]  # the new source's id, element 0
        return base | offsets.astype(np.int64)

    def arg(self, op, k):
        """Operand ``k`` of ``op``: places (data) or an array (constant)."""
        t = op.inputs[k] if k < len(op.inputs) else -1
        if t in self.values:
            return self.values[t]
        c = self.consts.get(t)
        c = (self.sg.const(t) if t >= 0 else None) if c is None else c
        if c is None:
            raise UnsupportedOpError(f"{op} takes {self.sg.tensors[t].name!r}, which no input, "
                                     f"constant or supported op gives (supported: "
                                     f"{', '.join(sorted(self.ops))})")
        return c

    def is_data(self, op, k) -> bool:
        return k < len(op.inputs) and op.inputs[k] in self.values

    def data(self, op, k):
        v = self.arg(op, k)
        if not self.is_data(op, k):
            raise UnsupportedOpError(f"{op}: input {k} is a constant; supported: data")
        return v

    def const(self, op, k, what):
        """Constant operand ``k`` (``what`` names it in the error)."""
        if self.is_data(op, k) or k >= len(op.inputs) or op.inputs[k] < 0:
            raise UnsupportedOpError(f"{op}: {what} (input {k}) is not a constant")
        return np.asarray(self.arg(op, k))

    def out_shape(self, op, j=0):
        return tuple(int(d) for d in self.sg.tensors[op.outputs[j]].shape)

    def step(self, op):
        """Convert one op: its outputs' places into ``values``."""
        handler = self.ops.get(op.name)
        if handler is None:
            raise UnsupportedOpError(f"operator {op.name} (index {op.index}) is not supported "
                                     f"in a graph walked step by step; supported: "
                                     f"{', '.join(sorted(self.ops))}")
        outs = handler(self, op)
        for j, (t, v) in enumerate(zip(op.outputs, outs, strict=True)):
            want = self.out_shape(op, j)
            if np.shape(v) != want and int(np.prod(want)) != np.size(v):
                raise ModelFormatError(f"{op}: output {j} has {np.size(v)} values "
                                       f"{list(np.shape(v))}; the file says {list(want)}")
            self.values[t] = v if np.shape(v) == want else np.reshape(v, want)


def state_pairs(sg, names, states) -> dict:
    """``states`` (input name -> output name) as tensor indices, checked."""
    by_name = {names(t): t for t in [*sg.inputs, *sg.outputs]}
    pairs = {}
    for i, o in states.items():
        if i not in by_name or by_name[i] not in sg.inputs:
            raise UnsupportedOpError(f"states: {i!r} is not a graph input; inputs: "
                                     f"{[names(t) for t in sg.inputs]}")
        if o not in by_name or by_name[o] not in sg.outputs:
            raise UnsupportedOpError(f"states: {o!r} is not a graph output; outputs: "
                                     f"{[names(t) for t in sg.outputs]}")
        ti, to = by_name[i], by_name[o]
        if list(sg.tensors[ti].shape) != list(sg.tensors[to].shape):
            raise UnsupportedOpError(f"states: input {i!r} is {list(sg.tensors[ti].shape)} "
                                     f"but output {o!r} is {list(sg.tensors[to].shape)}")
        pairs[ti] = to
    return pairs


def updates(walker, pairs, names) -> dict:
    """Each state tensor -> the value the paired output holds at its places."""
    out = {}
    for (name, elem), st in walker.state_reads.items():
        ti = next(t for t in pairs if names(t) == name)
        to = pairs[ti]
        if to not in walker.values:
            raise ModelFormatError(f"output {names(to)!r} is not computed by the supported "
                                   f"ops from the inputs")
        places = walker.values[to].reshape(-1)[list(elem)]
        out[st] = walker.tensor(f"state output {names(to)!r} (for {st.name})", places)
    return out


__all__ = ["Walker", "state_pairs", "updates", "MAX_PIECES"]
