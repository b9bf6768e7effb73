"""Streams: a model's state, stepped one timestep (or one sequence) at a time.

A :class:`Stream` owns one float32 state arena; the model's packed weights are
shared by all its streams. ``step`` is one native call that allocates nothing
when ``out=`` is given; ``run`` loops over time in native code; both give the
same results bit for bit. (:class:`edgernn.batch.StreamBatch` steps ``n``
independent streams in one native call.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import engine
from .errors import StreamError
from .kernels.optable import S_NONFINITE

_F32 = np.dtype(np.float32)


@dataclass(frozen=True, eq=False)
class StreamState:
    """A copy of a stream's recurrent state (h, and c for LSTM, per layer).

    Attributes
    ----------
    names : tuple of str     e.g. ``("0.h", "0.c", "1.h")``
    arrays : tuple of float32[hidden_size] arrays, in the same order
    """

    names: tuple
    arrays: tuple

    def copy(self) -> StreamState:
        return StreamState(self.names, tuple(a.copy() for a in self.arrays))

    @property
    def shapes(self):
        return tuple(a.shape for a in self.arrays)


def _describe(a) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {a.shape}"
    return type(a).__name__


def _check_vec(a, n: int, what: str, writeable: bool = False) -> None:
    if type(a) is not np.ndarray or a.dtype != _F32 or a.shape != (n,):
        raise StreamError(f"{what}: expected float32 array of shape ({n},), got {_describe(a)}")
    if not a.flags.c_contiguous:
        raise StreamError(f"{what}: expected a C-contiguous float32 array of shape ({n},), "
                          f"got a strided view")
    if writeable and not a.flags.writeable:
        raise StreamError(f"{what}: the array is read-only")


def _check_array(a, shape: tuple, what: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype != _F32 or a.shape != shape:
        shp = ", ".join("T" if s is None else str(s) for s in shape)
        raise StreamError(f"{what}: expected float32 array of shape ({shp}), got {_describe(a)}")
    return np.ascontiguousarray(a)


def _load_state(state, spans) -> None:
    """Copy ``state`` into ``spans`` = [(arena, name, offset, length)], by name or position."""
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


class _Part:
    """One segment of a model: a packed plan and its state arena."""

    def __init__(self, plan):
        self.plan = plan
        self.S = plan.new_arena()


class Stream:
    """One stream of a :class:`edgernn.Model`: its state and the step/run API.

    Create with :meth:`edgernn.Model.stream`.
    """

    def __init__(self, model, math: str = "fast"):
        self.model = model
        self._segments = []
        for seg in model._segments(math):
            if isinstance(seg, tuple):
                self._segments.append(("bi", seg[0], seg[1] and _Part(seg[1]), _Part(seg[2])))
            else:
                self._segments.append(("ops", None, _Part(seg), None))
        self._streamable = len(self._segments) == 1 and self._segments[0][0] == "ops"
        part = self._segments[0][2] or self._segments[0][3]
        self._P, self._W, self._S = part.plan.P, part.plan.W, part.S
        self._ni, self._no = model.input_size, model.output_size
        self._tokens = model.num_tokens
        self._xbuf = np.zeros(self._ni, np.float32)
        self._step = engine.native("step") if self._streamable else None
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
        float32[output_size]
        """
        if self._tokens or self._step is None:
            x = self._token_input(x)
        if out is None:
            out = np.empty(self._no, np.float32)
        try:
            rc = self._step(self._P, self._W, self._S, x, out)
        except TypeError:
            rc = self._step_readonly(x, out)
        if rc:
            self._step_error(x, out, rc)
        return out

    def _step_readonly(self, x, out):
        """A read-only input (``np.frombuffer``) is copied into a preallocated buffer."""
        if (isinstance(x, np.ndarray) and not x.flags.writeable and x.dtype == _F32
                and x.shape == (self._ni,) and x is not self._xbuf):
            self._xbuf[:] = x
            try:
                return self._step(self._P, self._W, self._S, self._xbuf, out)
            except TypeError:
                pass
        return engine.BAD_SHAPE

    def _step_error(self, x, out, rc):
        _check_vec(x, self._ni, "step: x")
        _check_vec(out, self._no, "step: out", writeable=True)
        if rc == engine.BAD_SHAPE:
            raise StreamError(f"step: expected x float32 ({self._ni},) and out float32 "
                              f"({self._no},), got {_describe(x)} and {_describe(out)}")
        raise StreamError(f"step: token id out of range [0, {self._tokens})")

    def _token_input(self, x):
        if self._step is None:
            raise StreamError("step() is not available for a model with a Bidirectional or "
                              "Reverse layer: it needs the whole sequence; use run(xs)")
        if not self._tokens:
            return x
        tok = x
        if isinstance(x, np.ndarray):
            if x.shape not in ((1,), ()) or x.dtype.kind not in "iuf":
                raise StreamError(f"step: expected a token id (int array of shape (1,)), "
                                  f"got {_describe(x)}")
            tok = x.reshape(-1)[0]
        if not (0 <= tok < self._tokens) or int(tok) != tok:
            raise StreamError(f"step: token id {tok!r} out of range [0, {self._tokens})")
        self._xbuf[0] = tok
        return self._xbuf

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
        cur = xs
        for kind, layer, a, b in self._segments:
            if kind == "ops":
                cur = self._run_part(a, cur)
            else:
                cur = self._run_bidirectional(layer, a, b, cur)
        return cur if self.model.return_sequences else cur[-1:]

    def _seq_input(self, xs):
        if self._tokens:
            arr = np.asarray(xs)
            if arr.ndim != 1 or arr.dtype.kind not in "iu":
                raise StreamError(f"run: expected int token ids of shape (T,), got "
                                  f"{_describe(arr)}")
            if arr.size and (arr.min() < 0 or arr.max() >= self._tokens):
                raise StreamError(f"run: token ids must lie in [0, {self._tokens}), got "
                                  f"[{arr.min()}, {arr.max()}]")
            return arr.astype(np.float32).reshape(-1, 1)
        if not isinstance(xs, np.ndarray) or xs.ndim != 2:
            raise StreamError(f"run: expected float32 array of shape (T, {self._ni}), "
                              f"got {_describe(xs)}")
        return _check_array(xs, (xs.shape[0], self._ni), "run: xs")

    @staticmethod
    def _run_part(part, xs):
        ys = np.empty((xs.shape[0], part.plan.output_size), np.float32)
        rc = engine.native("run")(part.plan.P, part.plan.W, part.S, xs, ys)
        if rc:
            raise StreamError(f"run: token id out of range at step {-rc - 1}")
        return ys

    def _run_bidirectional(self, layer, fwd, bwd, xs):
        yb = self._run_part(bwd, np.ascontiguousarray(xs[::-1]))[::-1]
        if fwd is None:  # Reverse
            return np.ascontiguousarray(yb)
        yf = self._run_part(fwd, xs)
        if not layer.return_sequences:
            yf, yb = yf[-1:], yb[:1]
        if layer.merge_mode == "concat":
            out = np.concatenate([yf, yb], axis=1)
        elif layer.merge_mode == "sum":
            out = yf + yb
        elif layer.merge_mode == "mul":
            out = yf * yb
        else:
            out = (yf + yb) * np.float32(0.5)
        return np.ascontiguousarray(out, dtype=np.float32)

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
        if self._step is None:
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
            _check_vec(x0, self._ni, "generate: first_input")
            mode = 0
        elif feedback == "argmax":
            if not self._tokens:
                raise StreamError("generate(feedback='argmax') needs a model whose first "
                                  "layer is an Embedding")
            if self._no > self._tokens:
                raise StreamError(f"generate(feedback='argmax'): output_size {self._no} "
                                  f"exceeds the vocabulary of {self._tokens} tokens")
            x0 = self._token_input(first_input).copy()
            mode = 1
        else:
            raise StreamError(f"generate: feedback must be 'output' or 'argmax', "
                              f"got {feedback!r}")
        ys = np.empty((steps, self._no), np.float32)
        engine.native("generate")(self._P, self._W, self._S, x0, ys, mode)
        return ys

    # --- state ----------------------------------------------------------------
    def _parts(self):
        for _, _, *parts in self._segments:
            yield from (part for part in parts if part is not None)

    def _spans(self):
        for part in self._parts():
            for name, off, n in part.plan.state_spans:
                yield part.S, name, off, n

    def reset(self) -> None:
        """Return to the model's initial state (zeros unless it has one) and zero the
        non-finite counter."""
        for part in self._parts():
            part.S[:] = 0.0
        if self.model.initial_state is not None:
            self.set_state(self.model.initial_state)

    def get_state(self) -> StreamState:
        """A copy of the recurrent state (see :class:`StreamState`)."""
        names, arrays = [], []
        for S, name, off, n in self._spans():
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
        _load_state(state, list(self._spans()))

    @property
    def nonfinite_steps(self) -> int:
        """How many times a layer's new state was non-finite (and was reset to zero)."""
        return int(sum(part.S[S_NONFINITE] for part in self._parts()))
