"""A Keras functional model -> an edgernn graph.

Every call of a layer (see :class:`~converters.keras.reader.Call`) becomes
nodes applied to the tensors it is called on: the layer's converter (from
:data:`converters.keras.LAYERS`) gives a list of ops; the first takes all the
call's tensors (a binary op left to right over more than two), the others the
previous result; a layer without ops (Dropout, InputLayer) passes its one
tensor on. Nodes are named after their Keras layer (``"<layer>@<k>"`` for the
k-th call of a shared layer, ``"<name>#<j>"`` for all but the last op of a
call), so state is ``"<gru layer>.h"``; inputs and outputs are named after the
Input layers and output layers (an output that is another layer's tensor is a
zero-copy view).

A recurrent layer with ``return_sequences=False`` gives the last step only:
only per-step layers may use that tensor, and it cannot be combined with a
tensor of every step. The model has ``return_sequences=False`` when all its
outputs are such tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

from .common import TensorInfo
from .reader import Ref

#: ``keras.ops`` a functional model may store as if they were layers
KERAS_OPS = ("Add", "Subtract", "Multiply", "Concatenate")


@dataclass
class KTensor:
    tensor: object   # edgernn.Tensor
    rank: int
    last: bool = False


def _input(layer) -> KTensor:
    cfg = layer.config
    shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
    dtype = cfg.get("dtype", "float32")
    dtype = dtype.get("config", {}).get("name", "float32") if isinstance(dtype, dict) else \
        str(dtype)
    if not isinstance(shape, list) or len(shape) < 2:
        raise ModelFormatError(f"Input layer {layer.name!r}: no usable shape in its config "
                               f"({shape!r})")
    tokens = dtype.startswith(("int", "uint"))
    size = 1 if tokens else shape[-1]
    if not isinstance(size, int) or size < 1:
        raise ModelFormatError(f"Input layer {layer.name!r}: needs a static feature size, got "
                               f"shape {shape}")
    name = _clean(layer.name)
    return KTensor(edgernn.Input(size, name=name), len(shape))


def _clean(name) -> str:
    return str(name).replace("/", "_") or "layer"


def build(kf, ctx, layers: dict, recurrent: set, per_step: set):
    """The graph of ``kf`` (a functional :class:`KerasFile`).

    Returns
    -------
    inputs, outputs : lists of edgernn Tensors
    last : list of bool, per output: the last step only
    """
    by_name = {layer.name: layer for layer in kf.layers}
    values: dict[Ref, KTensor] = {}
    inputs = []
    for ref in kf.inputs:
        layer = by_name.get(ref.layer)
        if layer is None or layer.class_name != "InputLayer":
            raise ModelFormatError(f"model input {ref.layer!r} is not an InputLayer")
        kt = _input(layer)
        values[Ref(ref.layer, 0, 0)] = kt
        inputs.append(kt.tensor)
    todo = [(layer, k, call) for layer in kf.layers if layer.class_name != "InputLayer"
            for k, call in enumerate(layer.calls)]
    while todo:  # in the file's order (topological as Keras writes it) where possible
        waiting = []
        for layer, k, call in todo:
            if all(a in values for a in call.args if isinstance(a, Ref)):
                values[Ref(layer.name, k, 0)] = _call(layer, k, call, values, ctx, layers,
                                                      recurrent, per_step)
            else:
                waiting.append((layer, k, call))
        if len(waiting) == len(todo):
            layer, _, call = todo[0]
            missing = [a.layer for a in call.args if isinstance(a, Ref) and a not in values]
            raise UnsupportedOpError(f"layer {layer.name!r} ({layer.class_name}) takes tensors "
                                     f"of {missing}, which no input or converted layer gives")
        todo = waiting
    outputs, last, used = [], [], {t.name for t in inputs}
    used |= {kt.tensor.name for kt in values.values()}
    for ref in kf.outputs:
        kt = values.get(ref)
        if kt is None:
            raise UnsupportedOpError(f"model output {ref.layer!r} (call {ref.node}, tensor "
                                     f"{ref.tensor}) is not produced by a converted layer")
        t, name = kt.tensor, _clean(ref.layer)
        if t.name != name or t.op is None or any(t is o for o in outputs):
            base, j = name, 0
            while name in used:
                j += 1
                name = f"{base}.out{j}" if j > 1 else f"{base}.out"
            used.add(name)
            t = edgernn.Slice(0, t.size)(t, name=name)
        outputs.append(t)
        last.append(kt.last)
    return inputs, outputs, last


def _call(layer, k, call, values, ctx, layers, recurrent, per_step) -> KTensor:
    where = f"layer {layer.name!r} ({layer.class_name})"
    if layer.module.startswith("keras.src.ops") and layer.class_name not in KERAS_OPS:
        raise UnsupportedOpError(f"{where}: the Keras op {layer.module}.{layer.class_name} is "
                                 f"not supported; supported ops: {list(KERAS_OPS)}")
    if layer.class_name == "TFOpLambda":
        raise UnsupportedOpError(f"{where}: a TensorFlow function in the graph "
                                 f"({layer.config.get('function')!r}) is not supported; use "
                                 f"the Keras layers Add, Subtract, Multiply, Concatenate")
    conv = layers.get(layer.class_name)
    if conv is None:
        raise UnsupportedOpError(f"layer {layer.name!r} of class {layer.class_name!r} is not "
                                 f"supported; supported classes: {sorted(layers)}")
    if call.extra:
        raise UnsupportedOpError(f"{where}: takes tensors {[r.layer for r in call.extra]} by "
                                 f"keyword (an initial_state or a mask); edgernn layers take "
                                 f"their inputs only")
    ins = [values[a] if isinstance(a, Ref) else a for a in call.args]
    kts = [a for a in ins if isinstance(a, KTensor)]
    if not kts:
        raise UnsupportedOpError(f"{where} takes no tensor")
    lasts = {kt.last for kt in kts}
    if len(lasts) > 1 or len({kt.rank for kt in kts}) > 1:
        raise UnsupportedOpError(f"{where} combines tensors of every step with the last-step "
                                 f"output of a return_sequences=False layer"
                                 if len(lasts) > 1 else
                                 f"{where} combines tensors of ranks "
                                 f"{sorted({kt.rank for kt in kts})}")
    last = lasts.pop()
    if last and layer.class_name not in per_step:
        raise UnsupportedOpError(f"{where} takes the last-step output of a "
                                 f"return_sequences=False layer; only per-step layers "
                                 f"{sorted(per_step)} may follow such a layer")
    ctx.call = [TensorInfo(a.tensor.size, a.rank) if isinstance(a, KTensor) else a
                for a in ins]
    try:
        ops = conv(layer, ctx)
    except ValueError as exc:
        if isinstance(exc, ModelFormatError):
            raise
        raise ModelFormatError(f"{where}: {exc}") from exc
    finally:
        ctx.call = None
    name = _clean(layer.name) if k == 0 else f"{_clean(layer.name)}@{k}"
    t = _apply(where, ops, [kt.tensor for kt in kts], name)
    rank = kts[0].rank
    if layer.class_name in recurrent:
        inner = layer.config.get("layer", {}).get("config", {}) \
            if layer.class_name == "Bidirectional" else layer.config
        if not inner.get("return_sequences", False):
            last, rank = True, rank - 1
    if layer.class_name == "Embedding":
        rank += 1
    return KTensor(t, rank, last)


def _apply(where, ops, tensors, name):
    if not ops:
        if len(tensors) != 1:
            raise UnsupportedOpError(f"{where} passes {len(tensors)} tensors on; expected 1")
        return tensors[0]
    try:
        first = ops[0]
        n = len(ops)
        nm = [f"{name}#{j}" for j in range(n - 1)] + [name]
        if first.arity == 2 and len(tensors) > 2:
            t = first(tensors[0], tensors[1], name=f"{name}#+1")
            for j, x in enumerate(tensors[2:], start=2):
                t = first(t, x, name=nm[0] if j == len(tensors) - 1 else f"{name}#+{j}")
        else:
            t = first(*tensors, name=nm[0])
        for j, op in enumerate(ops[1:], start=1):
            t = op(t, name=nm[j])
        return t
    except ModelFormatError as exc:
        raise ModelFormatError(f"{where}: {exc}") from None


__all__ = ["build", "KERAS_OPS"]
