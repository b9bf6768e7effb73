"""ONNX models -> :class:`edgernn.Model`.

The graph is walked once, symbolically (see :mod:`converters.onnx.values`):
recurrent nodes (LSTM, GRU, RNN), Gemm/MatMul, activations, embedding lookups
and the per-step ops on data (Concat, Split, Slice and Gather along the
features; Add, Sub, Mul, Div of data by data or by constants) become nodes of
an edgernn graph; the shape plumbing exporters put around them (Transpose,
Squeeze, Reshape, Slice, Gather, Concat, Shape chains that build zero states,
...) is tracked and checked, never guessed at. Anything else raises
:class:`edgernn.UnsupportedOpError` naming the node. The op table is
:data:`converters.onnx.registry.OPS`. Bias adds, constant scales and
activations after a Gemm/MatMul fold into its Dense (:mod:`.fold`).

Graph inputs: one or more data inputs (float ``[T, B, F]``-like sharing their
time and batch axes, or integer token ids before an embedding): the model
takes them concatenated in graph order (``model.inputs``). Graph inputs
reaching a recurrent node's ``initial_h``/``initial_c`` are *state inputs* and
graph outputs coming from ``Y_h``/``Y_c`` are *state outputs*: they map onto
the stream's state, so a one-step export ``x, h0[, c0] -> y, hn[, cn]``
streams with ``Stream.step`` (the stream carries what ONNX Runtime would be
fed back). Every other graph output is a model output, named after it
(``model.outputs``, ``model.split(y)``; see :mod:`.finish`).

Convolution caches passed in and out by hand (streaming exports: ``cat =
Concat(cache, x_t, time)``, a Conv without time padding, ``cache_out = cat[:, :,
1:]``) are generic state too, held frame by frame (:mod:`.cache`); such graphs
often take one frame channels-first, ``[1, C, 1]`` or ``[1, C, 1, F]``: its
step holds the ``(C, F)`` values.

The mapping is stored JSON-able in ``model.provenance["onnx_io"]`` (it
survives ``save``/``load``); :func:`run_like_onnx` uses it to answer a feed
dict like ONNX Runtime would (batch rows, layouts, ``sequence_lens``, initial
states, ``Y_h``/``Y_c``), one stream per batch row.

Non-zero constant ``initial_h``/``initial_c`` become the model's
``initial_state`` (a fresh or reset stream starts from it; it is saved in the
``.ernn`` file), unless they differ between batch rows: one model has one
initial state, so then a warning says so and :func:`initial_state` gives each
row's. A graph whose outputs are all the last time step (``Y_h`` used as data,
``y[-1]``, ``y[:, -1]``) gives a model with ``return_sequences=False``:
``Stream.run`` returns that one row.

>>> model = from_onnx("lstm.onnx")                     # doctest: +SKIP
>>> s = model.stream(); ys = s.run(xs)                 # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections import deque
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

from ..common.guard import naming
from .cache import check_frames, one_frame
from .context import Context, node_desc
from .finish import build_model, tensor_name
from .registry import MS_OPS, NO_FOLD, OPS, REFUSED, SHAPE_ARITH
from .runner import initial_state, run_like_onnx
from .validate import check_graph
from .values import Const, Opaque, Seq, ShapeOf, StateIn

__all__ = ["from_onnx", "run_like_onnx", "initial_state", "OPS"]

_RECURRENT = {"LSTM", "GRU", "RNN", "DynamicQuantizeLSTM"}


def _load(model):
    if isinstance(model, onnx.ModelProto):
        data = model.SerializeToString()
        return model, data, getattr(model.graph, "name", "") or "<ModelProto>"
    path = Path(model)
    try:
        data = path.read_bytes()
        return onnx.load(str(path)), data, path.name  # onnx.load resolves external data
    except OSError as exc:
        raise ModelFormatError(f"cannot read ONNX file {str(path)!r}: {exc}") from exc
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelFormatError(f"{str(path)!r} is not an ONNX model: {exc}") from exc


def _classify(graph, names) -> dict:
    """Per graph input: "state" if it reaches a recurrent node's input 4, 5 or 6
    (sequence_lens, initial_h, initial_c), "weight" for inputs 1, 2, 3 or 7
    (W, R, B, P), else "data"."""
    users: dict[str, list] = {}
    for node in graph.node:
        for i, n in enumerate(node.input):
            users.setdefault(n, []).append((node, i))
    out = {}
    for name in names:
        hits, seen, todo = set(), {name}, deque([name])
        while todo:
            for node, i in users.get(todo.popleft(), ()):
                if node.op_type in _RECURRENT:
                    hits.add("data" if i == 0 else "state" if i in (4, 5, 6) else "weight")
                elif node.op_type not in ("Shape", "Size"):
                    for o in node.output:
                        if o not in seen:
                            seen.add(o)
                            todo.append(o)
        if len(hits) > 1:
            raise UnsupportedOpError(f"graph input {name!r} is used both as data and as "
                                     f"recurrent state")
        out[name] = hits.pop() if hits else "data"
    return out


#: an output named as an input plus one of these gives that input back (Silero's
#: ``state`` -> ``stateN``; ``h1`` -> ``h1_out``)
_STATE_SUFFIXES = ("N", "n", "_out", "_next", "_new", "_n", ".out")


def _state_pairs(graph, inputs, kinds, states) -> dict:
    """Generic state: graph input -> graph output (``states``, else found by name and
    shape: the output's name extends the input's, e.g. ``stateN``, ``h1_out``)."""
    outs = {o.name: o for o in graph.output}
    ins = {vi.name: vi for vi in inputs}
    if states is not None:
        pairs = dict(states)
        for i, o in pairs.items():
            if i not in ins or o not in outs:
                raise ModelFormatError(f"states: {i!r} -> {o!r} is not a graph input -> graph "
                                       f"output pair; inputs {sorted(ins)}, outputs "
                                       f"{sorted(outs)}")
        return pairs
    pairs = {}
    for name, vi in ins.items():
        if kinds[name] != "data":
            continue
        shape = _dims(vi)[0]
        for o in outs.values():
            same = len(_dims(o)[0]) == len(shape) and all(
                a == b or None in (a, b) for a, b in zip(_dims(o)[0], shape, strict=True))
            if o.name[len(name):] in _STATE_SUFFIXES and o.name.startswith(name) and same:
                pairs[name] = o.name
                break
    return pairs


def _dims(vi) -> tuple:
    t = vi.type.tensor_type
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in t.shape.dim), t.elem_type


def _constant(ctx, node):
    at = ctx.attrs(node)
    if "value" in at:
        return numpy_helper.to_array(at["value"])
    for k, dt in (("value_float", np.float32), ("value_floats", np.float32),
                  ("value_int", np.int64), ("value_ints", np.int64)):
        if k in at:
            return np.array(at[k], dt)
    raise ctx.unsupported(node, f"Constant with attributes {sorted(at)}")


def _fold(ctx, node, opset_imports):
    """Evaluate a node whose inputs are all constant with ONNX's reference evaluator."""
    from onnx.reference import ReferenceEvaluator

    feeds = {n: ctx.env[n].value for n in node.input if n}
    g = helper.make_graph([node], "fold",
                          [helper.make_tensor_value_info(n, 0, None) for n in feeds],
                          [helper.make_tensor_value_info(o, 0, None) for o in node.output if o])
    m = helper.make_model(g, opset_imports=opset_imports)
    try:
        res = ReferenceEvaluator(m).run(None, feeds)
    except Exception as exc:
        raise ctx.unsupported(node, f"could not evaluate its constant inputs ({exc})") from exc
    return [Const(np.asarray(r)) for r in res]


