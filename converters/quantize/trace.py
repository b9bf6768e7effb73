"""Models and single ops over calibration sequences, in the edgernn engine.

Everything the quantiser measures runs here, float or int8, streamed one step
at a time from zero state with the state carried (``Model.streams(n).run``: the
sequences of one length stepped together, each exactly as its own
``Stream.run``). :func:`values` records every tensor of a graph, :func:`rebuild`
makes the same graph (names, inputs, outputs) with some ops replaced.
"""

from __future__ import annotations

import numpy as np

import edgernn


def run(model, seqs: list) -> list:
    """``model``'s outputs over each sequence from its initial state: float32[T, O] each
    (every step, whatever ``return_sequences`` says)."""
    out: list = [None] * len(seqs)
    if not model.return_sequences:
        g = model.graph
        model = edgernn.Model(inputs=g.inputs, outputs=g.outputs,
                              initial_state=model.initial_state)
    if not model.streamable or model.num_tokens:
        for i, s in enumerate(seqs):
            out[i] = model.stream().run(s)
        return out
    by_len: dict[int, list] = {}
    for i, s in enumerate(seqs):
        by_len.setdefault(len(s), []).append(i)
    for idx in by_len.values():
        xs = np.ascontiguousarray(np.stack([seqs[i] for i in idx], axis=1), np.float32)
        ys = model.streams(len(idx)).run(xs)
        for j, i in enumerate(idx):
            out[i] = np.ascontiguousarray(ys[:, j])
    return out


def run_op(op, seqs: list) -> list:
    """One op alone (its input given) over each sequence."""
    return run(edgernn.Model([op]), seqs)


def _probe(model):
    """The same graph with every node an output (return_sequences on)."""
    g = model.graph
    return edgernn.Model(inputs=g.inputs, outputs=g.nodes, initial_state=model.initial_state,
                         updates=dict(g.updates))


def values(model, seqs: list) -> dict:
    """Tensor name -> per-sequence float32[T, size] for every input and node of ``model``."""
    g = model.graph
    out: dict = {}
    start = 0
    for t in g.inputs:
        out[t.name] = [s[:, start:start + t.size] if s.ndim == 2 else s for s in seqs]
        start += t.size
    if not g.nodes:
        return out
    ys = run(_probe(model), seqs)
    start = 0
    for t in g.nodes:
        out[t.name] = [y[:, start:start + t.size] for y in ys]
        start += t.size
    return out


def outputs(model, vals: dict) -> list:
    """The model's outputs (concatenated, per sequence) from :func:`values`."""
    names = [name for name, _ in model.outputs]
    return [np.concatenate([vals[n][k] for n in names], axis=1)
            for k in range(len(vals[names[0]]))]


def rebuild(model, ops: dict, quantization=None, provenance=None):
    """``model``'s graph with node ``name``'s op replaced by ``ops[name]`` (same names,
    inputs, outputs, state updates, return_sequences, initial state and audio section)."""
    g = model.graph
    new = {}
    for t in g.inputs:
        new[id(t)] = edgernn.Input(t.size, name=t.name)
    for t in g.nodes:
        op = ops.get(t.name, t.op)
        new[id(t)] = op(*[new[id(i)] for i in t.inputs], name=t.name)
    return edgernn.Model(inputs=[new[id(t)] for t in g.inputs],
                         outputs=[new[id(t)] for t in g.outputs],
                         provenance=model.provenance if provenance is None else provenance,
                         return_sequences=model.return_sequences,
                         initial_state=model.initial_state, quantization=quantization,
                         updates={new[id(st)]: new[id(v)] for st, v in g.updates},
                         audio=getattr(model, "audio", None))
