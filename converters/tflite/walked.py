"""A TFLite graph walked one step at a time (:mod:`.statewalk`): the ``states=``,
``input_shapes=`` and ``constants=`` of :func:`converters.tflite.from_tflite`."""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

from ..common.guard import naming
from .registry import WALK
from .statewalk import Walker, state_pairs, updates


def walked(path, model, sg, states, input_shapes, constants, io_name, apply_layers) -> \
        edgernn.Model:
    """The graph walked one step at a time with shaped values (:mod:`.statewalk`):
    state input/output pairs, inputs of given shapes, inputs given as constants;
    ``io_name(model, t)`` names a graph input/output, ``apply_layers(op, layers, x,
    quant)`` applies converted layers."""
    def names(t):
        return io_name(model, t)

    known = {names(t) for t in sg.inputs}
    for what, given in (("input_shapes", input_shapes), ("constants", constants)):
        for n in set(given) - known:
            raise UnsupportedOpError(f"{what}: {n!r} is not a graph input; inputs: "
                                     f"{sorted(known)}")
    quant: dict = {}
    pairs = state_pairs(sg, names, states)
    consts = {t: _constant_input(sg.tensors[t], names(t), constants[names(t)])
              for t in sg.inputs if names(t) in constants}
    walker = Walker(sg, WALK, lambda op, layers, x: apply_layers(op, layers, x, quant), consts)
    inputs = []
    for t in sg.inputs:
        inp = sg.tensors[t]
        shape = _input_shape(inp, names(t), input_shapes.get(names(t)))
        if t in consts:
            continue
        if not inp.is_float:
            raise UnsupportedOpError(f"input {inp.name!r} is {np.dtype(inp.dtype).name}; "
                                     f"supported: float32 (or a value given in constants=)")
        if t in pairs:
            walker.values[t] = walker.source((names(t), shape), shape)
            continue
        x = edgernn.Input(int(np.prod(shape)), name=names(t))
        walker.values[t] = walker.source(x, shape)
        inputs.append(x)
    for op in sg.ops:
        with naming(f"{op} in subgraph {sg.name!r}"):
            walker.step(op)
    outputs = []
    for o in sg.outputs:
        if o in pairs.values():
            continue
        if o not in walker.values:
            raise ModelFormatError(f"output {sg.tensors[o].name!r} is not computed by the "
                                   f"supported ops from the inputs")
        t = walker.tensor(f"output {names(o)!r}", walker.values[o])
        if t.op is None or t.name is not None or any(t is u for u in outputs):
            t = edgernn.Slice(0, t.size)(t)
        t.name = names(o)
        outputs.append(t)
    news = updates(walker, pairs, names)
    provenance = {"source": "tflite", "file": path.name, "sha256": model.sha256,
                  "converter": "converters.tflite", "edgernn_version": edgernn.__version__,
                  "streaming": True, "state_persists": True, "output": "every_step"}
    for key, given in (("states", states), ("input_shapes", input_shapes),
                       ("constants", constants)):
        if given:
            provenance[key] = {k: (list(v) if key == "input_shapes" else
                                   np.asarray(v).tolist() if key == "constants" else v)
                               for k, v in given.items()}
    with naming("building the model from the converted operators"):
        m = edgernn.Model(inputs=inputs, outputs=outputs, updates=news, provenance=provenance)
        if not quant:
            return m
        from converters.quantize.imported import assemble

        return assemble(m, {t.name: quant[id(t)] for t in m.graph.nodes if id(t) in quant})


def _input_shape(inp, name, given) -> tuple:
    """The file's shape of input ``inp``, or ``given`` where it agrees with it."""
    shape = tuple(int(d) for d in inp.shape)
    if given is None:
        return shape
    given = tuple(int(d) for d in given)
    if given != shape:
        raise UnsupportedOpError(f"input_shapes: {name!r} is {list(given)}, the file's input "
                                 f"is {list(shape)} (signature "
                                 f"{list(inp.shape_signature or shape)}); supported: the "
                                 f"file's shape (resizing is not supported: export with the "
                                 f"shape fixed)")
    return shape


def _constant_input(inp, name, value) -> np.ndarray:
    """``value`` as input ``inp`` holds it (its dtype, broadcast to its shape)."""
    try:
        v = np.asarray(value)
        cast = v.astype(inp.dtype)
        if not np.array_equal(cast, v):
            raise ValueError(f"{value!r} is not exactly a {np.dtype(inp.dtype).name}")
        return np.broadcast_to(cast, tuple(inp.shape)).copy()
    except (TypeError, ValueError) as exc:
        raise UnsupportedOpError(f"constants: {name!r} is {np.dtype(inp.dtype).name}"
                                 f"{list(inp.shape)}; got {value!r} ({exc})") from None



__all__ = ["walked"]
