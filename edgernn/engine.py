"""The engine: one cached, jitted interpreter of the op table for every model.

Entry points (all ``@njit(cache=True)``, compiled once per machine and shared by
every model; each has one fixed signature, so its compiled code is found on disk).
Every kernel uses ``error_model="numpy"``: float division needs no zero check,
so loops with a division (the rational tanh) vectorise.

=================  ==============================================================
step_f32           one timestep of one stream: x float32[NI] -> y float32[NO]
run_f32            T timesteps: xs float32[T, NI] -> ys float32[T, NO]
step_batch_f32     one timestep of n streams: X float32[n, NI] -> Y float32[n, NO]
generate_f32       autoregressive: feed each output (or its argmax token) back
=================  ==============================================================

Each returns an int64 status: 0 when every step ran, ``BAD_SHAPE`` when an
array's length does not match the model (nothing ran), ``-(t + 1)`` when step
``t`` (or stream ``t`` of a batch) met a token id out of range.
A step whose new recurrent state is non-finite resets that state to zero
and increments ``S[S_NONFINITE]``; the caller reads the counter.
"""

from __future__ import annotations

from numba import njit, types

from .kernels.dense import activation_f32, dense_f32
from .kernels.embedding import embedding_f32
from .kernels.gru import gru_f32
from .kernels.linalg import copy
from .kernels.lstm import lstm_f32
from .kernels.optable import (
    ACT,
    DENSE,
    EMBED,
    GRU,
    H_IN,
    H_NIN,
    H_NOPS,
    H_NOUT,
    H_OUT,
    LSTM,
    OP,
    RNN,
    S_NONFINITE,
)
from .kernels.rnn import rnn_f32


@njit(cache=True, error_model="numpy")
def _exec(P, W, S):
    for k in range(1, P[0, H_NOPS] + 1):
        op = P[k, OP]
        ok = True
        if op == LSTM:
            ok = lstm_f32(P, k, W, S)
        elif op == GRU:
            ok = gru_f32(P, k, W, S)
        elif op == DENSE:
            dense_f32(P, k, W, S)
        elif op == RNN:
            ok = rnn_f32(P, k, W, S)
        elif op == ACT:
            activation_f32(P, k, W, S)
        elif op == EMBED:
            if not embedding_f32(P, k, W, S):
                return False
        if not ok:
            S[S_NONFINITE] += 1.0
    return True


@njit(cache=True, error_model="numpy")
def _one(P, W, S, x, y):
    i0, o0 = P[0, H_IN], P[0, H_OUT]
    copy(x, 0, S, i0, P[0, H_NIN])
    if not _exec(P, W, S):
        return False
    copy(S, o0, y, 0, P[0, H_NOUT])
    return True


_P = types.Array(types.int64, 2, "C", readonly=True)
_WT = types.Array(types.float32, 1, "C", readonly=True)
_V = types.float32[::1]
_M = types.float32[:, ::1]
_T3 = types.float32[:, :, ::1]


BAD_SHAPE = 1


@njit(cache=True, error_model="numpy")
def step_f32(P, W, S, x, y):
    """One timestep: ``y = f(x, state)``; state updated in ``S``."""
    if x.shape[0] != P[0, H_NIN] or y.shape[0] != P[0, H_NOUT]:
        return BAD_SHAPE
    return 0 if _one(P, W, S, x, y) else -1


@njit(cache=True, error_model="numpy")
def run_f32(P, W, S, xs, ys):
    """``ys[t] = f(xs[t], state)`` for t in 0..T-1, looping in native code."""
    if (xs.shape[1] != P[0, H_NIN] or ys.shape[1] != P[0, H_NOUT]
            or ys.shape[0] != xs.shape[0]):
        return BAD_SHAPE
    for t in range(xs.shape[0]):
        if not _one(P, W, S, xs[t], ys[t]):
            return -(t + 1)
    return 0


@njit(cache=True, error_model="numpy")
def step_batch_f32(P, W, S2, X, Y):
    """One timestep of ``n`` independent streams: ``Y[s] = f(X[s], S2[s])``."""
    if (X.shape[1] != P[0, H_NIN] or Y.shape[1] != P[0, H_NOUT] or Y.shape[0] != X.shape[0]
            or S2.shape[0] != X.shape[0]):
        return BAD_SHAPE
    for s in range(X.shape[0]):
        if not _one(P, W, S2[s], X[s], Y[s]):
            return -(s + 1)
    return 0


@njit(cache=True, error_model="numpy")
def run_batch_f32(P, W, S2, XS, YS):
    """``YS[t, s] = f(XS[t, s], S2[s])``: T timesteps of n streams."""
    if (XS.shape[2] != P[0, H_NIN] or YS.shape[2] != P[0, H_NOUT] or YS.shape[0] != XS.shape[0]
            or YS.shape[1] != XS.shape[1] or S2.shape[0] != XS.shape[1]):
        return BAD_SHAPE
    for t in range(XS.shape[0]):
        for s in range(XS.shape[1]):
            if not _one(P, W, S2[s], XS[t, s], YS[t, s]):
                return -(t + 1)
    return 0


@njit(cache=True, error_model="numpy")
def generate_f32(P, W, S, x0, ys, argmax):
    """Autoregressive decoding from ``x0`` for ``ys.shape[0]`` steps.

    ``argmax == 0``: the output becomes the next input (needs NO == NI).
    ``argmax == 1``: the index of the largest output becomes the next input
    (a token id, for models whose first layer is an Embedding).
    """
    ni, no = P[0, H_NIN], P[0, H_NOUT]
    if x0.shape[0] != ni or ys.shape[1] != no:
        return BAD_SHAPE
    x = x0.copy()
    for t in range(ys.shape[0]):
        if not _one(P, W, S, x, ys[t]):
            return -(t + 1)
        if argmax:
            best = 0
            for i in range(1, no):
                if ys[t, i] > ys[t, best]:
                    best = i
            x[0] = best
        else:
            for i in range(ni):
                x[i] = ys[t, i]
    return 0


ENTRY_POINTS = ("step", "run", "step_batch", "run_batch", "generate")
_SIGNATURES = {
    "step": (step_f32, types.int64(_P, _WT, _V, _V, _V)),
    "run": (run_f32, types.int64(_P, _WT, _V, _M, _M)),
    "step_batch": (step_batch_f32, types.int64(_P, _WT, _M, _M, _M)),
    "run_batch": (run_batch_f32, types.int64(_P, _WT, _M, _T3, _T3)),
    "generate": (generate_f32, types.int64(_P, _WT, _V, _V, _M, types.int64)),
}


def native(name: str):
    """The dispatcher of entry point ``name``, loaded (or compiled) for its one signature.

    Compilation of any other signature is then disabled, so a call with the
    wrong dtype, layout, dimension or writeability raises ``TypeError`` in the
    dispatcher's C code before anything runs (the op table and weights are
    read-only arrays, the state and outputs writeable, all C-contiguous).
    """
    disp, sig = _SIGNATURES[name]
    if not disp.signatures:
        disp.compile(sig.args)
        disp.disable_compile()
    return disp
