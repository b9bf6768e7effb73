"""Packing a graph of step-able ops into the engine's arrays (a :class:`Plan`).

Placement: every tensor gets a slot (an offset) in the per-stream state arena.
A Concat's inputs are placed inside the Concat's buffer, so the ops producing
them write there directly; a Slice is a view of its input's slot; a recurrent
op's output slot *is* its hidden state ``h``. Only an input that already lives
elsewhere (a tensor placed in another Concat, a Slice) is copied, by a COPY
row. Model inputs arrive through INPUT rows (from the step's ``X``) and outputs
leave through OUTPUT rows (into ``Y``).

The weight arena is a byte arena of 64-byte aligned blocks; each op's
:meth:`pack` puts its blocks there through :class:`Packer`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import optable as T
from ..kernels.native import int8_path, kernel_address
from ..kernels.spec.linalg import pack_panels
from ..kernels.spec.mathfn import EXACT, SCALED_TANH, SIGMOID, TANH
from ..kernels.spec.qlinalg import ROWS, pack_q8, weight_bytes
from .arena import ALIGN, ArenaBuilder, aligned_zeros, round_up


@dataclass(frozen=True, eq=False)
class Plan:
    """What every stream of one (part of a) model shares.

    Attributes
    ----------
    P : int64[n_rows, WIDTH]      op table (:mod:`edgernn.kernels.optable`)
    W : uint8[:]                  weight arena, read-only, 64-byte aligned
    state_bytes : int             bytes of one stream's state arena (a multiple of 64)
    input_size, output_size : int
    tokens : int                  number of token ids (0: the input is a float vector)
    state_spans : tuple of (name, float offset, length)   persistent state in the arena
    """

    P: np.ndarray
    W: np.ndarray
    state_bytes: int
    input_size: int
    output_size: int
    tokens: int
    state_spans: tuple

    def new_state(self, n: int = 1) -> np.ndarray:
        """Zeroed state arenas for ``n`` streams: aligned uint8[n * state_bytes]."""
        return aligned_zeros(n * self.state_bytes)


class Packer:
    """Puts an op's weights into the weight arena (offsets in elements of the view)."""

    def __init__(self, exact: bool):
        self.exact = exact
        self.rare_act = False   # an activation beyond linear/relu/tanh/sigmoid is used
        self.int8 = False       # an int8 op is packed
        self.arena = ArenaBuilder()

    def f32(self, values, length: int | None = None) -> int:
        """A float32 block (zero-padded to ``length``); its float32 offset."""
        a = np.asarray(values, np.float32).ravel()
        if length is not None and length > a.size:
            a = np.concatenate([a, np.zeros(length - a.size, np.float32)])
        return self.arena.put(a) // 4

    def i8(self, values) -> int:
        """An int8 block; its offset in the int8 view."""
        return self.arena.put(np.asarray(values, np.int8).ravel())

    def f64(self, values) -> int:
        """A float64 block; its offset in the float64 view."""
        return self.arena.put(np.asarray(values, np.float64).ravel()) // 8

    def i64(self, values) -> int:
        """An int64 block; its offset in the int64 view."""
        return self.arena.put(np.asarray(values, np.int64).ravel()) // 8

    def i32(self, values) -> int:
        """An int32 block; its offset in the int32 view."""
        return self.arena.put(np.asarray(values, np.int32).ravel()) // 4

    def qmatrix(self, wq, scales) -> int:
        """An int8 matrix with its per-row scales (:mod:`edgernn.kernels.qlinalg`); the
        int32 offset of its header."""
        wbytes = weight_bytes(int8_path())
        panels, rowsum = pack_q8(wq, wbytes)
        rows, cols = wq.shape
        groups = round_up(cols, 4) // 4
        head = [self.i8(panels), self.i32(rowsum), self.f32(scales, rowsum.size), rows, cols,
                groups, 4 * ROWS * (groups * wbytes + 1)]
        self.int8 = True
        return self.i32(head)

    def qparams(self, quant) -> int:
        """``[mode_x, s_x, zp_x, mode_h, s_h, zp_h, s_out, zp_out]`` of a QuantParams
        (mode: 0 static, 1 dynamic, 2 dynamic with zero point; + 8: round half away;
        + 16: times the inverse)."""
        dyn = 0.0 if quant.mode == "int8" else 2.0 if quant.dynamic_zero_point else 1.0
        dyn += 8.0 * quant.round_half_away + 16.0 * quant.multiply_by_inverse
        return self.f32([dyn, quant.input_scale or 1.0, quant.input_zero_point,
                         dyn, quant.state_scale or 1.0, quant.state_zero_point,
                         quant.output_scale or 0.0, quant.output_zero_point])

    def panels(self, matrix) -> int:
        """A ``float32[rows, cols]`` matrix in the kernels' panel layout; its offset."""
        return self.f32(pack_panels(np.asarray(matrix, np.float32)))

    def act(self, activation) -> int:
        """The kernel code of an activation (libm variants when ``math="exact"``)."""
        code = activation.code
        if self.exact and code in (TANH, SIGMOID, SCALED_TANH):
            code += EXACT
        self.rare_act |= code > SIGMOID
        return code


