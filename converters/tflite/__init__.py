"""LiteRT / TFLite flatbuffers (``.tflite``) -> :class:`edgernn.Model`.

Reads the flatbuffer with the schema that ships with ``ai-edge-litert``
(imported lazily). The main subgraph takes one or more float inputs
``[1, T, I]`` (``T == 1``: a streaming model called once per step; several
inputs arrive concatenated, named after the model's signature) and gives one
or more outputs (several are named after the signature: ``model.split``).
Recurrent layers come as the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (state in
variable tensors), as ``WHILE`` loops (Keras RNN/LSTM/GRU; state in resource
variables when stateful) or as cells unrolled by Keras ``unroll=True`` (state
read and assigned through resource variables); a Keras causal ``Conv1D`` over
time (PAD, EXPAND_DIMS, CONV_2D or DEPTHWISE_CONV_2D, SQUEEZE) is a
``CausalConv1d`` (:mod:`.time_conv`) and a layer norm written out in MEAN,
SQUARED_DIFFERENCE, RSQRT, ... a ``LayerNorm`` (:mod:`.layer_norm`); the per-step
ops on the features are the tables of :mod:`.registry` (``OPS``, ``MERGE_OPS``:
unary math, activations, elementwise ops with broadcasting, reductions and pads of
the features, BATCH_MATMUL by a constant, ...). A ``STRIDED_SLICE`` taking the
last step of a sequence gives that tensor's last step only (a model with
``return_sequences=False`` when every output is such: ``Stream.run`` returns that
one row); only per-step ops may follow it.

With ``states=``, ``input_shapes=`` or ``constants=``, the model is called once
per step and its graph is walked with shaped values (:mod:`.statewalk`,
:data:`.registry.WALK`): convolutions, pooling, reductions and pads within a step,
transposes folded away.

>>> from converters import from_tflite
>>> model = from_tflite("model.tflite")             # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

from ..common.guard import naming
from .cells import _ancestors, find_cell, recognise_cell
from .fused_lstm import state_persists
from .layer_norm import find_layer_norms
from .litert_math import follow_litert, has_hybrid_products
from .registry import MERGE_OPS, OPS
from .schema import read_tflite
from .simple_ops import convert_reshape, last_step_slice
from .time_conv import find_time_convs
from .while_loop import convert_while

#: handled with the recurrent layer they belong to
STATE_OPS = {"CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"}
SUPPORTED = sorted([*OPS, *MERGE_OPS, "WHILE", *STATE_OPS, "unrolled RNN/LSTM/GRU cells",
                    "CONV_2D/DEPTHWISE_CONV_2D over time (Keras causal Conv1D)"])

__all__ = ["from_tflite", "read_tflite", "OPS"]


def from_tflite(path, states: dict | None = None, input_shapes: dict | None = None,
                constants: dict | None = None, arithmetic: str | None = None) -> edgernn.Model:
    """Convert a ``.tflite`` file (float32 models).

    Parameters
    ----------
    path : str or Path
    states : dict of graph input name -> graph output name, optional
        Recurrent state that LiteRT users feed back by hand (DTLN's
        ``{"input_3": "Identity_1"}``): the pair becomes state inside the
        model, one ``edgernn.state`` tensor per distinct slice of the input,
        updated from the same places of the output (:mod:`.statewalk`).
    input_shapes : dict of graph input name -> shape, optional
        The model is called once per step with inputs of these shapes (Silero's
        ``{"input": (1, 576)}``); the step's values are the input flattened
        (row-major), and the graph is walked with its axes (convolutions, pooling,
        reductions and pads within a step). A shape must be the file's, except
        on axes the file leaves dynamic.
    constants : dict of graph input name -> value, optional
        Inputs that are the same at every call (a sample rate), folded.

    arithmetic : "litert", "edgernn" or None
        "litert": ``LOGISTIC``, ``TANH``, ``MEAN`` and the hybrid int8 products
        compute as LiteRT's builtin kernels do, bit for bit
        (:func:`.litert_math.follow_litert`); "edgernn": edgernn's own. None (the
        default): "litert" for a file with int8 weights whose inputs are quantised
        per call (dynamic range: there a last-bit difference can move the next
        call's quantised input one step and the state with it), else "edgernn".

    With any of the first three, the graph is walked one step at a time
    (:mod:`.statewalk`); without, a ``[1, T, I]`` input is a sequence of steps.

    Returns
    -------
    edgernn.Model
        ``return_sequences`` is False when the source outputs the last step
        only (also ``provenance["output"]``). ``provenance`` records the file's
        SHA-256, whether the source model is streaming (input ``[1, 1, I]``),
        and ``state_persists``: False when some recurrent layer
        of the source starts from zero at every ``invoke`` (a non-stateful
        Keras GRU/RNN loop); an edgernn stream always carries its state, so
        call ``Stream.reset()`` where LiteRT would start afresh.

    Raises
    ------
    UnsupportedOpError
        Naming the operator (and subgraph) edgernn cannot run, and what is supported.
    ModelFormatError
        If the file is not a TFLite flatbuffer or an output is not computed from
        the inputs.
    """
    if arithmetic not in (None, "litert", "edgernn"):
        raise ValueError(f"arithmetic: expected 'litert', 'edgernn' or None, got "
                         f"{arithmetic!r}")
    m = _convert(Path(path), states, input_shapes, constants)
    if arithmetic == "litert" or arithmetic is None and has_hybrid_products(m):
        return follow_litert(m)
    return m


def _convert(path, states, input_shapes, constants) -> edgernn.Model:
    """:func:`from_tflite` in edgernn's own arithmetic."""
    buf = path.read_bytes()
    model = read_tflite(buf)
    sg = model.subgraphs[0]
    if not sg.inputs or not sg.outputs:
        raise UnsupportedOpError(f"main subgraph has {len(sg.inputs)} inputs and "
                                 f"{len(sg.outputs)} outputs; supported: one or more of each")
    if states or input_shapes or constants:
        from .walked import walked

        return walked(path, model, sg, states or {}, input_shapes or {}, constants or {},
                      _io_name, _apply)
    several = len(sg.inputs) > 1 or len(sg.outputs) > 1
    values: dict = {}  # tensor index -> (edgernn Tensor, last step only)
    inputs = []
    for t in sg.inputs:
        inp = sg.tensors[t]
        if not inp.is_float or len(inp.shape) != 3 or inp.shape[0] != 1 or \
                inp.shape[1] != sg.tensors[sg.inputs[0]].shape[1]:
            pair = [_io_name(model, o) for o in sg.outputs
                    if list(sg.tensors[o].shape) == list(inp.shape)]
            hint = (f" (a state input fed back from output {pair[0]!r}? pass states="
                    f"{{{_io_name(model, t)!r}: {pair[0]!r}}}, or --state "
                    f"{_io_name(model, t)}={pair[0]})") if pair else (
                f" (one step per call of this shape? pass input_shapes={{"
                f"{_io_name(model, t)!r}: {tuple(int(d) for d in inp.shape)}}}, or "
                f"--input-shape {_io_name(model, t)}={','.join(str(d) for d in inp.shape)})")
            raise UnsupportedOpError(f"input {inp.name!r} is {np.dtype(inp.dtype).name}"
                                     f"{list(inp.shape)}; supported: float32[1, T, I], one T "
                                     f"for all inputs{hint}")
        x = edgernn.Input(inp.shape[2], name=_io_name(model, t) if several else None)
        values[t] = (x, False)
        inputs.append(x)
    steps = sg.tensors[sg.inputs[0]].shape[1]
    with naming(f"subgraph {sg.name!r}"):
        _check_variable_inits(model)
        units = _units(model, sg)
    persists, quant = True, {}
    for pos in sorted(units):
        kind, op, payload = units[pos]
        with naming(f"{op} in subgraph {sg.name!r}"):
            srcs = _data_inputs(sg, kind, op, payload)
            missing = [t for t in srcs if t not in values]
            if missing or not srcs:
                raise UnsupportedOpError(f"{op} in subgraph {sg.name!r} takes "
                                         f"{[sg.tensors[t].name for t in missing] or 'no data'}, "
                                         f"which no input or supported op gives "
                                         f"({', '.join(SUPPORTED)})")
            last = {values[t][1] for t in srcs}
            if len(last) > 1:
                raise UnsupportedOpError(f"{op} in subgraph {sg.name!r} combines the last time "
                                         f"step (a STRIDED_SLICE) with data of every step")
            last = last.pop()
            if last and (kind != "op" or op.name == "UNIDIRECTIONAL_SEQUENCE_LSTM"):
                raise UnsupportedOpError(f"{op} in subgraph {sg.name!r} runs a recurrent layer "
                                         f"over the last time step only (it follows a "
                                         f"STRIDED_SLICE of the last step); supported: per-step "
                                         f"ops after that slice")
            x = values[srcs[0]][0]
            if kind == "cell":
                outs, t = [payload[1]], _apply(op, [payload[0]], x, quant)
            elif kind == "unit":
                outs, t = [payload[1]], _apply(op, payload[0], x, quant)
            elif kind == "while":
                outs, t = payload[1], _apply(op, [_hybrid_cell(model, op, payload[0])], x, quant)
                persists &= payload[3]
            elif op.name in MERGE_OPS:
                args = [values[i][0] if i in values else sg.const(i) for i in op.inputs]
                if any(a is None for a in args):
                    raise UnsupportedOpError(f"{op} in subgraph {sg.name!r} takes a tensor that is "
                                             f"neither data nor a constant")
                outs, t = op.outputs[:1], MERGE_OPS[op.name](sg, op, args)
            else:
                if op.name == "UNIDIRECTIONAL_SEQUENCE_LSTM":
                    persists &= state_persists(sg, op)
                if op.name == "STRIDED_SLICE":
                    last |= last_step_slice(sg, op) and steps != 1
                outs, t = op.outputs[:1], _apply(op, OPS[op.name](sg, op), x, quant)
            for o in outs:
                values[o] = (t, last)
    outputs, lasts = [], []
    for o in sg.outputs:
        if o not in values:
            raise ModelFormatError(f"output {sg.tensors[o].name!r} is not computed by the "
                                   f"supported ops from the inputs")
        t, last = values[o]
        if several and (t.op is None or t.name is not None or any(t is u for u in outputs)
                        or t.op.state_vectors()):
            t = edgernn.Slice(0, t.size)(t, name=_io_name(model, o))
        elif several:
            t.name = _io_name(model, o)
        outputs.append(t)
        lasts.append(last)
    if steps == 1 and not persists:
        warnings.warn(f"{path.name}: the LiteRT model takes one step per invoke but starts "
                      f"a recurrent layer from zero state at every invoke (a non-stateful "
                      f"Keras layer); the edgernn stream carries its state from step to step",
                      stacklevel=3)
    last_step = all(lasts)
    provenance = {"source": "tflite", "file": path.name, "sha256": model.sha256,
                  "converter": "converters.tflite", "edgernn_version": edgernn.__version__,
                  "streaming": steps == 1, "state_persists": persists,
                  "output": "last_step" if last_step else "every_step"}
    with naming("building the model from the converted operators"):
        if quant:
            return _assemble(inputs, outputs, quant, provenance, not last_step)
        return edgernn.Model(inputs=inputs, outputs=outputs, provenance=provenance,
                             return_sequences=not last_step)


def _assemble(inputs, outputs, quant, provenance, return_sequences):
    """A pre-quantised source (LiteRT int8 weights): the graph with its SourceQuant
    ops as int8 ops (:func:`converters.quantize.imported.assemble`)."""
    from converters.quantize.imported import assemble

    model = edgernn.Model(inputs=inputs, outputs=outputs, provenance=provenance,
                          return_sequences=return_sequences)
    return assemble(model, {t.name: quant[id(t)] for t in model.graph.nodes
                            if id(t) in quant})


def _io_name(model, t) -> str:
    """The signature name of tensor ``t`` (its tensor name without ``serving_default_``
    and ``:0`` when there is no signature)."""
    name = model.io_names.get(t) or model.subgraphs[0].tensors[t].name
    name = name.removeprefix("serving_default_").split(":")[0].replace("/", "_")
    return name or f"t{t}"


def _apply(op, layers, x, quant):
    """``layers`` applied in turn to ``x`` (a Tensor); a SourceQuant's float layer is
    applied and the SourceQuant kept in ``quant`` under the new tensor's id."""
    from converters.quantize.imported import SourceQuant

    try:
        for layer in layers:
            if isinstance(layer, SourceQuant):
                x = layer.layer(x)
                quant[id(x)] = layer
            else:
                x = layer(x)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{op}: {exc}") from None
    return x


def _hybrid_cell(model, op, layer):
    """A recurrent layer recognised in a WHILE body whose FULLY_CONNECTEDs have int8
    weights (dynamic range): the layer as ``int8-weights`` with per-row scales
    (LiteRT quantises each FC per output channel, so ``max|row| / 127`` gives them
    back exactly; :func:`converters.quantize.imported.int8_weights` checks it)."""
    body = model.subgraphs[op.opt("BodySubgraphIndex")]
    fcs = [o for o in body.ops if o.name == "FULLY_CONNECTED"]
    int8 = [o for o in fcs if body.tensors[o.inputs[1]].type_code == 9]
    if not int8:
        return layer
    if len(int8) != len(fcs):
        raise UnsupportedOpError(f"{op}: loop body {body.name!r} mixes float and int8 "
                                 f"FULLY_CONNECTED weights")
    from converters.quantize.imported import SourceQuant
    from converters.quantize.qlayer import quantize_weight

    from .fused_lstm import DRQ_NOTE

    asym = {bool(o.opt("AsymmetricQuantizeInputs", False)) for o in int8}
    scales = {n: quantize_weight(getattr(layer, n))[1] for n in ("weight_ih", "weight_hh")}
    return SourceQuant(layer, "int8-weights", scales, dynamic_zero_point=asym == {True},
                       source={"kind": "tflite dynamic range (WHILE loop)",
                               "asymmetric_inputs": sorted(asym)},
                       round_half_away=True, note=DRQ_NOTE)


def _data_inputs(sg, kind, op, payload):
    if kind in ("cell", "unit"):
        return [payload[2]]
    if kind == "while":
        return [op.inputs[payload[2]]]
    if op.name in MERGE_OPS:
        return [t for t in op.inputs if t >= 0 and sg.const(t) is None]
    return op.inputs[:1]


def _units(model, sg) -> dict:
    """Op position -> ("op" | "cell" | "while", op, payload), cells' ops folded in."""
    units, used = {}, set()
    for op in sg.ops:
        if op.name == "WHILE":
            layer, x_pos, h_outputs, persists = convert_while(model, sg, op)
            units[op.index] = ("while", op, (layer, h_outputs, x_pos, persists))
    for reads, assigned in _unrolled_state_groups(sg):
        ops, x = find_cell(sg, reads, assigned)
        layer, _, h_out = recognise_cell(sg, ops, x, reads, assigned)
        units[ops[-1].index] = ("cell", ops[-1], (layer, h_out, x))  # after its input exists
        used |= {o.index for o in ops}
    for indices, last, layers, x, out in find_time_convs(sg):
        units[last.index] = ("unit", last, (layers, out, x))
        used |= set(indices)
    for indices, last, layers, x, out in find_layer_norms(sg, used):
        units[last.index] = ("unit", last, (layers, out, x))
        used |= set(indices)
    for op in sg.ops:
        if op.index in used or op.index in units or op.name in STATE_OPS:
            continue
        if op.name not in OPS and op.name not in MERGE_OPS:
            raise UnsupportedOpError(f"operator {op.name} (index {op.index}) in subgraph "
                                     f"{sg.name!r} is not supported; supported: "
                                     f"{', '.join(SUPPORTED)}")
        if OPS.get(op.name) is convert_reshape:
            convert_reshape(sg, op)  # a shape op that splits time fails here, first
        units[op.index] = ("op", op, None)
    return units


def _unrolled_state_groups(sg):
    """[(read tensors, assigned tensors)] per unrolled cell; a WHILE's state excluded."""
    handle_of = {}
    for op in sg.ops:
        if op.name == "VAR_HANDLE":
            handle_of[op.outputs[0]] = op.opt("SharedName", b"") or op.outputs[0]
    reads, assigns = {}, {}
    for op in sg.ops:
        if op.name == "READ_VARIABLE":
            if any(c.name == "WHILE" for c in sg.consumers.get(op.outputs[0], [])):
                continue
            reads[handle_of.get(op.inputs[0], op.inputs[0])] = op.outputs[0]
        elif op.name == "ASSIGN_VARIABLE":
            assigns[handle_of.get(op.inputs[0], op.inputs[0])] = op.inputs[1]
    vars_ = [v for v in reads if v in assigns]
    anc = {v: _ancestors(sg, [assigns[v]]) for v in vars_}
    read_op = {v: sg.producer[reads[v]].index for v in vars_}
    groups = []
    for v in vars_:
        for g in groups:
            if all(read_op[v] in anc[u] and read_op[u] in anc[v] for u in g):
                g.append(v)
                break
        else:
            groups.append([v])
    return [([reads[v] for v in g], [assigns[v] for v in g]) for g in groups]


def _check_variable_inits(model):
    """Resource variables must start at zero, as an edgernn stream does."""
    for sg in model.subgraphs:
        for op in sg.ops:
            if op.name == "ASSIGN_VARIABLE":
                init = sg.const(op.inputs[1])
                if init is not None and np.any(init):
                    raise UnsupportedOpError(f"{op} in subgraph {sg.name!r} initialises a "
                                             f"state variable to non-zero values; edgernn "
                                             f"streams start from zero")
