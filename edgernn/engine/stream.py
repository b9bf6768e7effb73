"""Streams: a model's state, stepped one timestep (or one sequence) at a time.

A :class:`Stream` owns one state arena per part of its model; the packed
weights are shared by all streams of the model. ``step`` is one native call
that allocates nothing when ``out=`` is given; ``run`` loops over time in
native code; both give the same results bit for bit. (:class:`StreamBatch`
steps ``n`` independent streams in one native call.) A stream is not
thread-safe; different streams may be stepped from different threads at once
(the engine releases the GIL).
"""

from __future__ import annotations

import numpy as np

from ..errors import StreamError
from ..ir.state import StreamState
from ..kernels import optable as T
from . import entry as engine
from .arena import address

_F32 = np.dtype(np.float32)
_NO_OUT = object()   # a stream's trusted ``out`` before its first ``out=``


def describe(a) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {a.shape}"
    return type(a).__name__


def check_vec(a, n: int, what: str, writeable: bool = False) -> None:
    if type(a) is not np.ndarray or a.dtype != _F32 or a.shape != (n,):
        raise StreamError(f"{what}: expected float32 array of shape ({n},), got {describe(a)}")
    if writeable and not a.flags.writeable:
        raise StreamError(f"{what}: the array is read-only")


def packed(a: np.ndarray) -> np.ndarray:
    """``a`` with C-order strides of its own itemsize: numpy calls an axis of length 1
    contiguous whatever its stride (``a.T[i]``, ``a[:, :1]``), the native loop does not."""
    a = np.ascontiguousarray(a)
    want, step = [], a.itemsize
    for n in reversed(a.shape):
        want.insert(0, step)
        step *= n
    return a if a.strides == tuple(want) else a.copy()


