"""The engine: one cached, jitted interpreter of the op table for every model.

There is one native entry point, compiled once per machine
(and cached on disk, see :mod:`edgernn.kernels.cache`) and shared by every model,
every stream, every batch and every mode; nothing is compiled per model. It releases
the GIL while it runs. It moves the step's inputs and outputs and calls each
op's kernel through the address in the op's row (:mod:`edgernn.kernels.abi`):
kernels are compiled per op kind, once, when a model first uses them.

    engine_f32(desc, xs, ys, T) -> int64 status

(:func:`engine_c` is the same with C arguments, the entry the native image holds and
every process calls through its Python wrapper, :mod:`edgernn.engine.entry`; numba's
:func:`engine_f32` serves where the image is off.)

``desc`` is the address of a call descriptor, an ``int64[D_SIZE]`` owned by the
Python object that calls (layout in :mod:`edgernn.kernels.optable`): the op
table, the weight arena, the state arenas of ``n`` streams (``SSTRIDE`` bytes
apart), the indices of the ``m`` streams to advance and the mode. ``xs`` holds
``T * m`` input vectors and ``ys`` receives ``T * m`` output vectors, timestep
major (``xs[(t * m + i) * NIN:]`` is stream ``idx[i]`` at step ``t``).

Modes: 0 steps through ``X``; 1 (generate) and 2 (generate by argmax) take
only the first input vector from ``xs`` and feed each step's output (or the
index of its largest value, as a token id) back as the next input.

Status: 0 when every step ran; ``BAD_SHAPE`` when ``xs`` or ``ys`` has the wrong
size, ``STRIDED`` when either is not contiguous (nothing ran: the caller passes
contiguous copies); ``-(t + 1)`` when step ``t`` met a token id out of range.
Per stream, ``S_NONFINITE`` (int64) counts the steps in which some op's output
or state was non-finite; after such a step, every state span the plan allocated
(its STATE rows) that holds inf or nan is reset to zero (the step's outputs show
the non-finite values).

Every kernel uses ``error_model="numpy"``: float division needs no zero check,
so loops with a division (the rational tanh) vectorise.
"""

from __future__ import annotations

import numpy as np
from numba import cfunc, njit, types

from ..kernels.abi import call_ptr
from ..kernels.cache import CACHE
from ..kernels.fpenv import flush_denormals, restore_fpenv
from ..kernels.linalg import fill
from ..kernels.mathfn import all_finite
from ..kernels.optable import (
    COPY,
    D_IDX,
    D_M,
    D_MODE,
    D_NROWS,
    D_NSTREAMS,
    D_P,
    D_S,
    D_SIZE,
    D_SSTRIDE,
    FN,
    H_NIN,
    H_NOUT,
    H_NRUN,
    INPUT,
    NO,
    OP,
    OUTPUT,
    S_FLAG,
    S_NONFINITE,
    WIDTH,
    X,
    Y,
)
from ..kernels.pointers import view1, view2

BAD_SHAPE = 1   # the same values as edgernn.engine.entry's
STRIDED = 2
U = np.uint64


@njit(cache=CACHE, error_model="numpy", inline="always")
def _input(P, k, S, A, idx, m, src, base, n_src, argmax):
    """INPUT row ``k``: ``S[s, Y:Y+NO] = src[base + i * n_src + X:]`` for stream ``s = idx[i]``.

    ``argmax``: the slot gets instead the index of the largest of the ``n_src``
    values (generation by argmax feeds a token id back).
    """
    n = U(P[k, NO])
    for i in range(m):
        s = U(idx[i] * A + P[k, Y])
        o = U(base + i * n_src)
        if argmax:
            best = U(0)
            for j in range(U(1), U(n_src)):
                if src[o + j] > src[o + best]:
                    best = j
            S[s] = best
        else:
            o += U(P[k, X])
            for j in range(n):
                S[s + j] = src[o + j]


@njit(cache=CACHE, error_model="numpy", inline="always")
def _output(P, k, S, A, idx, m, dst, base, n_dst):
    """OUTPUT row ``k``: ``dst[base + i * n_dst + Y:] = S[s, X:X+NO]`` for ``s = idx[i]``."""
    n = U(P[k, NO])
    for i in range(m):
        s = U(idx[i] * A + P[k, X])
        o = U(base + i * n_dst + P[k, Y])
        for j in range(n):
            dst[o + j] = S[s + j]


@njit(cache=CACHE, error_model="numpy", inline="always")
def _reset_nonfinite(P, S, b):
    """Zero every state span (the STATE rows after the run rows) of the stream at ``b``
    that holds inf or nan (after the step, so that the step's outputs still show the
    non-finite values)."""
    for k in range(1 + P[0, H_NRUN], P.shape[0]):
        if not all_finite(S, b + P[k, Y], P[k, NO]):
            fill(S, b + P[k, Y], P[k, NO], 0.0)


