"""Recurrent state packed into a graph output in any layout (DTLN's ``[1, 2, 128, 2]``:
layer, unit, h/c).

A :class:`StatePack` is what ``Unsqueeze``/``Concat``/``Squeeze``/``Transpose`` make of
recurrent state (:class:`~converters.onnx.values.StateOut`) when they stack it along
an axis that is not the state's own direction axis: a map from positions in the
output tensor to state vectors. Each place's ``index`` has, per output axis, an
integer, ``"B"`` (the batch row) or ``"F"`` (the hidden units). A graph input
read through the same positions (``initial_h``/``initial_c`` slices,
:class:`~converters.onnx.values.StateIn`) pairs with it: :func:`check_pairs`
makes sure that feeding the output back into that input gives every state
vector back to itself, which is what an edgernn stream does inside.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgernn.errors import UnsupportedOpError

from .values import Frames, Seq, StateOut


@dataclass(frozen=True)
class StatePack:
    """``places``: ((StateRef or Tensor, index), ...): recurrent state, or data computed in
    the step (generic state's new value); ``shape``: per axis its size (None: batch)."""

    places: tuple
    shape: tuple

    @property
    def axes(self) -> tuple:
        return self.shape


def from_state(v, ctx=None) -> StatePack:
    """``v`` (a StateOut, a StatePack, data: a Seq, or a cache's frames) as a StatePack."""
    if isinstance(v, StatePack):
        return v
    if isinstance(v, Frames):   # each cell at its place, its own axes whole
        import numpy as np

        n = len(v.axes)
        places = tuple((v.cells[p].tensor, tuple("F" if v.held(a) else p[a] for a in range(n)))
                       for p in np.ndindex(v.cells.shape))
        return StatePack(places, tuple(v.size(a) for a in range(n)))
    if isinstance(v, Seq):
        labels = ctx.labels(v)
        return StatePack(((v.tensor, tuple("F" if lab == "F" else 0 for lab in labels)),),
                         tuple(v.sizes))
    assert isinstance(v, StateOut)
    shape = tuple(len(v.parts) if a == "R" else None if a == "B" else v.hidden if a == "F"
                  else 1 for a in v.axes)
    places = tuple((p, tuple(i if a == "R" else a if a in ("B", "F") else 0 for a in v.axes))
                   for i, p in enumerate(v.parts))
    return StatePack(places, shape)


def concat(ctx, node, ins, k) -> StatePack:
    """Concat of states along axis ``k`` (not their batch or hidden axis)."""
    packs = [from_state(v, ctx) for v in ins]
    n = len(packs[0].shape)
    if any(len(p.shape) != n for p in packs):
        raise ctx.bad(node, f"Concat of states of ranks {[len(p.shape) for p in packs]}")
    k = ctx.axes(node, [k], n)[0]
    places, off = [], 0
    for p in packs:
        if any(isinstance(idx[k], str) for _, idx in p.places):
            raise ctx.unsupported(node, f"Concat of recurrent states along their "
                                        f"{'batch' if p.places[0][1][k] == 'B' else 'hidden'} "
                                        f"axis")
        others = [s for j, s in enumerate(p.shape) if j != k]
        if others != [s for j, s in enumerate(packs[0].shape) if j != k]:
            raise ctx.bad(node, f"Concat of states of shapes {[q.shape for q in packs]}")
        places += [(ref, idx[:k] + (idx[k] + off,) + idx[k + 1:]) for ref, idx in p.places]
        off += p.shape[k]
    return StatePack(tuple(places), packs[0].shape[:k] + (off,) + packs[0].shape[k + 1:])


def unsqueeze(v: StatePack, axes) -> StatePack:
    shape, places = list(v.shape), [(ref, list(idx)) for ref, idx in v.places]
    for a in axes:
        shape.insert(a, 1)
        for _, idx in places:
            idx.insert(a, 0)
    return StatePack(tuple((ref, tuple(idx)) for ref, idx in places), tuple(shape))


def squeeze(ctx, node, v: StatePack, axes) -> StatePack:
    for a in axes:
        if v.shape[a] != 1:
            raise ctx.unsupported(node, f"Squeeze of axis {a} of packed state, of size "
                                        f"{v.shape[a] or 'batch'}")
    keep = [j for j in range(len(v.shape)) if j not in axes]
    return StatePack(tuple((ref, tuple(idx[j] for j in keep)) for ref, idx in v.places),
                     tuple(v.shape[j] for j in keep))


def transpose(v: StatePack, perm) -> StatePack:
    return StatePack(tuple((ref, tuple(idx[p] for p in perm)) for ref, idx in v.places),
                     tuple(v.shape[p] for p in perm))


def check_pairs(outputs: dict, state_inputs: list) -> None:
    """Each packed graph output whose places are read back by a state input must hold
    every state vector where that input reads it (``outputs``: name -> record with
    ``places`` [[state, index], ...]; ``state_inputs``: the I/O record's)."""
    reads: dict = {}
    for rec in state_inputs:
        reads.setdefault(rec["input"], {})[rec["state"]] = list(rec["index"])
    for name, rec in outputs.items():
        if rec.get("kind") != "packed":
            continue
        held = {st: list(idx) for st, idx in rec["places"]}
        for inp, states in reads.items():
            if set(states) != set(held):
                continue
            bad = [st for st, idx in states.items() if held[st] != idx]
            if bad:
                raise UnsupportedOpError(f"graph output {name!r} holds state {bad[0]!r} at "
                                         f"{held[bad[0]]}, but input {inp!r} reads it from "
                                         f"{states[bad[0]]}: fed back, the states would mix")


def state_seq(ctx, node, v):
    """The slice of a generic state input ``v`` (a :class:`StateIn`) as data: one
    ``edgernn.state`` tensor per distinct slice, holding its one axis longer than 1
    (the features; the other axes are fixed to one index or of size 1)."""
    import edgernn

    from .values import Seq

    index, sizes = [], []
    for o, n in enumerate(v.shape):
        if o in v.fixed:
            index.append(v.fixed[o])
            continue
        rows = v.sel.get(o, tuple(range(n or 1)))
        if len(rows) == 1:
            index.append(rows[0])
        elif rows == tuple(range(n or 0)):
            index.append("F")
            sizes.append(n)
        else:
            raise ctx.unsupported(node, f"state input {v.name!r}: a part {list(rows)[:8]} of "
                                        f"its axis {o}; only whole axes or single indices")
    if len(sizes) > 1:
        raise ctx.unsupported(node, f"state input {v.name!r}: a slice with {len(sizes)} axes "
                                    f"longer than 1 ({sizes}); one (the features) is supported")
    key = (v.name, tuple(index))
    if key not in ctx.generic:
        label = ",".join(":" if i == "F" else str(i) for i in index)
        size = sizes[0] if sizes else 1
        ctx.generic[key] = (edgernn.state(size, name=f"{v.name}[{label}]"), tuple(index))
    t, _ = ctx.generic[key]
    axes = tuple("F" if (o is not None and index[o] == "F") else "U" for o in v.axes)
    if "F" not in axes:  # a single value: its unit axis is the feature axis
        axes = axes[:-1] + ("F",) if axes else ("F",)
    return Seq(t, axes, tuple(t.size if a == "F" else 1 for a in axes))
