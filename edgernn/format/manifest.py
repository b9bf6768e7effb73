"""A model as the content of a manifest, and back (the file is :mod:`edgernn.format.modelfile`).

Format 2.x stores the graph::

    "model": {"input_size": 42, "output_size": 23, "num_tokens": 0,
              "return_sequences": true, "initial_state": null | [["0.h", "<array>"], ...]},
    "graph": {"inputs": [{"name": "features", "size": 42}],
              "nodes": [{"name": "gru1", "type": "GRU", "inputs": ["dense"], "size": 24,
                         "config": {...}, "arrays": {"weight_ih": "gru1.weight_ih", ...}}, ...],
              "outputs": ["gains", "vad"]},
    "quantization": null | {...the quantisation report...}

Format 1.x (edgernn 0.1) stored a stack, ``"layers": [{"type", "config",
"arrays", "input_size", "output_size"}, ...]``; it loads as the stack it was.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from ..ir.graph import Input, node
from ..ir.state import StreamState
from ..ops.registry import op_from_config

MAX_NODES = 4096


def to_manifest(model) -> tuple[dict, dict]:
    """``(content, arrays)``: the manifest's model, graph and quantization entries, and
    the arrays by name."""
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for t in model.graph.nodes:
        refs = {}
        for field, arr in t.op.arrays().items():
            key = f"{t.name}.{field}"
            arrays[key] = arr
            refs[field] = key
        nodes.append({"name": t.name, "type": type(t.op).__name__,
                      "inputs": [s.name for s in t.inputs], "size": t.size,
                      "config": t.op.config(), "arrays": refs})
    init = None
    if model.initial_state is not None:
        init = []
        for name, arr in zip(model.initial_state.names, model.initial_state.arrays, strict=True):
            key = f"initial_state.{name}"
            arrays[key] = np.ascontiguousarray(arr, dtype=np.float32)
            init.append([name, key])
    g = model.graph
    content = {
        "model": {"input_size": model.input_size, "output_size": model.output_size,
                  "num_tokens": model.num_tokens, "return_sequences": model.return_sequences,
                  "initial_state": init},
        "graph": {"inputs": [{"name": t.name, "size": t.size} for t in g.inputs],
                  "nodes": nodes, "outputs": [t.name for t in g.outputs],
                  **({"updates": [{"state": s.name, "value": v.name} for s, v in g.updates]}
                     if g.updates else {})},
        "quantization": model.quantization,
    }
    if getattr(model, "audio", None):
        content["audio"] = model.audio
    return content, arrays


def _need(obj, key, kind, where):
    if not isinstance(obj, dict) or key not in obj:
        raise ModelFormatError(f"{where} lacks {key!r}")
    val = obj[key]
    if not isinstance(val, kind) or (kind is int and isinstance(val, bool)):
        raise ModelFormatError(f"{where}[{key!r}]: expected {getattr(kind, '__name__', kind)}, "
                               f"got {type(val).__name__}")
    return val


def _op(entry, where, arrays, used):
    kind = _need(entry, "type", str, where)
    config = _need(entry, "config", dict, where)
    refs = _need(entry, "arrays", dict, where)
    mine = {}
    for field, key in refs.items():
        if not isinstance(key, str) or key not in arrays:
            raise ModelFormatError(f"{where}.arrays[{field!r}] names unknown array {key!r}")
        mine[field] = arrays[key]
        used.add(key)
    try:
        return op_from_config(kind, config, mine)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{where}: {exc}") from None


def from_manifest(man: dict, arrays: dict, major: int) -> dict:
    """The keyword arguments of the :class:`edgernn.Model` a validated manifest describes
    (arrays read already); :func:`check_sizes` then checks the model against it."""
    used: set[str] = set()
    mdl = _need(man, "model", dict, "manifest")
    if major == 1:
        layers = _need(man, "layers", list, "manifest")
        if not layers or len(layers) > MAX_NODES:
            raise ModelFormatError(f"manifest lists {len(layers)} layers; expected 1 to "
                                   f"{MAX_NODES}")
        ops = []
        for i, entry in enumerate(layers):
            op = _op(entry, f"layers[{i}]", arrays, used)
            for attr in ("input_size", "output_size"):
                if attr in entry and getattr(op, attr, entry[attr]) != entry[attr]:
                    raise ModelFormatError(f"layers[{i}].{attr}: manifest says {entry[attr]!r}, "
                                           f"the weights give {getattr(op, attr)}")
            ops.append(op)
        kw = {"layers": ops}
    else:
        kw = _graph(_need(man, "graph", dict, "manifest"), arrays, used)
    init = mdl.get("initial_state")
    state = None
    if init is not None:
        if not isinstance(init, list) or not all(
                isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                and isinstance(p[1], str) and p[1] in arrays for p in init):
            raise ModelFormatError("model.initial_state: expected a list of [state name, array "
                                   "name] naming stored arrays")
        state = StreamState(tuple(p[0] for p in init), tuple(arrays[p[1]] for p in init))
        used.update(p[1] for p in init)
    seqs = mdl.get("return_sequences", True)
    if not isinstance(seqs, bool):
        raise ModelFormatError(f"model.return_sequences: expected true/false, got {seqs!r}")
    unused = sorted(set(arrays) - used)
    if unused:
        raise ModelFormatError(f"arrays not used by any node: {unused[:5]}")
    quant = man.get("quantization")
    if quant is not None and not isinstance(quant, dict):
        raise ModelFormatError(f"quantization: expected an object or null, got "
                               f"{type(quant).__name__}")
    return dict(provenance=man.get("provenance"), return_sequences=seqs,
                initial_state=state, quantization=quant, audio=man.get("audio"), **kw)


def check_sizes(man: dict, model) -> None:
    """The model built from ``man`` has the input, output and token sizes it states."""
    mdl = _need(man, "model", dict, "manifest")
    got = (model.input_size, model.output_size, model.num_tokens)
    want = tuple(_need(mdl, k, int, "model") for k in ("input_size", "output_size",
                                                         "num_tokens"))
    if got != want:
        raise ModelFormatError(f"model sizes (input, output, tokens): manifest says {want}, "
                               f"the graph gives {got}")


def _graph(g: dict, arrays: dict, used: set) -> dict:
    ins = _need(g, "inputs", list, "graph")
    nodes = _need(g, "nodes", list, "graph")
    outs = _need(g, "outputs", list, "graph")
    if not ins or len(ins) > MAX_NODES or len(nodes) > MAX_NODES or not outs:
        raise ModelFormatError(f"graph: expected 1 to {MAX_NODES} inputs and nodes and at least "
                               f"one output, got {len(ins)}, {len(nodes)}, {len(outs)}")
    tensors = {}
    inputs = []
    for i, e in enumerate(ins):
        name = _need(e, "name", str, f"graph.inputs[{i}]")
        size = _need(e, "size", int, f"graph.inputs[{i}]")
        if name in tensors or not 0 < size < 2**31:
            raise ModelFormatError(f"graph.inputs[{i}]: repeated name {name!r} or bad size "
                                   f"{size!r}")
        tensors[name] = Input(size, name)
        inputs.append(tensors[name])
    for i, e in enumerate(nodes):
        where = f"graph.nodes[{i}]"
        name = _need(e, "name", str, where)
        srcs = _need(e, "inputs", list, where)
        if name in tensors:
            raise ModelFormatError(f"{where}: repeated tensor name {name!r}")
        missing = [s for s in srcs if not isinstance(s, str) or s not in tensors]
        if missing:
            raise ModelFormatError(f"{where} ({name!r}): inputs {missing or srcs!r} are not "
                                   f"earlier tensors")
        op = _op(e, where, arrays, used)
        t = node(op, tuple(tensors[s] for s in srcs), name)
        if "size" in e and e["size"] != t.size:
            raise ModelFormatError(f"{where}.size: manifest says {e['size']!r}, the op gives "
                                   f"{t.size}")
        tensors[name] = t
    bad = [o for o in outs if not isinstance(o, str) or o not in tensors]
    if bad:
        raise ModelFormatError(f"graph.outputs: unknown tensors {bad[:5]!r}")
    updates = []
    for i, u in enumerate(g.get("updates", [])):
        s, v = (_need(u, k, str, f"graph.updates[{i}]") for k in ("state", "value"))
        if s not in tensors or v not in tensors:
            raise ModelFormatError(f"graph.updates[{i}]: unknown tensors {s!r} -> {v!r}")
        updates.append((tensors[s], tensors[v]))
    return {"inputs": inputs, "outputs": [tensors[o] for o in outs], "updates": updates}
