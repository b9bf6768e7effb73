"""Shared handling of the ONNX ``LSTM``, ``GRU`` and ``RNN`` operators.

Inputs ``X [T, B, I]`` (``layout=1``: ``[B, T, I]``), ``W [D, G*H, I]``,
``R [D, G*H, H]``, ``B [D, 2*G*H]``, ``sequence_lens [B]``,
``initial_h [D, B, H]`` (``layout=1``: ``[B, D, H]``), LSTM also
``initial_c`` and ``P [D, 3H]``. Outputs ``Y [T, D, B, H]`` (``layout=1``:
``[B, T, D, H]``), ``Y_h``/``Y_c`` like ``initial_h``. ``D`` is 2 for
``direction="bidirectional"``, else 1.

Mapping onto edgernn: ``forward`` is the op itself; ``bidirectional`` is
:class:`edgernn.Bidirectional` (concat); ``reverse`` is :class:`edgernn.Reverse`
(state ``"<node>.reverse.h"``). Both need the whole sequence (``Stream.run``);
``step`` raises. Non-zero constant ``initial_h``/``initial_c`` are recorded per
batch row in ``ctx.io["init_state"]``; ``from_onnx`` turns them into the
model's ``initial_state``. ``sequence_lens`` cannot live in a model: it is
recorded for :func:`converters.onnx.run_like_onnx` (one run per batch row over
its own length).
"""

from __future__ import annotations

import numpy as np

import edgernn

from ..common.state import state_prefixes
from .activations import rnn_activations
from .values import Const, Seq, StateIn, StateOut, StateRef, Zeros

COMMON_ATTRS = ("activation_alpha", "activation_beta", "activations", "clip", "direction",
                "hidden_size", "layout")
_DIRS = {"forward": 1, "reverse": 1, "bidirectional": 2}


def convert_recurrent(ctx, node, spec) -> list:
    """Convert one recurrent node; ``spec`` comes from lstm.py / gru.py / rnn.py.

    ``spec``: ``gates`` (G), ``attrs`` (extra attribute names), ``acts`` (number of
    activations per direction), ``make(ctx, node, w, r, wb, rb, p, acts, clip, at)``
    building one direction's layer. The state vectors and their names come from the
    layer built (``op.state_vectors()``, ``op.inner()``): ``h`` (and ``c``), in the
    order of ONNX's ``initial_h``/``initial_c`` inputs and ``Y_h``/``Y_c`` outputs.
    """
    at = ctx.check_attrs(node, COMMON_ATTRS + spec["attrs"])
    direction = at.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in _DIRS:
        raise ctx.unsupported(node, f"direction={direction!r}; supported: {sorted(_DIRS)}")
    nd = _DIRS[direction]
    layout = int(at.get("layout", 0))
    if layout not in (0, 1):
        raise ctx.unsupported(node, f"layout={layout}; supported: 0, 1")
    g = spec["gates"]
    w = ctx.const(node, 1, "W").astype(np.float32)
    r = ctx.const(node, 2, "R").astype(np.float32)
    if w.ndim != 3 or r.ndim != 3 or w.shape[0] != nd or r.shape[0] != nd:
        raise ctx.bad(node, f"W and R must be [{nd}, {g}*H, ...], got {w.shape}, {r.shape}")
    hsz = r.shape[2]
    if int(at.get("hidden_size", hsz)) != hsz or r.shape[1] != g * hsz or w.shape[1] != g * hsz:
        raise ctx.bad(node, f"hidden_size={at.get('hidden_size')} does not match W {w.shape} "
                            f"and R {r.shape}")
    b = ctx.const(node, 3, "B", optional=True)
    if b is None:
        b = np.zeros((nd, 2 * g * hsz), np.float32)
    if b.shape != (nd, 2 * g * hsz):
        raise ctx.bad(node, f"B must be {(nd, 2 * g * hsz)}, got {b.shape}")
    p = None
    if "P" in spec.get("inputs", ()):
        p = ctx.const(node, 7, "P", optional=True)
        if p is not None and p.shape != (nd, 3 * hsz):
            raise ctx.bad(node, f"P must be {(nd, 3 * hsz)}, got {p.shape}")
    clip = at.get("clip")
    acts = rnn_activations(ctx, node, at, spec["acts"], nd, spec["default_acts"])

    x = ctx.as_seq(node, ctx.value(node.input[0]), "X")
    if x.last or x.tokens or len(x.axes) != 3:
        why = ("follows a last-step selection" if x.last else "takes token ids" if x.tokens
               else f"gets a rank-{len(x.axes)} X")
        raise ctx.unsupported(node, f"the recurrent op {why}; X must be a rank-3 sequence")
    ta, ba = (0, 1) if layout == 0 else (1, 0)
    labels = ctx.labels(x)
    if labels[2] != "F" or x.sizes[2] != w.shape[2]:
        raise ctx.bad(node, f"X features {x.sizes[2]} (axis {labels[2]!r}) do not match "
                            f"W's input size {w.shape[2]}")
    onestep = labels[ta] == "U"
    if not onestep:
        ctx.bind(node, x.axes[ta], "T")
    ctx.bind(node, x.axes[ba], "B")

    layers = [spec["make"](ctx, node, w[d], r[d], b[d, :g * hsz], b[d, g * hsz:],
                           None if p is None else p[d], acts[d], clip, at) for d in range(nd)]
    if direction == "forward":
        layer = layers[0]
    elif direction == "reverse":
        layer = edgernn.Reverse(layers[0])
    else:
        layer = edgernn.Bidirectional(layers[0], layers[1], "concat")
    prefixes = state_prefixes(layer)
    states = [s for s, _ in layers[0].state_vectors()]
    t = ctx.apply(node, layer, x.tensor)
    ctx.recurrent.append(t)

    carried = False
    for k, st in enumerate(states):
        refs = [StateRef(t, pf + st) for pf in prefixes]
        carried |= _initial_state(ctx, node, 5 + k, refs, layout, hsz)
    if onestep:
        if not carried:
            raise ctx.unsupported(node, "the recurrent op runs over one inserted time step "
                                        "with a fresh state each call and no state input: "
                                        "not a sequence model edgernn can stream")
        ctx.io["onestep"] = True
    _sequence_lens(ctx, node, t)

    y_axes = (x.axes[ta], "D", x.axes[ba], "F") if layout == 0 else \
        (x.axes[ba], x.axes[ta], "D", "F")
    y_sizes = (x.sizes[ta], nd, x.sizes[ba], hsz) if layout == 0 else \
        (x.sizes[ba], x.sizes[ta], nd, hsz)
    outs = [Seq(t, y_axes, y_sizes)]
    s_axes = ("R", "B", "F") if layout == 0 else ("B", "R", "F")
    ctx.y_of[id(t)] = node.output[0] if node.output else ""
    for st in states:
        outs.append(StateOut(tuple(StateRef(t, pf + st) for pf in prefixes), s_axes, hsz))
    return outs


