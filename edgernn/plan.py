"""Packing a stack of layers into the engine's flat arrays.

A :class:`Plan` holds what every stream of a model shares: the op table ``P``
(int64[n_ops + 1, WIDTH], layout in :mod:`edgernn.kernels.optable`) and the
weight arena ``W`` (float32, each block 64-byte aligned), plus the layout of
the per-stream arena ``S`` (header, input slots, recurrent state, scratch).
Packing rearranges weights once at load: ``[W_ih | W_hh]`` concatenated per
row, biases summed where the equations allow it (see ``edgernn/kernels``).

The weight arena is float32 today; int8 weights and their per-row scales will
get arena blocks of their own and opcodes of their own (``*_q8`` kernels), so
the table and the stream API stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .kernels import optable as T
from .kernels.mathfn import EXACT
from .layers import GRU, LSTM, RNN, Dense, Embedding

_ALIGN = 16  # floats: 64 bytes


def _act_code(act: Activation, exact: bool) -> int:
    code = act.code
    if exact and code in (2, 3, 12):
        return code + EXACT
    return code


class _Arena:
    """Append-only float32 arena with aligned blocks."""

    def __init__(self, start: int = 0):
        self.size = start
        self.chunks: list[tuple[int, np.ndarray]] = []

    def alloc(self, n: int) -> int:
        off = -(-self.size // _ALIGN) * _ALIGN
        self.size = off + int(n)
        return off

    def put(self, a) -> int:
        a = np.ascontiguousarray(a, dtype=np.float32).ravel()
        off = self.alloc(a.size)
        self.chunks.append((off, a))
        return off

    def put_matrix(self, m) -> int:
        """Store a ``[rows, cols]`` matrix transposed (``[cols, rows]``), as matvec reads it."""
        a = np.ascontiguousarray(np.asarray(m, dtype=np.float32).T).ravel()
        off = self.alloc(a.size)
        self.chunks.append((off, a))
        return off

    def array(self) -> np.ndarray:
        out = np.zeros(max(self.size, 1), dtype=np.float32)
        for off, a in self.chunks:
            out[off:off + a.size] = a
        return out


@dataclass(frozen=True, eq=False)
class Plan:
    """What every stream of one model shares (see module docstring).

    Attributes
    ----------
    P : int64[n_ops + 1, WIDTH]   op table
    W : float32[n_weights]        weight arena
    arena_size : int              length of each stream's float32 state arena
    input_size, output_size : int
    tokens : int                  number of token ids (0: the input is a float vector)
    state_spans : tuple of (name, offset, length)  persistent state inside the arena
    """

    P: np.ndarray
    W: np.ndarray
    arena_size: int
    input_size: int
    output_size: int
    tokens: int
    state_spans: tuple

    def new_arena(self, n: int | None = None) -> np.ndarray:
        """A zeroed state arena: float32[arena_size], or float32[n, arena_size]."""
        shape = self.arena_size if n is None else (n, self.arena_size)
        return np.zeros(shape, dtype=np.float32)


def _sum_bias(a, b, n):
    out = np.zeros(n, np.float32)
    for v in (a, b):
        if v is not None:
            out += v
    return out


def build_plan(layers, math: str = "fast", names=None) -> Plan:
    """Pack step-able layers (no Bidirectional) into a :class:`Plan`.

    Parameters
    ----------
    layers : sequence of Dense, RNN, LSTM, GRU, Embedding or Activation
        Consecutive sizes must chain (checked by :class:`edgernn.Model`).
    math : "fast" or "exact"
        Rational tanh/sigmoid (default) or libm's.
    names : sequence of str, optional
        Per layer, the prefix of its state names (default its index: ``"0.h"``).
    """
    if math not in ("fast", "exact"):
        raise ValueError(f"math: expected 'fast' or 'exact', got {math!r}")
    exact = math == "exact"
    S = _Arena(T.S_HEADER)
    Wa = _Arena()
    rows = []
    spans = []
    ins, sizes = [], []
    for layer in layers:
        ins.append(sizes[-1] if sizes else layer.input_size)
        sizes.append(ins[-1] if isinstance(layer, Activation) else layer.output_size)
    # input slot of each op (recurrent slots are followed by h)
    slots = [(S.alloc(n + (layer.hidden_size if isinstance(layer, (RNN, LSTM, GRU)) else 0)), n)
             for layer, n in zip(layers, ins, strict=True)]
    out_off = S.alloc(sizes[-1])
    scratch_need = 1
    for layer in layers:
        if isinstance(layer, LSTM):
            scratch_need = max(scratch_need, 4 * layer.hidden_size)
        elif isinstance(layer, GRU):
            scratch_need = max(scratch_need, 5 * layer.hidden_size)
        elif isinstance(layer, RNN):
            scratch_need = max(scratch_need, layer.hidden_size)
    scratch = S.alloc(scratch_need)  # shared: one op runs at a time
    scratch_col = {LSTM: T.L_GOFF, GRU: T.G_GOFF, RNN: T.R_GOFF}
    for idx, layer in enumerate(layers):
        x, ni = slots[idx]
        y = slots[idx + 1][0] if idx + 1 < len(layers) else out_off
        row = np.full(T.WIDTH, -1, dtype=np.int64)
        row[T.X], row[T.NI], row[T.Y], row[T.NO] = x, ni, y, sizes[idx]
        name = str(idx) if names is None else names[idx]
        if isinstance(layer, Activation):
            row[T.OP] = T.ACT
            row[T.A_ACT] = _act_code(layer, exact)
            row[T.A_PAR] = Wa.put([layer.alpha, layer.beta])
        elif isinstance(layer, Dense):
            row[T.OP] = T.DENSE
            row[T.WOFF] = Wa.put_matrix(layer.weight)
            row[T.BOFF] = -1 if layer.bias is None else Wa.put(layer.bias)
            row[T.D_ACT] = _act_code(layer.activation, exact)
            row[T.D_PAR] = Wa.put([layer.activation.alpha, layer.activation.beta])
        elif isinstance(layer, Embedding):
            row[T.OP] = T.EMBED
            row[T.E_WOFF] = Wa.put(layer.weight)
            row[T.E_NUM] = layer.num_embeddings
        else:
            _pack_recurrent(layer, row, Wa, S, exact)
            row[scratch_col[type(layer)]] = scratch
            H = layer.hidden_size
            spans.append((f"{name}.h", x + ni, H))
            if isinstance(layer, LSTM):
                spans.append((f"{name}.c", int(row[T.L_COFF]), H))
        rows.append(row)
    header = np.zeros(T.WIDTH, dtype=np.int64)
    header[T.H_NOPS] = len(rows)
    header[T.H_IN], header[T.H_NIN] = slots[0]
    header[T.H_OUT], header[T.H_NOUT] = out_off, sizes[-1]
    first = layers[0]
    header[T.H_TOKENS] = first.num_embeddings if isinstance(first, Embedding) else 0
    header[T.H_EXACT] = int(exact)
    P = np.ascontiguousarray(np.vstack([header] + rows))
    W = Wa.array()
    P.flags.writeable = False
    W.flags.writeable = False
    return Plan(P, W, S.alloc(0), int(slots[0][1]), int(sizes[-1]),
                int(header[T.H_TOKENS]), tuple(spans))


def _pack_recurrent(layer, row, Wa: _Arena, S: _Arena, exact: bool) -> None:
    H = layer.hidden_size
    wih, whh = layer.weight_ih, layer.weight_hh
    if isinstance(layer, RNN):
        row[T.OP] = T.RNN
        row[T.WOFF] = Wa.put_matrix(np.hstack([wih, whh]))
        row[T.BOFF] = Wa.put(_sum_bias(layer.bias_ih, layer.bias_hh, H))
        act = layer.nonlinearity
        row[T.R_ACT] = _act_code(act, exact)
        row[T.R_PAR] = Wa.put([act.alpha, act.beta, layer.clip or 0.0])
        row[T.R_FLAGS] = T.F_CLIP if layer.clip else 0
    elif isinstance(layer, LSTM):
        row[T.OP] = T.LSTM
        row[T.WOFF] = Wa.put_matrix(np.hstack([wih, whh]))
        row[T.BOFF] = Wa.put(_sum_bias(layer.bias_ih, layer.bias_hh, 4 * H))
        row[T.L_COFF] = S.alloc(H)
        af, ag, ah = layer.activations
        row[T.L_AF], row[T.L_AG], row[T.L_AH] = (_act_code(a, exact) for a in (af, ag, ah))
        row[T.L_PAR] = Wa.put([af.alpha, af.beta, ag.alpha, ag.beta, ah.alpha, ah.beta,
                               layer.clip or 0.0, layer.cell_clip or 0.0])
        flags = 0
        if layer.peephole is not None:
            flags |= T.F_PEEPHOLE
            row[T.L_PEEP] = Wa.put(layer.peephole)
        flags |= T.F_CLIP if layer.clip else 0
        flags |= T.F_CELL_CLIP if layer.cell_clip else 0
        flags |= T.F_INPUT_FORGET if layer.input_forget else 0
        row[T.L_FLAGS] = flags
    else:
        row[T.OP] = T.GRU
        row[T.WOFF] = Wa.put_matrix(np.hstack([wih[:2 * H], whh[:2 * H]]))
        row[T.G_WIN] = Wa.put_matrix(wih[2 * H:])
        row[T.G_WHN] = Wa.put_matrix(whh[2 * H:])
        bih = np.zeros(3 * H, np.float32) if layer.bias_ih is None else layer.bias_ih
        bhh = np.zeros(3 * H, np.float32) if layer.bias_hh is None else layer.bias_hh
        row[T.BOFF] = Wa.put(np.concatenate([bih[:2 * H] + bhh[:2 * H], bih[2 * H:],
                                             bhh[2 * H:]]))
        af, ag = layer.activations
        row[T.G_AF], row[T.G_AG] = _act_code(af, exact), _act_code(ag, exact)
        row[T.G_PAR] = Wa.put([af.alpha, af.beta, ag.alpha, ag.beta, layer.clip or 0.0])
        flags = T.F_LBR if layer.linear_before_reset else 0
        row[T.G_FLAGS] = flags | (T.F_CLIP if layer.clip else 0)
