"""From the walked graph to the :class:`edgernn.Model` and its I/O record.

Graph outputs holding data become the model's outputs, in graph order and
named after them (``model.outputs``, ``model.split``); graph outputs holding
recurrent state (``Y_h``/``Y_c``) are read from the stream's state. Nodes are
named by position ("0", "1", ... in run order, as a stack's layers are), so
state is named ``"<position>.h"``; a recurrent node that is itself one of
several data outputs is reached through a zero-copy view named after the
output (its own name names its state). A recurrent node whose state is a
graph output but which no data output depends on becomes an extra, unnamed
output so that it runs.
"""

from __future__ import annotations

import warnings

import numpy as np

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError
from edgernn.ir.graph import Tensor
from edgernn.ir.state import StreamState

from .fold import fold
from .statepack import StatePack, check_pairs, from_state
from .values import Frames, Seq, StateOut, TimePadded


def tensor_name(name: str, used: set) -> str:
    """``name`` as a unique edgernn tensor name (no '/'), added to ``used``."""
    base = str(name).replace("/", "_").strip() or "output"
    out, k = base, 0
    while out in used:
        k += 1
        out = f"{base}_{k}"
    used.add(out)
    return out


def _stateful(t) -> bool:
    return bool(t.op.state_vectors()) or bool(t.op.inner())


def _ancestors(tensors) -> set:
    seen, stack = set(), list(tensors)
    while stack:
        t = stack.pop()
        if id(t) not in seen:
            seen.add(id(t))
            stack.extend(t.inputs)
    return seen


def build_model(ctx, graph, names: set, prov: dict) -> edgernn.Model:
    """The model computing the graph's outputs; fills ``ctx.io`` (made JSON-able)
    and ``prov`` (``output``, ``onnx_io``)."""
    seq_outs, state_outs, generic_outs = [], [], {}
    back = {o: i for i, o in ctx.pairs.items()}
    for out in graph.output:
        v = ctx.env.get(out.name)
        if out.name in back and back[out.name] in {k[0] for k in ctx.generic}:
            if not isinstance(v, (Seq, StatePack, Frames)):
                raise UnsupportedOpError(f"graph output {out.name!r} gives back state input "
                                         f"{back[out.name]!r} but holds a "
                                         f"{type(v).__name__} value")
            generic_outs[out.name] = from_state(v, ctx)
        elif isinstance(v, Seq) and not v.tokens:
            seq_outs.append((out.name, v))
        elif isinstance(v, (StateOut, StatePack)):
            state_outs.append((out.name, v))
        elif isinstance(v, Frames):
            raise UnsupportedOpError(f"graph output {out.name!r} holds frames of a cache "
                                     f"(from {v.producer}) but gives back no state input: "
                                     f"pair it with its input (states={{'<input>': "
                                     f"{out.name!r}}}, --state <input>={out.name})")
        elif isinstance(v, TimePadded):
            raise UnsupportedOpError(f"graph output {out.name!r} is the time axis padded by "
                                     f"{v.producer}: padding the time axis is supported only "
                                     f"before a causal convolution over time")
        else:
            raise UnsupportedOpError(f"graph output {out.name!r} is a "
                                     f"{'token id' if isinstance(v, Seq) else type(v).__name__}"
                                     f" value, not data or recurrent state")
    tensors = [ctx.resolve(v.tensor) for _, v in seq_outs]
    reach = _ancestors(tensors)
    extra = []
    for _, v in state_outs:
        for p in (v.parts if isinstance(v, StateOut) else [ref for ref, _ in v.places]):
            t = ctx.resolve(p.tensor)
            if id(t) not in reach:
                reach |= _ancestors([t])
                extra.append(t)
    updates = _updates(ctx, generic_outs)
    new, absorbed = fold(tensors + extra + list(updates.values()), ctx.no_fold)

    def final(t):
        t = ctx.resolve(t)
        return new.get(id(t), t)

    def folded(t):
        t = final(t)
        while id(t) in absorbed:
            t = absorbed[id(t)]
        return t

    outputs = []
    for (name, _), t in zip(seq_outs, tensors, strict=True):
        t = final(t)
        nm = tensor_name(name, names)
        if t.op is None or any(t is o for o in outputs) or (_stateful(t) and len(seq_outs) > 1):
            outputs.append(edgernn.Slice(0, t.size)(t, name=nm))
        elif _stateful(t):
            outputs.append(t)  # keeps its positional name: its state is named after it
        else:
            t.name = nm
            outputs.append(t)
    outputs += [final(t) for t in extra]
    if all(t.op is None for t in outputs):
        raise UnsupportedOpError("the graph holds no op edgernn can run on its data (no "
                                 "recurrent, Gemm/MatMul, embedding, activation or "
                                 "elementwise node on the data path)")
    updates = {s: final(v) for s, v in updates.items()}
    model = edgernn.Model(inputs=ctx.inputs, outputs=outputs, updates=updates)  # names nodes
    _io_record(ctx, model, seq_outs, state_outs, outputs, final)
    _generic_record(ctx, generic_outs)
    lasts = [v.last for _, v in seq_outs]
    return_sequences = not (lasts and all(lasts))
    prov.update(output="every_step" if return_sequences else "last_step", onnx_io=ctx.io)
    init = _constant_initial_state(ctx, model, prov)
    if getattr(ctx, "source_quant", None):
        return _quantized(ctx, model, prov, return_sequences, init, folded)
    return edgernn.Model(inputs=ctx.inputs, outputs=outputs, updates=updates,
                         provenance=prov, return_sequences=return_sequences,
                         initial_state=init)