def _initial_state(ctx, node, i, refs, layout, hsz) -> bool:
    """Record initial_h / initial_c (``refs``: the state per direction); True when
    it is carried from a graph input."""
    name = node.input[i] if i < len(node.input) else ""
    v = ctx.value(name)
    if v is None or isinstance(v, Zeros):
        return False
    nd = len(refs)
    ra, ba = (0, 1) if layout == 0 else (1, 0)
    if isinstance(v, Const):
        a = np.asarray(v.value, np.float32)
        if a.ndim != 3 or a.shape[ra] != nd or a.shape[2] != hsz:
            raise ctx.bad(node, f"input {i} must be [D={nd}, B, H={hsz}] (layout {layout}), "
                                f"got {a.shape}")
        a = np.moveaxis(a, ra, 0)
        if np.any(a):
            for d, ref in enumerate(refs):
                ctx.io["init_state"].append((ref, a[d].tolist()))
        return False
    if not isinstance(v, StateIn):
        raise ctx.unsupported(node, f"input {i} ({name!r}) must be an initializer, a zero "
                                    f"tensor or a graph input, got {type(v).__name__}")
    if len(v.axes) != 3:
        raise ctx.unsupported(node, f"state input {v.name!r} reaches input {i} with rank "
                                    f"{len(v.axes)}, expected 3")
    rk, bk, fk = v.axes[ra], v.axes[ba], v.axes[2]

    def whole(k):  # the axis is not narrowed by a slice
        return k not in v.sel or v.sel[k] == tuple(range(v.shape[k] or 0))

    if fk is None or not whole(fk) or v.shape[fk] not in (None, hsz):
        raise ctx.unsupported(node, f"state input {v.name!r}: the axis reaching the hidden "
                                    f"axis must hold the whole hidden state of size {hsz}")
    loose = [k for k in range(len(v.shape)) if k not in v.fixed and k not in (rk, bk, fk)
             and not (v.shape[k] == 1 or len(v.sel.get(k, ())) == 1)]
    if loose:
        raise ctx.unsupported(node, f"state input {v.name!r}: axis {loose[0]} (size "
                                    f"{v.shape[loose[0]]}) is neither the hidden, batch nor "
                                    f"direction axis, nor one index of it")
    if bk is not None and not whole(bk):
        raise ctx.unsupported(node, f"state input {v.name!r}: slicing its batch axis")
    if rk is None:
        rows = [None]
    else:
        rows = list(v.sel.get(rk, range(v.shape[rk] if v.shape[rk] is not None else nd)))
    if len(rows) != nd:
        raise ctx.bad(node, f"state input {v.name!r} gives {len(rows)} rows for {nd} "
                            f"direction(s)")
    for d, ref in enumerate(refs):
        index = []
        for k in range(len(v.shape)):
            index.append(v.fixed[k] if k in v.fixed else rows[d] if k == rk else
                         "B" if k == bk else "F" if k == fk else 0)
        ctx.io["state_inputs"].append({"input": v.name, "state": ref, "index": index})
    return True


def _sequence_lens(ctx, node, t) -> None:
    name = node.input[4] if len(node.input) > 4 else ""
    v = ctx.value(name)
    if v is None:
        return
    rec = ctx.io["sequence_lens"]
    if isinstance(v, Const):
        src = {"values": np.asarray(v.value).astype(int).reshape(-1).tolist()}
    elif isinstance(v, StateIn):
        src = {"input": v.name}
    else:
        raise ctx.unsupported(node, f"sequence_lens ({name!r}) must be an initializer or a "
                                    f"graph input, got {type(v).__name__}")
    if rec is None:
        ctx.io["sequence_lens"] = dict(src, nodes=[t])
    elif {k: rec.get(k) for k in src} == src:
        rec["nodes"].append(t)
    else:
        raise ctx.unsupported(node, "recurrent nodes with different sequence_lens")