def _probe(ctx, node, ins, opset_imports) -> list:
    """Shape arithmetic on runtime shapes: evaluated on each of its inputs' two probes
    (:class:`ShapeOf`), or an unknown ShapeOf when some input has none."""
    from onnx.reference import ReferenceEvaluator

    if any(isinstance(v, ShapeOf) and v.probes is None for v in ins):
        return [ShapeOf()]
    names = [n for n in node.input if n]
    g = helper.make_graph([node], "probe",
                          [helper.make_tensor_value_info(n, 0, None) for n in names],
                          [helper.make_tensor_value_info(o, 0, None) for o in node.output if o])
    runs = []
    for k in (0, 1):
        feeds = {n: (v.probes[k] if isinstance(v, ShapeOf) else v.value)
                 for n, v in zip(node.input, ins, strict=True) if n}
        try:
            runs.append(ReferenceEvaluator(helper.make_model(
                g, opset_imports=opset_imports)).run(None, feeds))
        except Exception:
            return [ShapeOf()]
    return [ShapeOf((np.asarray(a), np.asarray(b))) for a, b in zip(*runs, strict=True)]


def _as_input_type(vi, value) -> np.ndarray:
    """``constants[name]`` in the element type graph input ``vi`` declares (refused when
    the value does not survive the cast, e.g. 0.5 for an int64 input)."""
    arr = np.asarray(value)
    elem = vi.type.tensor_type.elem_type
    if not elem:
        return arr
    out = arr.astype(onnx.helper.tensor_dtype_to_np_dtype(elem))
    if not np.array_equal(out, arr):
        raise ModelFormatError(f"constants: {vi.name} is {out.dtype}; {value!r} is not one")
    return out