def check_array(a, shape: tuple, what: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype != _F32 or a.shape != shape:
        shp = ", ".join("T" if s is None else str(s) for s in shape)
        raise StreamError(f"{what}: expected float32 array of shape ({shp}), got {describe(a)}")
    return packed(a)


def load_state(state, spans) -> None:
    """Copy ``state`` into ``spans`` = [(float view, name, offset, length)], by name or
    position."""
    if not isinstance(state, StreamState):
        raise StreamError(f"set_state: expected a StreamState, got {type(state).__name__}")
    want = tuple((n,) for _, _, _, n in spans)
    names = [name for _, name, _, _ in spans]
    arrays = state.arrays
    if sorted(state.names) == sorted(names) and len(set(names)) == len(names):
        by_name = dict(zip(state.names, state.arrays, strict=True))
        arrays = tuple(by_name[name] for name in names)
    if tuple(np.shape(a) for a in arrays) != want:
        raise StreamError(f"set_state: this stream's state has shapes {want}, "
                          f"the given state has {state.shapes}")
    for (S, _, off, n), a in zip(spans, arrays, strict=True):
        S[off:off + n] = a


class Runner:
    """One plan's state arenas for ``n`` streams, and the engine's call descriptor.

    Every address in the descriptor points into an array this object holds.
    """

    def __init__(self, plan, n: int = 1):
        self.plan, self.n = plan, n
        self.S = plan.new_state(n)
        self.F = self.S.view(np.float32).reshape(n, -1)   # per-stream float view
        self.L = self.S.view(np.int64).reshape(n, -1)     # per-stream counters
        self.idx = np.arange(n, dtype=np.int64)
        self.desc = self._descriptor(self.idx, n)
        self.addr = address(self.desc)
        self.fn = engine.native()

    def _descriptor(self, idx, m):
        d = np.zeros(T.D_SIZE, np.int64)
        p = self.plan
        d[T.D_P], d[T.D_NROWS] = address(p.P), p.P.shape[0]
        d[T.D_W], d[T.D_WBYTES] = address(p.W), p.W.size
        d[T.D_S], d[T.D_SSTRIDE], d[T.D_NSTREAMS] = address(self.S), p.state_bytes, self.n
        d[T.D_IDX], d[T.D_M] = address(idx), m
        return d

    def run(self, xs: np.ndarray, T_: int, m: int | None = None, addr: int | None = None):
        """``T_`` steps of the (first ``m``) streams on flat inputs; float32 outputs."""
        m = self.n if m is None else m
        ys = np.empty(T_ * m * self.plan.output_size, np.float32)
        rc = self.fn(self.addr if addr is None else addr, xs.reshape(-1), ys, T_)
        if rc:
            raise StreamError(f"run: token id out of range at step {-rc - 1}" if rc < 0 else
                              f"run: inputs do not match the model ({describe(xs)})")
        return ys

    def reset(self, rows=None) -> None:
        if rows is None:
            self.S[:] = 0
        else:
            self.F[rows] = 0.0

    def spans(self, row: int = 0):
        for name, off, n in self.plan.state_spans:
            yield self.F[row], name, off, n


class Stream:
    """One stream of a :class:`edgernn.Model`: its state and the step/run API.

    Create with :meth:`edgernn.Model.stream`.
    """

    def __init__(self, model, math: str = "fast"):
        self.model = model
        self._segments = [(seg, [Runner(p) for p in seg.plans]) for seg in model._segments(math)]
        self._streamable = model.streamable
        first = self._segments[0][1][0]
        self._native, self._addr = first.fn, first.addr
        self._ni, self._no = model.input_size, model.output_size
        self._tokens = model.num_tokens
        self._slow = bool(self._tokens) or not self._streamable
        checking = engine.checks_arrays(self._native)
        self._fn = self._slow_call if self._slow and checking else self._native
        if not checking:   # numba's raw entry point trusts its arguments: check every step
            self.__class__ = _CheckedStream
        self._xbuf = np.zeros(self._ni, np.float32)
        self._out = _NO_OUT   # no out= yet (None must not match it: it asks for a new array)
        if model.initial_state is not None:
            self.set_state(model.initial_state)

    # --- stepping ---------------------------------------------------------
    def step(self, x, out=None) -> np.ndarray:
        """Advance one timestep.

        Parameters
        ----------
        x : float32[input_size], or int[1] / int token id for Embedding models
        out : float32[output_size], optional
            Written in place and returned; with it, ``step`` allocates nothing.

        Returns
        -------
        float32[output_size] (several outputs concatenated: see ``Model.split``)
        """
        if out is not self._out:
            out = self._take_out(out)
        rc = self._fn(self._addr, x, out, 1)
        if rc:
            out = self._step_again(x, out, rc)
        return out

    def _take_out(self, out):
        """A new ``out``: None gets a new array; an array is checked fully, then trusted
        on later steps (its buffer stays valid memory while the stream holds it; the
        engine's entry checks its type, dimensions, dtype and stride, and the engine its
        size, on every call)."""
        if out is None:
            return np.empty(self._no, np.float32)
        if out.__class__ is not np.ndarray or out.dtype is not _F32 or out.ndim != 1 \
                or not out.flags.writeable:
            check_vec(out, self._no, "step: out", writeable=True)
        self._out = out
        return out

    def _step_again(self, x, out, rc):
        """The engine refused ``x`` or ``out`` before stepping: a clear error, or, for
        float32 vectors that are not exact contiguous ones, the step on a packed copy."""
        if rc == engine.STRIDED:
            if not (isinstance(x, np.ndarray) and x.dtype == _F32 and x.shape == (self._ni,)):
                x = self._slow_input(x)
            check_vec(out, self._no, "step: out", writeable=True)
            y = np.empty(self._no, np.float32)
            rc = self._fn(self._addr, packed(x), y, 1)
            if not rc:
                out[:] = y
                return out
        self._step_error(x, out, rc)

    def _slow_call(self, addr, x, out, steps):
        """The engine's entry for a model whose ``x`` is not a float32 vector (token ids)
        or that cannot step (Bidirectional): :meth:`_slow_input` first."""
        return self._native(addr, self._slow_input(x), out, steps)

    def _step_checked(self, x, out=None) -> np.ndarray:
        """:meth:`step` through numba's raw entry point (no native image: aarch64 unless
        ``EDGERNN_NATIVE=1``), which unboxes its arguments unchecked: the checks the
        image's entry makes are made here, on every step (except ``out``'s
        writeability, checked when it is new)."""
        if out is None:
            out = np.empty(self._no, np.float32)
        elif out is not self._out or out.ndim != 1:
            out = self._take_out(out)
        try:
            if x.dtype is not _F32 or x.ndim != 1 or self._slow:
                x = self._slow_input(x)
        except AttributeError:
            x = self._slow_input(x)
        rc = self._fn(self._addr, x, out, 1)
        if rc:
            out = self._step_again(x, out, rc)
        return out

    def _slow_input(self, x):
        if not self._streamable:
            raise StreamError("step() is not available for a model with a Bidirectional or "
                              "Reverse layer: it needs the whole sequence; use run(xs)")
        if self._tokens:
            tok = x
            if isinstance(x, np.ndarray):
                if x.shape not in ((1,), ()) or x.dtype.kind not in "iuf":
                    raise StreamError(f"step: expected a token id (int array of shape (1,)), "
                                      f"got {describe(x)}")
                tok = x.reshape(-1)[0]
            try:
                ok = 0 <= tok < self._tokens and int(tok) == tok
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise StreamError(f"step: token id {tok!r} out of range [0, {self._tokens})")
            self._xbuf[0] = tok
            return self._xbuf
        check_vec(x, self._ni, "step: x")
        return x

    def _step_error(self, x, out, rc):
        if rc < 0:
            raise StreamError(f"step: token id out of range [0, {self._tokens})")
        if not self._tokens:   # a token id was made an x vector that fits
            check_vec(x, self._ni, "step: x")
        check_vec(out, self._no, "step: out", writeable=True)
        raise StreamError(f"step: expected x float32 ({self._ni},) and out float32 "
                          f"({self._no},), got {describe(x)} and {describe(out)}")

    def run(self, xs) -> np.ndarray:
        """Run a whole sequence from the current state (which it updates).

        Parameters
        ----------
        xs : float32[T, input_size], or int[T] token ids for Embedding models

        Returns
        -------
        float32[T, output_size]; one row (the last) when the model has
        ``return_sequences=False`` or ends in such a Bidirectional layer
        """
        xs = self._seq_input(xs)
        steps = xs.shape[0]
        if len(self._segments) == 1 and self._segments[0][0].kind == "plan":
            runner = self._segments[0][1][0]
            ys = runner.run(xs, steps).reshape(steps, self._no)
        else:
            ys = self._run_graph(xs)
        return ys if self.model.return_sequences else ys[-1:]

    def _run_graph(self, xs):
        g = self.model.graph
        values, start = {}, 0
        for t in g.inputs:
            values[id(t)] = xs[:, start:start + t.size]
            start += t.size
        for seg, runners in self._segments:
            cur = np.ascontiguousarray(np.concatenate([values[id(t)] for t in seg.inputs],
                                                      axis=1), dtype=np.float32)
            if seg.kind == "plan":
                ys = runners[0].run(cur, cur.shape[0]).reshape(cur.shape[0], -1)
            else:
                ys = _whole(seg.node.op, runners, cur)
            start = 0
            for t in seg.outputs:
                values[id(t)] = ys[:, start:start + t.size]
                start += t.size
        return np.ascontiguousarray(np.concatenate([values[id(t)] for t in g.outputs], axis=1),
                                    dtype=np.float32)

    def _seq_input(self, xs):
        if self._tokens:
            arr = np.asarray(xs)
            if arr.ndim != 1 or arr.dtype.kind not in "iu":
                raise StreamError(f"run: expected int token ids of shape (T,), got "
                                  f"{describe(arr)}")
            if arr.size and (arr.min() < 0 or arr.max() >= self._tokens):
                raise StreamError(f"run: token ids must lie in [0, {self._tokens}), got "
                                  f"[{arr.min()}, {arr.max()}]")
            return arr.astype(np.float32).reshape(-1, 1)
        if not isinstance(xs, np.ndarray) or xs.ndim != 2:
            raise StreamError(f"run: expected float32 array of shape (T, {self._ni}), "
                              f"got {describe(xs)}")
        return check_array(xs, (xs.shape[0], self._ni), "run: xs")

    def generate(self, first_input, steps: int, feedback: str = "output") -> np.ndarray:
        """Autoregressive one-to-many decoding from the current state.

        Parameters
        ----------
        first_input : float32[input_size], or a token id (``feedback="argmax"``)
        steps : int
            Number of outputs to produce.
        feedback : "output" or "argmax"
            "output": each output is the next input (needs output_size ==
            input_size). "argmax": the index of each output's largest value is
            the next input token (needs an Embedding first layer).

        Returns
        -------
        float32[steps, output_size]
        """
        if not self._streamable:
            raise StreamError("generate() needs a step-able model (no Bidirectional layer)")
        steps = int(steps)
        if steps < 0:
            raise StreamError(f"generate: steps must be >= 0, got {steps}")
        if feedback == "output":
            if self._tokens or self._ni != self._no:
                raise StreamError(f"generate(feedback='output') needs output_size == "
                                  f"input_size and float inputs; this model maps "
                                  f"{self._ni} -> {self._no}"
                                  f"{' from token ids' if self._tokens else ''}")
            x0 = np.array(first_input, dtype=np.float32, copy=True).reshape(-1)
            check_vec(x0, self._ni, "generate: first_input")
            mode = 1
        elif feedback == "argmax":
            if not self._tokens:
                raise StreamError("generate(feedback='argmax') needs a model whose first "
                                  "layer is an Embedding")
            if self._no > self._tokens:
                raise StreamError(f"generate(feedback='argmax'): output_size {self._no} "
                                  f"exceeds the vocabulary of {self._tokens} tokens")
            x0 = self._slow_input(first_input).copy()
            mode = 2
        else:
            raise StreamError(f"generate: feedback must be 'output' or 'argmax', "
                              f"got {feedback!r}")
        runner = self._segments[0][1][0]
        desc = runner._descriptor(runner.idx, 1)
        desc[T.D_MODE] = mode
        ys = np.empty((steps, self._no), np.float32)
        rc = runner.fn(address(desc), x0, ys.reshape(-1), steps)
        if rc:
            raise StreamError(f"generate: token id out of range at step {-rc - 1}")
        return ys

    # --- state ----------------------------------------------------------------
    def _runners(self):
        for _, runners in self._segments:
            yield from runners

    def reset(self) -> None:
        """Return to the model's initial state (zeros unless it has one) and zero the
        non-finite counter."""
        for r in self._runners():
            r.reset()
        if self.model.initial_state is not None:
            self.set_state(self.model.initial_state)

    def get_state(self) -> StreamState:
        """A copy of the recurrent state (see :class:`StreamState`)."""
        names, arrays = [], []
        for r in self._runners():
            for S, name, off, n in r.spans():
                names.append(name)
                arrays.append(S[off:off + n].copy())
        return StreamState(tuple(names), tuple(arrays))

    def set_state(self, state: StreamState) -> None:
        """Load a state taken from this stream or one of a compatible model.

        Compatible: the same number of state vectors with the same lengths. When
        the names are the same as this stream's (in any order) vectors are
        matched by name, otherwise by position (an encoder's final state into a
        decoder of the same shape).
        """
        load_state(state, [s for r in self._runners() for s in r.spans()])

    @property
    def nonfinite_steps(self) -> int:
        """Steps in which some op's output or state was non-finite (such a state is
        reset to zero)."""
        return int(sum(r.L[0, T.S_NONFINITE] for r in self._runners()))


class _CheckedStream(Stream):
    """A :class:`Stream` over numba's raw entry point: ``step`` checks in Python."""

    step = Stream._step_checked


def _whole(op, runners, xs):
    """Run a whole-sequence op (Bidirectional, Reverse) over ``xs`` float32[T, I]."""
    T_ = xs.shape[0]
    bwd = runners[-1]
    yb = bwd.run(np.ascontiguousarray(xs[::-1]), T_).reshape(T_, -1)[::-1]
    if len(runners) == 1:  # Reverse
        return np.ascontiguousarray(yb)
    yf = runners[0].run(xs, T_).reshape(T_, -1)
    if not op.return_sequences:
        yf, yb = yf[-1:], yb[:1]
    if op.merge_mode == "concat":
        out = np.concatenate([yf, yb], axis=1)
    elif op.merge_mode == "sum":
        out = yf + yb
    elif op.merge_mode == "mul":
        out = yf * yb
    else:
        out = (yf + yb) * np.float32(0.5)
    return np.ascontiguousarray(out, dtype=np.float32)
