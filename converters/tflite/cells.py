"""Recognise a recurrent cell spelled out in elementary TFLite ops.

Keras' ``unroll=True`` layers and the ``WHILE`` loops LiteRT emits for Keras
RNN/LSTM/GRU layers compute one step as ``FULLY_CONNECTED`` on the step input
``x`` and on the state ``h``, then ``SPLIT``/``ADD``/``MUL``/``LOGISTIC``/``TANH``.
Given the state tensors before and after the step, :func:`find_cell` collects
the ops of the cell and :func:`recognise_cell` reads the weights of the FCs
(Keras gate order: LSTM i, f, c, o; GRU z, r, h) into an edgernn layer, then
checks on random inputs, with :mod:`.evaluate`, that the ops compute exactly
that layer's equations; anything else raises UnsupportedOpError.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

from ..common.gates import reorder
from ..common.tflite_codes import fused_activation_name
from .evaluate import evaluate

_TRACE_BACK = {"SPLIT", "SPLIT_V", "STRIDED_SLICE", "ADD", "RESHAPE"}
VERIFY_TOL = 1e-4


def _ancestors(sg, tensors) -> set:
    """Op indices that (transitively) produce ``tensors``."""
    seen, stack = set(), list(tensors)
    while stack:
        op = sg.producer.get(stack.pop())
        if op is not None and op.index not in seen:
            seen.add(op.index)
            stack.extend(t for t in op.inputs if t >= 0)
    return seen


def _descendants(sg, tensors) -> set:
    seen, stack = set(), list(tensors)
    while stack:
        for op in sg.consumers.get(stack.pop(), []):
            if op.index not in seen:
                seen.add(op.index)
                stack.extend(op.outputs)
    return seen


def find_cell(sg, states_in, states_out):
    """The ops of one cell step and its step input.

    Parameters
    ----------
    sg : Subgraph
    states_in, states_out : list of int
        Tensors holding the state (h, or h and c in either order) before and
        after the step, shape [1, H].

    Returns
    -------
    ops : list of Op, in execution order
    x : int, the step input tensor (float[1, I]) fed to the input FC
    """
    region = _descendants(sg, states_in) & _ancestors(sg, states_out)
    xs, extra = set(), set()

    def trace(t):
        op = sg.producer.get(t)
        if op is None or op.index in region or op.index in extra:
            return
        if op.name == "FULLY_CONNECTED":
            extra.add(op.index)
            xs.add(op.inputs[0])
        elif op.name in _TRACE_BACK:
            extra.add(op.index)
            for u in op.inputs:
                if u >= 0 and sg.const(u) is None:
                    trace(u)
        else:
            raise UnsupportedOpError(f"{op} feeds a recurrent cell in subgraph {sg.name!r}; "
                                     f"expected the input FULLY_CONNECTED")

    for i in sorted(region):
        for t in sg.ops[i].inputs:
            if t >= 0 and t not in states_in and sg.const(t) is None:
                trace(t)
    if len(xs) != 1:
        raise UnsupportedOpError(f"recurrent cell in subgraph {sg.name!r} updating "
                                 f"{[sg.tensors[t].name for t in states_out]}: expected one "
                                 f"input FULLY_CONNECTED on the step input, found inputs "
                                 f"{sorted(sg.tensors[t].name for t in xs)}")
    ops = [sg.ops[i] for i in sorted(region | extra)]
    return ops, xs.pop()


def _fc_parts(sg, op):
    w = sg.const(op.inputs[1])
    t = sg.tensors[op.inputs[1]]
    if w is None or not (t.type_code == 0 or t.type_code == 9 and t.is_quantized):
        kind = "non-constant" if w is None else f"{np.dtype(t.dtype).name}"
        raise UnsupportedOpError(f"{op} in a recurrent cell has {kind} weights "
                                 f"{t.name!r}; supported: float32, and int8 with scales "
                                 f"(dynamic range)")
    fused_activation_name(op, supported=("NONE",))  # a cell's FCs fuse no activation
    b = sg.const(op.inputs[2]) if len(op.inputs) > 2 else None
    return w.astype(np.float32), (None if b is None else b.astype(np.float32))


def _add(a, b):
    return b if a is None else (a if b is None else a + b)


def recognise_cell(sg, ops, x, states_in, states_out):
    """An edgernn RNN, LSTM or GRU equal to the cell; returns (layer, h_in, h_out).

    Raises UnsupportedOpError when the cell's shape or its computed values
    do not match any of them.
    """
    fcs = [op for op in ops if op.name == "FULLY_CONNECTED"]
    x_fcs = [op for op in fcs if op.inputs[0] == x]
    h_fcs = [op for op in fcs if op.inputs[0] in states_in]
    other = [op for op in fcs if op not in x_fcs and op not in h_fcs]
    where = f"recurrent cell in subgraph {sg.name!r} (operators {ops[0].index}..{ops[-1].index})"
    if len(x_fcs) != 1 or len(h_fcs) != 1 or len(other) > 1:
        raise UnsupportedOpError(f"{where}: expected one FULLY_CONNECTED on the input and one "
                                 f"on the state, found {len(x_fcs)} and {len(h_fcs)} "
                                 f"(+{len(other)} others)")
    h_in = h_fcs[0].inputs[0]
    k = states_in.index(h_in)
    H = sg.tensors[h_in].shape[-1]
    w_x, b_x = _fc_parts(sg, x_fcs[0])
    w_h, b_h = _fc_parts(sg, h_fcs[0])
    const_bias = None
    for op in ops:
        if op.name == "ADD":
            for t in op.inputs:
                c = sg.const(t)
                if c is not None and c.size == w_x.shape[0]:
                    const_bias = _add(const_bias, c.reshape(-1).astype(np.float32))
    b_x = _add(b_x, const_bias)
    gates = w_x.shape[0] // H
    if len(states_in) == 2 and gates == 4 and not other:
        layer = edgernn.LSTM(w_x, w_h, _add(b_x, b_h), None)
    elif len(states_in) == 1 and gates == 3:
        if other:
            w_n, b_n = _fc_parts(sg, other[0])
            if w_h.shape[0] != 2 * H or w_n.shape != (H, H):
                raise UnsupportedOpError(f"{where}: GRU with reset before the matmul expects "
                                         f"state FCs of {2 * H} and {H} rows, got "
                                         f"{w_h.shape[0]} and {w_n.shape[0]}")
            w_h = np.concatenate([w_h, w_n])
            if b_h is not None or b_n is not None:
                b_h = np.concatenate([np.zeros(2 * H, np.float32) if b_h is None else b_h,
                                      np.zeros(H, np.float32) if b_n is None else b_n])
        b_x = None if b_x is None else reorder(b_x, "tflite", "GRU")
        b_h = None if b_h is None else reorder(b_h, "tflite", "GRU")
        layer = edgernn.GRU(reorder(w_x, "tflite", "GRU"), reorder(w_h, "tflite", "GRU"), b_x, b_h,
                            linear_before_reset=not other)
    elif len(states_in) == 1 and gates == 1 and not other:
        names = {"TANH": "tanh", "RELU": "relu", "LOGISTIC": "sigmoid"}
        acts = [op.name for op in ops if op.name in names]
        acts += [fused_activation_name(op, supported=names) for op in ops
                 if op.name != "FULLY_CONNECTED" and op.opt("FusedActivationFunction", 0)]
        if len(acts) != 1:
            raise UnsupportedOpError(f"{where}: a simple RNN cell needs one activation op, "
                                     f"found {acts}")
        layer = edgernn.RNN(w_x, w_h, b_x, b_h, nonlinearity=names[acts[0]])
    else:
        raise UnsupportedOpError(f"{where}: {len(states_in)} state tensor(s) and an input FC "
                                 f"of {w_x.shape[0]} rows for hidden size {H} match none of "
                                 f"RNN (1, H), GRU (1, 3H), LSTM (2, 4H)")
    verify_cell(sg, ops, x, states_in, states_out, layer, k, where)
    return layer, h_in, states_out[k]


def reference_step(layer, x, h, c=None):
    """One step of the edgernn RNN/LSTM/GRU ``layer`` from state ``h`` (and ``c``): the
    runtime's own kernel (``math="exact"``), so the cell is checked against what will
    run it, and the cell equations live in one place (:mod:`edgernn.kernels`)."""
    stream = edgernn.Model([layer]).stream("exact")
    given = {"h": h, "c": c}
    names = stream.get_state().names  # "0.h" (and "0.c")
    stream.set_state(edgernn.StreamState(names, tuple(
        np.asarray(given[n.rsplit(".", 1)[1]], np.float32) for n in names)))
    out = stream.step(np.asarray(x, np.float32)).astype(np.float64)
    after = dict(zip(names, stream.get_state().arrays, strict=True))
    return out, (None if c is None else
                 np.asarray(next(a for n, a in after.items() if n.endswith(".c")), np.float64))


def verify_cell(sg, ops, x, states_in, states_out, layer, k, where):
    """Compare the ops with ``reference_step`` on random inputs; raise if they differ."""
    rng = np.random.default_rng(0)
    for _ in range(3):
        xv = rng.standard_normal(layer.input_size)
        sv = [rng.standard_normal(layer.hidden_size) for _ in states_in]
        feeds = {x: xv.reshape(sg.tensors[x].shape or (-1,))}
        for t, v in zip(states_in, sv, strict=True):
            feeds[t] = v.reshape(sg.tensors[t].shape or (-1,))
        env = evaluate(sg, ops, feeds)
        h_ref, c_ref = reference_step(layer, xv, sv[k], sv[1 - k] if len(sv) == 2 else None)
        want = {states_out[k]: h_ref}
        if c_ref is not None:
            want[states_out[1 - k]] = c_ref
        for t, ref in want.items():
            diff = float(np.abs(env[t].reshape(-1) - ref).max())
            if not diff <= VERIFY_TOL:
                raise UnsupportedOpError(
                    f"{where}: its weights were read as a {type(layer).__name__} but the ops "
                    f"compute something else (max difference {diff:.3g} on tensor "
                    f"{sg.tensors[t].name!r}); only Keras-style RNN/LSTM/GRU cells with "
                    f"default activations are recognised")