def from_onnx(model, *, constants=None, states=None, input_shapes=None) -> edgernn.Model:
    """Convert an ONNX model.

    Parameters
    ----------
    model : str, Path or onnx.ModelProto
    constants : dict of name -> array, optional
        Graph inputs to treat as initializers (e.g. ``W``/``R``/``B`` fed as inputs
        in the ONNX backend tests).
    input_shapes : dict of graph input name -> tuple of int, optional
        Shapes for inputs the graph declares with dynamic dimensions (Silero VAD:
        ``{"input": (1, 576), "state": (2, 1, 128)}``); shape arithmetic and ``If``
        nodes on them then fold at conversion.
    states : dict of graph input name -> graph output name, optional
        State the graph reads from an input and returns in an output, which the
        caller feeds back (DTLN's ``input_5`` -> ``tf_op_layer_stack_5``). It becomes
        state inside the model (``edgernn.state``, updated each step), in any layout.
        Pairs whose output is named as the input plus ``N``, ``_out``, ``_next`` or
        ``_new`` (``state`` -> ``stateN``, ``h1`` -> ``h1_out``) and has its shape are
        found without it (convolution caches too: ``cache1`` -> ``cache1_out``);
        state reaching a recurrent node's ``initial_h``/``initial_c`` always is.

    Returns
    -------
    edgernn.Model
        float32; ``provenance`` holds source file, SHA-256, converter, opset and
        ``onnx_io`` (the graph I/O mapping). ``return_sequences`` is False when
        every graph output is the last time step; ``initial_state`` holds
        non-zero constant ``initial_h``/``initial_c`` (None: zeros).

    Raises
    ------
    UnsupportedOpError
        An op, attribute or graph shape edgernn cannot run (names the node).
    ModelFormatError
        An unreadable or inconsistent model.
    """
    proto, raw, fname = _load(model)
    graph = proto.graph
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
    check_graph(graph, opset, node_desc)
    ctx = Context(opset, set(OPS) - REFUSED, graph)
    for t in graph.initializer:
        ctx.env[t.name] = Const(numpy_helper.to_array(t))
    constants = dict(constants or {})
    inputs = [vi for vi in graph.input if vi.name not in ctx.env]
    unknown = set(constants) - {vi.name for vi in inputs}
    if unknown:
        raise ModelFormatError(f"constants: {sorted(unknown)} are not graph inputs; graph "
                               f"inputs are {[vi.name for vi in inputs]}")
    for vi in inputs:
        if vi.name in constants:
            ctx.env[vi.name] = Const(_as_input_type(vi, constants[vi.name]))
    inputs = [vi for vi in inputs if vi.name not in constants]
    kinds = _classify(graph, [vi.name for vi in inputs])
    ctx.pairs = _state_pairs(graph, inputs, kinds, states)
    for name in ctx.pairs:
        if kinds[name] == "data":  # (state reaching a recurrent node stays its state)
            kinds[name] = "generic"
    data = [vi for vi in inputs if kinds[vi.name] == "data"]
    if not data:
        raise UnsupportedOpError(f"expected a data graph input besides recurrent state "
                                 f"inputs, got only {[vi.name for vi in inputs]}")
    names: set = set()
    shapes = dict(input_shapes or {})
    unknown = set(shapes) - {vi.name for vi in inputs}
    if unknown:
        raise ModelFormatError(f"input_shapes: {sorted(unknown)} are not graph inputs; graph "
                               f"inputs are {[vi.name for vi in inputs]}")
    for vi in inputs:
        shape, et = _dims(vi)
        if vi.name in shapes:
            given = tuple(int(d) for d in shapes[vi.name])
            if len(given) != len(shape) or any(a not in (None, b) for a, b in
                                               zip(shape, given, strict=True)) or min(given) < 1:
                raise ModelFormatError(f"input_shapes[{vi.name!r}]: {list(given)} does not fit "
                                       f"the graph's {['?' if d is None else d for d in shape]}")
            shape = given
        if kinds[vi.name] in ("state", "generic"):
            ctx.env[vi.name] = StateIn(vi.name, shape, tuple(range(len(shape))),
                                       generic=kinds[vi.name] == "generic")
            continue
        if kinds[vi.name] == "weight":
            ctx.env[vi.name] = Opaque(f"graph input {vi.name!r} (weights must be initializers "
                                      f"or given with constants=)")
            continue
        tokens = et not in (1, 10, 11, 16)
        channels_first = (not tokens and len(shape) == 3 and shape[2] is None
                          and shape[1] is not None)   # [N, C, T] (a TCN's input)
        frame = one_frame(shape, tokens, ctx.pairs)
        if not shape or (not tokens and shape[-1] is None and not channels_first):
            raise ModelFormatError(f"data input {vi.name!r} needs a static feature size, got "
                                   f"shape {shape}")
        if tokens and len(data) > 1:
            raise UnsupportedOpError(f"token id input {vi.name!r} next to other data inputs "
                                     f"{[d.name for d in data if d is not vi]}; a model "
                                     f"taking token ids has that one input")
        k = len(ctx.io["data"])
        axes = tuple(f"?{k}.{j}" for j in range(len(shape) - (0 if tokens else 1)))
        axes += () if tokens else ("F",)
        if channels_first or frame:
            axes = (axes[0], "F", axes[1]) + (("L",) if len(shape) == 4 else ())
        size = shape[1] * (shape[3] if len(shape) == 4 else 1) if frame else \
            shape[1 if channels_first else -1]
        x = edgernn.Input(1 if tokens else size, name=tensor_name(vi.name, names))
        ctx.env[vi.name] = Seq(x, axes, shape, tokens=tokens)
        ctx.inputs.append(x)
        ctx.io["data"].append({"name": vi.name, "tokens": tokens, "size": x.size})
    ctx.static_inputs = all(None not in ctx.env[r["name"]].sizes for r in ctx.io["data"]
                            if isinstance(ctx.env.get(r["name"]), Seq))
    for k, node in enumerate(graph.node):
        if k in ctx.live:  # nodes no graph output depends on are ignored
            with naming(node_desc(node)):
                _convert_node(ctx, node, proto.opset_import)
    with naming("building the model from the converted nodes"):
        return build_model(ctx, graph, names, _provenance(ctx, fname, raw, proto))