def _updates(ctx, generic_outs) -> dict:
    """Generic state: each ``edgernn.state`` tensor read from a paired graph input ->
    the data the paired output holds at the same place (its value for the next step)."""
    updates = {}
    for inp, out in ctx.pairs.items():
        reads = {idx: t for (name, idx), (t, _) in ctx.generic.items() if name == inp}
        if not reads:
            continue
        for item, idx in generic_outs[out].places:
            key = tuple(0 if i == "B" else i for i in idx)
            if isinstance(item, Tensor) and key in reads:
                if reads[key] in updates:
                    raise UnsupportedOpError(f"graph output {out!r} writes state {inp!r}"
                                             f"{list(key)} twice")
                updates[reads[key]] = item
        missing = [t.name for t in reads.values() if t not in updates]
        if missing:
            raise UnsupportedOpError(f"state {missing[0]} is read from graph input {inp!r} "
                                     f"but graph output {out!r} does not give it back at "
                                     f"the same place")
    updates.update(ctx.delays)   # delay lines of convolutions over time (conv2d)
    return updates


def _generic_record(ctx, generic_outs) -> None:
    """The I/O record of generic state: where each state tensor sits in its input and
    its output (for run_like_onnx and initial_state)."""
    for (inp, idx), (t, _) in ctx.generic.items():
        ctx.io["state_inputs"].append({"input": inp, "state": t.name,
                                       "index": [0 if i == "B" else i for i in idx]})
    for inp, out in ctx.pairs.items():
        if out not in generic_outs:
            continue
        reads = {idx: t for (name, idx), (t, _) in ctx.generic.items() if name == inp}
        pack = generic_outs[out]
        ctx.io["outputs"][out] = {"kind": "packed", "shape": list(pack.shape), "places": [
            [reads[tuple(0 if i == "B" else i for i in idx)].name, list(idx)]
            for item, idx in pack.places
            if tuple(0 if i == "B" else i for i in idx) in reads]}


