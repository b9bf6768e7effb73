"""``WHILE`` loops that LiteRT emits for Keras SimpleRNN/LSTM/GRU layers.

The loop carries counters (int32 scalars), an output accumulator float[.., H],
the state float[1, H] (two for an LSTM) and the input sequence (passed through
unchanged); the body reads step ``t`` with ``GATHER``, runs the cell and writes
``h`` to the accumulator. Stateful layers read the state from a resource
variable before the loop and assign it after; others start from a constant
zero tensor.
"""

from __future__ import annotations

import numpy as np

from edgernn.errors import UnsupportedOpError

from .cells import _ancestors, find_cell, recognise_cell

_BOOKKEEPING = {"ADD", "GATHER", "RESHAPE", "CONCATENATION", "SLICE", "DYNAMIC_UPDATE_SLICE",
                "EXPAND_DIMS"}


def convert_while(model, sg, op):
    """Returns (layer, x position, {output tensors carrying h}, state persists).

    The state persists across ``invoke`` calls when it is read from (and
    assigned back to) a resource variable: a Keras ``stateful=True`` layer.
    """
    body = model.subgraphs[op.opt("BodySubgraphIndex")]
    bi, bo = body.inputs, body.outputs
    if len(bi) != len(op.inputs) or len(bo) != len(op.outputs):
        raise UnsupportedOpError(f"{op}: body {body.name!r} has {len(bi)} inputs and "
                                 f"{len(bo)} outputs for a loop of {len(op.inputs)}")
    xs, states, accs = [], [], []
    for k, (i, o) in enumerate(zip(bi, bo, strict=True)):
        t = body.tensors[i]
        if not t.is_float:
            continue
        if o == i:
            xs.append(k)
        elif len(t.shape) == 2:
            states.append(k)
        else:
            accs.append(k)
    if len(xs) != 1 or len(states) not in (1, 2) or len(accs) > 1:
        raise UnsupportedOpError(f"{op}: loop over body {body.name!r} is not a recurrent "
                                 f"layer (expected one input sequence, 1-2 states, at most one "
                                 f"output sequence; found {len(xs)}, {len(states)}, {len(accs)})")
    gathers = [g for g in body.consumers.get(bi[xs[0]], []) if g.name == "GATHER"]
    if len(gathers) != 1:
        raise UnsupportedOpError(f"{op}: body {body.name!r} does not read its input sequence "
                                 f"with one GATHER")
    s_in, s_out = [bi[k] for k in states], [bo[k] for k in states]
    ops, x = find_cell(body, s_in, s_out)
    if x != gathers[0].outputs[0]:
        raise UnsupportedOpError(f"{op}: the cell's input FC in {body.name!r} does not read "
                                 f"the gathered step input")
    layer, h_in, h_out = recognise_cell(body, ops, x, s_in, s_out)
    cell = {o.index for o in ops}
    ints = [bo[k] for k, i in enumerate(bi) if not body.tensors[i].is_float]
    writes = _ancestors(body, [bo[k] for k in accs])
    counting = _ancestors(body, ints)
    for o in body.ops:
        if o.index not in cell and not (o.name in _BOOKKEEPING and
                                        o.index in writes | counting | {gathers[0].index}):
            raise UnsupportedOpError(f"{o} in loop body {body.name!r} is neither part of the "
                                     f"recognised {type(layer).__name__} cell nor loop "
                                     f"bookkeeping ({', '.join(sorted(_BOOKKEEPING))})")
    if accs and not any(h_out in body.ops[i].inputs for i in writes):
        raise UnsupportedOpError(f"{op}: the output sequence of body {body.name!r} is not "
                                 f"written from the cell's new state")
    k_h = states[s_in.index(h_in)]
    for k in states:
        init = sg.const(op.inputs[k])
        if init is not None and np.any(init):
            raise UnsupportedOpError(f"{op}: initial state {sg.tensors[op.inputs[k]].name!r} "
                                     f"is non-zero; edgernn streams start from zero")
    h_outputs = {op.outputs[k_h]} | {op.outputs[k] for k in accs}
    persists = all(sg.producer.get(op.inputs[k]) is not None and
                   sg.producer[op.inputs[k]].name == "READ_VARIABLE" for k in states)
    return layer, xs[0], h_outputs, persists