def _if(ctx, node, ins, opset_imports) -> list:
    """An ``If`` whose condition is known at conversion: its taken branch's nodes, walked
    as if they stood here (they read outer values by name)."""
    cond = ins[0]
    if not isinstance(cond, Const):
        raise ctx.unsupported(node, "If whose condition is known only at run time (give the "
                                    "inputs it depends on with constants= or input_shapes=)")
    c = np.asarray(cond.value)
    if c.size != 1:
        raise ctx.bad(node, f"If condition of shape {list(c.shape)}; expected one value")
    at = ctx.attrs(node)
    branch = at["then_branch" if bool(c.reshape(-1)[0]) else "else_branch"]
    for t in branch.initializer:
        ctx.env[t.name] = Const(numpy_helper.to_array(t))
    for inner in branch.node:
        with naming(node_desc(inner)):
            _convert_node(ctx, inner, opset_imports)
    return [ctx.value(o.name) for o in branch.output]


def _provenance(ctx, fname, raw, proto) -> dict:
    return {"source": "onnx", "source_file": fname,
            "source_sha256": hashlib.sha256(raw).hexdigest(),
            "converter": f"edgernn {edgernn.__version__}", "converter_module": "converters.onnx",
            "opset": ctx.opset, "producer": f"{proto.producer_name} {proto.producer_version}"
            .strip()}


def _convert_node(ctx, node, opset_imports):
    if node.domain == "com.microsoft" and node.op_type in MS_OPS:
        outs = MS_OPS[node.op_type](ctx, node, [ctx.value(n) for n in node.input])
        for k, name in enumerate(node.output):
            if name:
                ctx.env[name] = outs[k] if k < len(outs) else Opaque(node_desc(node))
        return
    if node.domain not in ("", "ai.onnx"):
        raise ctx.unsupported(node, f"custom domain {node.domain!r} (supported from "
                                    f"com.microsoft: {sorted(MS_OPS)})")
    ins = [ctx.value(n) for n in node.input]
    for n, v in zip(node.input, ins, strict=True):
        if isinstance(v, Opaque):
            raise ctx.unsupported(node, f"uses {n!r} from {v.producer}, which edgernn does "
                                        f"not model")
    check_frames(ctx, node, ins)
    present = [v for v in ins if v is not None]
    if node.op_type == "If":
        outs = _if(ctx, node, ins, opset_imports)
    elif node.op_type == "Constant":
        outs = [Const(_constant(ctx, node))]
    elif present and all(isinstance(v, Const) for v in present) and \
            node.op_type not in NO_FOLD:
        outs = _fold(ctx, node, opset_imports)
    elif node.op_type in SHAPE_ARITH and any(isinstance(v, ShapeOf) for v in present) and \
            all(isinstance(v, (Const, ShapeOf)) for v in present):
        outs = _probe(ctx, node, ins, opset_imports)
    else:
        handler = OPS.get(node.op_type)
        if handler is None:
            raise ctx.unsupported(node, f"op type {node.op_type!r} is not supported")
        outs = handler(ctx, node, ins)
    for k, name in enumerate(node.output):
        if name:
            ctx.env[name] = outs[k] if k < len(outs) else Opaque(node_desc(node))
