"""Folding per-step ops into the Dense before them, once the graph is complete.

The walker builds one edgernn node per ONNX node: ``MatMul`` then ``Add`` of
a bias, ``Mul`` by a scale, an activation. When the model is built, an
``Add``/``Sub``/``Mul`` by a constant or an :class:`edgernn.Activation` whose
input is a :class:`edgernn.Dense` without activation, read by nothing else
(no other node, not a model output), becomes part of that Dense::

    Dense(W, b) -> Add(c)        Dense(W, b + c)
    Dense(W, b) -> Sub(c)        Dense(W, b - c)
    Dense(W, b) -> Mul(c)        Dense(W * c[:, None], b * c)
    Dense(W, b) -> Activation a  Dense(W, b, a)

so a Gemm head costs one matrix-vector product, as the source framework's
fused layer does.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.ir.graph import Tensor


def _open_dense(t: Tensor) -> bool:
    return isinstance(t.op, edgernn.Dense) and t.op.activation.name == "linear"


def _folded(dense: edgernn.Dense, op) -> edgernn.Dense | None:
    """``dense`` followed by ``op`` as one Dense (None: ``op`` does not fold)."""
    n = dense.output_size
    bias = np.zeros(n, np.float32) if dense.bias is None else dense.bias
    if isinstance(op, edgernn.Activation):
        return edgernn.Dense(dense.weight, dense.bias, op)
    if not isinstance(op, (edgernn.Add, edgernn.Sub, edgernn.Mul)) or op.constant is None:
        return None
    c = np.broadcast_to(op.constant, (n,)).astype(np.float32)
    if isinstance(op, edgernn.Add):
        return edgernn.Dense(dense.weight, bias + c)
    if isinstance(op, edgernn.Sub):
        return edgernn.Dense(dense.weight, bias - c)
    return edgernn.Dense(dense.weight * c[:, None], bias * c)


def fold(outputs, keep=frozenset()) -> tuple:
    """Rebuild the graph that computes ``outputs`` with the folds above.

    Parameters
    ----------
    outputs : sequence of Tensor (the model outputs, unnamed nodes)
    keep : set of id(Tensor) of nodes that stay nodes of their own

    Returns
    -------
    new : dict of id(old Tensor) -> new Tensor, for every node that changed (model
        inputs never change; a node missing from the map is unchanged)
    absorbed : dict of id(Dense Tensor) -> the Tensor of the Dense it was folded into
        (the Dense is the old or the rebuilt tensor; follow the map repeatedly)
    """
    seen, stack = {}, list(outputs)
    while stack:
        t = stack.pop()
        if id(t) not in seen:
            seen[id(t)] = t
            stack.extend(t.inputs)
    nodes = sorted((t for t in seen.values() if t.op is not None), key=lambda t: t.order)
    readers: dict[int, int] = {}
    for t in nodes:
        for src in t.inputs:
            readers[id(src)] = readers.get(id(src), 0) + 1
    for t in outputs:
        readers[id(t)] = readers.get(id(t), 0) + 1
    new: dict[int, Tensor] = {}
    absorbed: dict[int, Tensor] = {}
    for t in nodes:
        ins = [new.get(id(s), s) for s in t.inputs]
        if len(ins) == 1 and _open_dense(ins[0]) and readers[id(t.inputs[0])] == 1 and \
                id(t) not in keep:
            op = _folded(ins[0].op, t.op)
            if op is not None:
                new[id(t)] = absorbed[id(ins[0])] = op(ins[0].inputs[0])
                continue
        if any(a is not b for a, b in zip(ins, t.inputs, strict=True)):
            new[id(t)] = t.op(*ins)
    return new, absorbed


__all__ = ["fold"]