@njit(cache=CACHE, error_model="numpy", nogil=True, _nrt=False)
def engine_f32(desc, xs, ys, T):
    """Run ``T`` timesteps of the streams described at address ``desc`` (module docstring),
    with denormals flushed to zero (:mod:`edgernn.kernels.fpenv`).

    Compiled without Numba's runtime (``_nrt=False``): nothing inside allocates, and
    without it the two arrays are unboxed with no MemInfo malloc'd around each, so a
    call allocates nothing at all (checked by ``NUMBA_NRT_STATS`` in the tests)."""
    if xs.strides[0] != 4 or ys.strides[0] != 4:
        return STRIDED
    saved = flush_denormals()
    rc = _steps(desc, view1(xs.ctypes.data, xs.shape[0], np.float32),
                view1(ys.ctypes.data, ys.shape[0], np.float32), T)
    restore_fpenv(saved)
    return rc


@njit(cache=CACHE, error_model="numpy", inline="always")
def _steps(desc, xs, ys, T):
    d = view1(desc, D_SIZE, np.int64)
    P = view2(d[D_P], d[D_NROWS], WIDTH, np.int64)
    n_all, stride = d[D_NSTREAMS], d[D_SSTRIDE]
    S = view1(d[D_S], n_all * stride // 4, np.float32)
    L = view1(d[D_S], n_all * stride // 8, np.int64)
    m = d[D_M]
    idx = view1(d[D_IDX], m, np.int64)
    mode = d[D_MODE]
    A = stride // 4
    ni, no = P[0, H_NIN], P[0, H_NOUT]
    if ys.shape[0] != T * m * no:
        return BAD_SHAPE
    if xs.shape[0] != (m * ni if mode else T * m * ni):
        return BAD_SHAPE
    for t in range(T):
        y_base = t * m * no
        for k in range(1, P[0, H_NRUN] + 1):
            op = P[k, OP]
            if op == INPUT:
                if mode and t > 0:  # generation: the previous output is the input
                    _input(P, k, S, A, idx, m, ys, y_base - m * no, no, mode == 2)
                else:
                    _input(P, k, S, A, idx, m, xs, 0 if mode else t * m * ni, ni, False)
            elif op == OUTPUT:
                _output(P, k, S, A, idx, m, ys, y_base, no)
            elif op == COPY:
                for i in range(m):
                    src, dst = U(idx[i] * A + P[k, X]), U(idx[i] * A + P[k, Y])
                    for j in range(U(P[k, NO])):
                        S[dst + j] = S[src + j]
            elif call_ptr(P[k, FN], desc, k, t) < 0:
                return -(t + 1)
        for i in range(m):
            h = idx[i] * (stride // 8)
            if L[h + S_FLAG]:
                L[h + S_FLAG] = 0
                L[h + S_NONFINITE] += 1
                _reset_nonfinite(P, S, idx[i] * A)
    return 0


def _engine_c(desc, xp, nx, yp, ny, T):
    """:func:`engine_f32` with C arguments: ``xs`` and ``ys`` are ``nx`` and ``ny``
    contiguous floats at addresses ``xp`` and ``yp`` (the caller checked them)."""
    saved = flush_denormals()
    rc = _steps(desc, view1(xp, nx, np.float32), view1(yp, ny, np.float32), T)
    restore_fpenv(saved)
    return rc


#: C signature of the engine's native entry (called by the image's Python entry,
#: :mod:`edgernn.kernels.image`)
C_SIGNATURE = types.int64(*[types.int64] * 6)
_state: dict = {}


def engine_c():
    """The compiled ``cfunc`` of :func:`_engine_c` (loaded from the disk cache, or
    compiled once); like :func:`engine_f32`, without fastmath and without NRT."""
    if "c" not in _state:
        _state["c"] = cfunc(C_SIGNATURE, cache=CACHE, error_model="numpy", _nrt=False)(
            _engine_c)
    return _state["c"]


_ARR = types.Array(types.float32, 1, "A")
SIGNATURE = types.int64(types.int64, _ARR, _ARR, types.int64)


def native():
    """The engine's compiled entry point, loaded from the disk cache or compiled once.

    Returns the raw CPython wrapper of the one compiled signature: it unboxes its
    arguments without type dispatch (the cheapest call from Python numba offers),
    so its callers must pass exactly two 1-D float32 arrays (see
    :class:`edgernn.engine.stream.Stream`); the dispatcher is the fallback when that
    wrapper is not reachable.
    """
    disp = engine_f32
    if not disp.signatures:
        disp.compile(SIGNATURE.args)
        disp.disable_compile()
    cres = disp.overloads.get(SIGNATURE.args)
    return getattr(cres, "entry_point", None) or disp