def _io_record(ctx, model, seq_outs, state_outs, outputs, final) -> None:
    """``ctx.io`` with state and outputs named as in ``model``."""
    io = ctx.io
    nodes = {id(t) for t in model.graph.nodes}

    def state(ref):
        t = final(ref.tensor)
        return f"{t.name}.{ref.suffix}" if id(t) in nodes else None

    io["state_inputs"] = [dict(r, state=state(r["state"])) for r in io["state_inputs"]
                          if state(r["state"])]
    io["init_state"] = {state(ref): rows for ref, rows in io["init_state"] if state(ref)}
    sl = io["sequence_lens"]
    if sl is not None:
        with_lens = {id(final(t)) for t in sl.pop("nodes")}
        rec = {id(final(t)) for t in ctx.recurrent} & nodes
        sl["exact_padding"] = rec <= with_lens and all(
            id(final(v.tensor)) in with_lens for _, v in seq_outs)
    for (name, v), t in zip(seq_outs, outputs, strict=False):
        io["outputs"][name] = {"kind": "seq", "axes": list(ctx.labels(v)),
                               "sizes": list(v.sizes), "last": v.last, "output": t.name}
    for name, v in state_outs:
        if isinstance(v, StatePack):
            io["outputs"][name] = {"kind": "packed", "shape": list(v.shape),
                                   "places": [[state(ref), list(idx)] for ref, idx in v.places]}
        else:
            io["outputs"][name] = {"kind": "state", "axes": list(v.axes),
                                   "parts": [state(p) for p in v.parts], "hidden": v.hidden}
    check_pairs(io["outputs"], io["state_inputs"])
    for rec in io["data"]:
        seq = ctx.env[rec["name"]]
        rec["axes"] = [ctx.label(a) for a in seq.axes]
        t_sizes = [s for a, s in zip(rec["axes"], seq.sizes, strict=True) if a == "T"]
        if {id(final(t)) for t in ctx.recurrent} & nodes and t_sizes == [1] and \
                not io["state_inputs"]:
            warnings.warn(f"data input {rec['name']!r} has a fixed time length of 1 and the "
                          f"graph has no state inputs: ONNX runs each call from a fresh state, "
                          f"while an edgernn stream carries its state from step to step",
                          stacklevel=4)


def _quantized(ctx, model, prov, return_sequences, init, folded):
    """A graph with ONNX Runtime's quantised ops (see .quantized): its nodes made from
    them as int8 ops (:func:`converters.quantize.imported.assemble`)."""
    from converters.quantize.imported import SourceQuant, assemble, int8_weights

    if init is not None:
        raise UnsupportedOpError("a quantised graph with a non-zero constant initial state "
                                 "is not supported")
    g = model.graph
    quant = {id(folded(t)): spec for t, spec in ctx.source_quant.values()}
    by_name = {}
    for t in g.nodes:
        spec = quant.get(id(t))
        if spec is None:
            continue
        try:
            for name, s in spec["scales"].items():
                int8_weights(getattr(t.op, name), s)
        except ModelFormatError as exc:
            warnings.warn(f"node {t.name} ({type(t.op).__name__}) stays float32: a later op "
                          f"changed its int8 weights ({exc})", stacklevel=5)
            continue
        by_name[t.name] = SourceQuant(t.op, **spec)
    full = edgernn.Model(inputs=g.inputs, outputs=g.outputs, provenance=prov,
                         return_sequences=return_sequences)
    return assemble(full, by_name)


def _constant_initial_state(ctx, model, prov):
    """The StreamState of the graph's non-zero constant ``initial_h``/``initial_c``
    (None when there are none, or when they differ between batch rows: then
    they stay in ``onnx_io["init_state"]`` for :func:`initial_state`)."""
    rows = {n: np.asarray(r, np.float32) for n, r in ctx.io["init_state"].items()}
    if not rows:
        return None
    if any(np.any(r != r[:1]) for r in rows.values()):
        warnings.warn(f"constant initial states {sorted(rows)} differ between batch rows; an "
                      f"edgernn model has one initial state, so its streams start from zeros: "
                      f"use converters.onnx.initial_state(model, batch) for a row's",
                      stacklevel=4)
        return None
    layout = model.state_layout()
    ctx.io["init_state"] = {}
    prov["initial_state_from"] = "constant initial_h/initial_c: " + ", ".join(sorted(rows))
    return StreamState(tuple(n for n, _, _ in layout),
                       tuple(rows[n][0] if n in rows else np.zeros(k, np.float32)
                             for n, _, k in layout))


__all__ = ["build_model", "tensor_name"]