def _update_rows(row, alloc, copies) -> None:
    """COPY rows giving every state its new value, all read before any is written:
    ``copies`` = [(source offset, state offset, length)]. A copy goes after those
    that read the span it writes (a delay line ``d2 <- d1 <- x``); a cycle (``a <- b,
    b <- a``) first moves one source to a temporary slot."""
    pending = list(copies)

    def reads_into(u, w):  # w reads the span u writes
        return w[0] < u[1] + u[2] and u[1] < w[0] + w[2]

    while pending:
        free = next((u for u in pending if not any(reads_into(u, w) for w in pending
                                                    if w is not u)), None)
        if free is None:  # a cycle: save the first one's source
            src, dst, n = pending[0]
            tmp = alloc(n)
            row(T.COPY, src, n, tmp, n)
            pending[0] = (tmp, dst, n)
            continue
        pending.remove(free)
        row(T.COPY, free[0], free[2], free[1], free[2])


def build_plan(nodes, inputs, outputs, math: str = "fast", updates=()) -> Plan:
    """Pack step-able nodes into a :class:`Plan`.

    Parameters
    ----------
    nodes : sequence of Tensor, in run order (their ops all step-able)
    inputs : sequence of Tensor whose values arrive from outside, concatenated in ``X``
    outputs : sequence of Tensor whose values leave, concatenated in ``Y``
    math : "fast" or "exact"
    updates : sequence of (state tensor, value tensor): the value is copied into the
        state's slot after the outputs (:class:`edgernn.State`)
    """
    if math not in ("fast", "exact"):
        raise ValueError(f"math: expected 'fast' or 'exact', got {math!r}")
    pk = Packer(math == "exact")
    S = ArenaBuilder(T.S_HEADER_BYTES)
    loc: dict[int, int] = {}                 # id(tensor) -> float offset in the arena
    copies: dict[int, list] = {}             # id(concat) -> [(src tensor, dst offset)]

    def alloc(n):
        return S.alloc(4 * n) // 4

    def view(t):  # the tensor is a view of its input (Slice): it gets no slot
        return t.op is not None and t.op.view_start is not None

    for t in reversed(nodes):
        if not t.op.places_inputs:
            continue
        base = loc.setdefault(id(t), alloc(t.size))
        off, todo = base, []
        for src in t.inputs:
            if id(src) not in loc and not view(src):
                loc[id(src)] = off
            else:
                todo.append((src, off))
            off += src.size
        copies[id(t)] = todo
    for t in list(inputs) + list(nodes):
        if id(t) not in loc and not view(t):
            loc[id(t)] = alloc(t.size)
    for t in nodes:
        if view(t):
            loc[id(t)] = loc[id(t.inputs[0])] + t.op.view_start

    spans, extra_state = [], {}
    for t in nodes:
        st = {}
        for suffix, n in t.op.state_vectors():
            off = loc[id(t)] if suffix == getattr(t.op, "output_state", None) else alloc(n)
            st[suffix] = off
            spans.append((f"{t.name}.{suffix}" if suffix else t.name, off, n))
        extra_state[id(t)] = st
    scratch = alloc(max([t.op.scratch_floats() for t in nodes] + [1]))

    rows = []

    def row(op, x, ni, y, no):
        r = np.full(T.WIDTH, -1, np.int64)
        r[T.OP], r[T.X], r[T.NI], r[T.Y], r[T.NO] = op, x, ni, y, no
        rows.append(r)
        return r

    xo = 0
    for t in inputs:
        row(T.INPUT, xo, t.size, loc[id(t)], t.size)
        xo += t.size
    for t in nodes:
        if t.op.places_inputs:
            for src, dst in copies[id(t)]:
                row(T.COPY, loc[id(src)], src.size, dst, src.size)
            continue
        if view(t) or t.op.carried:  # a state's slot is written by its update row
            continue
        r = row(T.KERNEL, loc[id(t.inputs[0])], t.inputs[0].size, loc[id(t)], t.size)
        if len(t.inputs) > 1:
            r[T.X2], r[T.NI2] = loc[id(t.inputs[1])], t.inputs[1].size
        r[T.SCR] = scratch
        t.op.pack(pk, r, extra_state[id(t)])
        r[T.FN] = kernel_address(t.op.kernel_for(pk.exact))
    yo = 0
    for t in outputs:
        row(T.OUTPUT, loc[id(t)], t.size, yo, t.size)
        yo += t.size
    _update_rows(row, alloc, [(loc[id(v)], loc[id(s)], s.size) for s, v in updates
                               if loc[id(v)] != loc[id(s)]])
    n_run = len(rows)
    for _, off, n in spans:  # not run: the spans reset after a non-finite step
        row(T.STATE, -1, 0, off, n)

    W = pk.arena.build()
    header = np.zeros(T.WIDTH, np.int64)
    header[T.H_NRUN] = n_run
    header[T.H_NIN] = xo
    header[T.H_NOUT] = yo
    header[T.H_SBYTES] = round_up(S.size, ALIGN)
    header[T.H_MATVEC] = kernel_address("linalg:matvec_kernel")
    header[T.H_ACT] = kernel_address("mathfn:act_kernel") if pk.rare_act else 0
    header[T.H_QMATVEC] = kernel_address("qlinalg:qmatvec_kernel") if pk.int8 else 0
    P = np.ascontiguousarray(np.vstack([header] + rows))
    P.flags.writeable = False
    tokens = next((t.op.tokens for t in nodes if t.op.tokens
                   and any(t.inputs[0] is i for i in inputs)), 0)
    return Plan(P, W, int(header[T.H_SBYTES]), xo, yo, tokens, tuple(spans))
