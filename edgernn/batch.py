"""Many independent streams of one model, stepped together in one native call."""

from __future__ import annotations

import numpy as np

from . import engine
from .errors import StreamError
from .kernels.optable import S_NONFINITE
from .stream import _F32, StreamState, _check_array, _describe, _load_state

__all__ = ["StreamBatch"]


class StreamBatch:
    """``n`` independent streams of one model, stepped together in one native call.

    Create with :meth:`edgernn.Model.streams`. Row ``s`` of every array is stream ``s``.
    """

    def __init__(self, model, n: int, math: str = "fast"):
        n = int(n)
        if n < 1:
            raise StreamError(f"streams: expected n >= 1, got {n}")
        if not model.streamable:
            raise StreamError("streams() needs a step-able model (no Bidirectional layer)")
        plan = model._segments(math)[0]
        self.model, self.n = model, n
        self._P, self._W = plan.P, plan.W
        self._S = plan.new_arena(n)
        self._plan = plan
        self._ni, self._no, self._tokens = model.input_size, model.output_size, model.num_tokens
        self._step = engine.native("step_batch")
        if model.initial_state is not None:
            self.reset()

    def step(self, X, out=None) -> np.ndarray:
        """One timestep for every stream: X float32[n, input_size] -> float32[n, output_size]."""
        X = self._input(X)
        if out is None:
            out = np.empty((self.n, self._no), np.float32)
        elif (type(out) is not np.ndarray or out.dtype is not _F32
              or out.shape != (self.n, self._no)
              or not out.flags.c_contiguous or not out.flags.writeable):
            raise StreamError(f"step: out: expected writeable C-contiguous float32 array of "
                              f"shape ({self.n}, {self._no}), got {_describe(out)}")
        rc = self._step(self._P, self._W, self._S, X, out)
        if rc:
            raise StreamError(f"step: token id out of range in stream {-rc - 1}")
        return out

    def _input(self, X):
        if self._tokens:
            arr = np.asarray(X)
            if arr.shape not in ((self.n,), (self.n, 1)) or arr.dtype.kind not in "iu":
                raise StreamError(f"step: expected {self.n} token ids, got {_describe(arr)}")
            if arr.min() < 0 or arr.max() >= self._tokens:
                raise StreamError(f"step: token ids must lie in [0, {self._tokens})")
            return arr.astype(np.float32).reshape(self.n, 1)
        if (type(X) is np.ndarray and X.dtype is _F32 and X.shape == (self.n, self._ni)
                and X.flags.c_contiguous):
            return X
        return _check_array(X, (self.n, self._ni), "step: X")

    def run(self, XS) -> np.ndarray:
        """T timesteps of every stream: float32[T, n, input_size] -> float32[T, n, output_size]."""
        if self._tokens:
            raise StreamError("StreamBatch.run takes float inputs; step token models one "
                              "timestep at a time")
        if not isinstance(XS, np.ndarray) or XS.ndim != 3:
            raise StreamError(f"run: expected float32 array of shape (T, {self.n}, "
                              f"{self._ni}), got {_describe(XS)}")
        XS = _check_array(XS, (XS.shape[0], self.n, self._ni), "run: XS")
        YS = np.empty((XS.shape[0], self.n, self._no), np.float32)
        engine.native("run_batch")(self._P, self._W, self._S, XS, YS)
        return YS if self.model.return_sequences else YS[-1:]

    def reset(self, i: int | None = None) -> None:
        """Return stream ``i`` (every stream when ``i`` is None) to the initial state."""
        rows = range(self.n) if i is None else [self._index(i)]
        for r in rows:
            self._S[r] = 0.0
            if self.model.initial_state is not None:
                self.set_state(r, self.model.initial_state)

    def _index(self, i) -> int:
        i = int(i)
        if not 0 <= i < self.n:
            raise StreamError(f"stream index {i} out of range [0, {self.n})")
        return i

    def get_state(self, i: int) -> StreamState:
        """A copy of stream ``i``'s recurrent state."""
        S = self._S[self._index(i)]
        spans = self._plan.state_spans
        return StreamState(tuple(s[0] for s in spans),
                           tuple(S[off:off + n].copy() for _, off, n in spans))

    def set_state(self, i: int, state: StreamState) -> None:
        """Load ``state`` into stream ``i`` (matched as in :meth:`Stream.set_state`)."""
        S = self._S[self._index(i)]
        _load_state(state, [(S, name, off, n) for name, off, n in self._plan.state_spans])

    @property
    def nonfinite_steps(self) -> np.ndarray:
        """Per stream: how many times a layer's state became non-finite (then reset)."""
        return self._S[:, S_NONFINITE].astype(np.int64)


