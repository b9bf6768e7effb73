"""Many independent streams of one model, stepped together in one native call.

The engine runs each op once for all the streams of a step (ops outside,
streams inside): a weight panel is read from memory once per step for the
whole batch, then from cache for every further stream.
"""

from __future__ import annotations

import numpy as np

from ..errors import StreamError
from ..ir.state import StreamState
from ..kernels import optable as T
from .arena import address
from .stream import _F32, Runner, check_array, describe, load_state

__all__ = ["StreamBatch"]


class StreamBatch:
    """``n`` independent streams of one model, stepped together in one native call.

    Create with :meth:`edgernn.Model.streams`. Row ``i`` of every array is stream
    ``i`` (or, with ``streams=``, stream ``streams[i]``).
    """

    def __init__(self, model, n: int, math: str = "fast"):
        n = int(n)
        if n < 1:
            raise StreamError(f"streams: expected n >= 1, got {n}")
        if not model.streamable:
            raise StreamError("streams() needs a step-able model (no Bidirectional layer)")
        self.model, self.n = model, n
        self._r = Runner(model._segments(math)[0].plans[0], n)
        self._sel = np.zeros(n, np.int64)
        self._sel_desc = self._r._descriptor(self._sel, 0)
        self._sel_addr = address(self._sel_desc)
        self._ni, self._no, self._tokens = model.input_size, model.output_size, model.num_tokens
        if model.initial_state is not None:
            self.reset()

    def step(self, X, out=None, streams=None) -> np.ndarray:
        """One timestep for every stream, or for the streams listed in ``streams``.

        Parameters
        ----------
        X : float32[m, input_size] (int token ids [m] for Embedding models); m = n, or
            ``len(streams)``
        out : float32[m, output_size], optional (written in place and returned)
        streams : int array of m distinct stream indices, optional

        Returns
        -------
        float32[m, output_size]
        """
        if streams is None:
            m, addr = self.n, self._r.addr
        else:
            m, addr = self._select(streams), self._sel_addr
        X = self._input(X, m)
        if out is None:
            out = np.empty((m, self._no), np.float32)
        elif (type(out) is not np.ndarray or out.dtype is not _F32
              or out.shape != (m, self._no)
              or not out.flags.c_contiguous or not out.flags.writeable):
            raise StreamError(f"step: out: expected writeable C-contiguous float32 array of "
                              f"shape ({m}, {self._no}), got {describe(out)}")
        rc = self._r.fn(addr, X.reshape(-1), out.reshape(-1), 1)
        if rc:
            raise StreamError(f"step: token id out of range (step {-rc - 1})")
        return out

    def _select(self, streams) -> int:
        idx = np.asarray(streams)
        if idx.ndim != 1 or idx.dtype.kind not in "iu" or idx.size == 0:
            raise StreamError(f"step: streams: expected a non-empty 1-D int array of stream "
                              f"indices, got {describe(idx)}")
        if idx.min() < 0 or idx.max() >= self.n:
            raise StreamError(f"step: streams: indices must lie in [0, {self.n}), got "
                              f"[{idx.min()}, {idx.max()}]")
        m = idx.size
        if m > 1 and np.unique(idx).size != m:
            raise StreamError("step: streams: each stream may be listed once per step")
        self._sel[:m] = idx
        self._sel_desc[T.D_M] = m
        return m

    def _input(self, X, m):
        if self._tokens:
            arr = np.asarray(X)
            if arr.shape not in ((m,), (m, 1)) or arr.dtype.kind not in "iu":
                raise StreamError(f"step: expected {m} token ids, got {describe(arr)}")
            if arr.min() < 0 or arr.max() >= self._tokens:
                raise StreamError(f"step: token ids must lie in [0, {self._tokens})")
            return arr.astype(np.float32).reshape(m, 1)
        if (type(X) is np.ndarray and X.dtype is _F32 and X.shape == (m, self._ni)
                and X.flags.c_contiguous):
            return X
        return check_array(X, (m, self._ni), "step: X")

    def run(self, XS) -> np.ndarray:
        """T timesteps of every stream: float32[T, n, input_size] -> float32[T, n, output_size]."""
        if self._tokens:
            raise StreamError("StreamBatch.run takes float inputs; step token models one "
                              "timestep at a time")
        if not isinstance(XS, np.ndarray) or XS.ndim != 3:
            raise StreamError(f"run: expected float32 array of shape (T, {self.n}, "
                              f"{self._ni}), got {describe(XS)}")
        XS = check_array(XS, (XS.shape[0], self.n, self._ni), "run: XS")
        YS = self._r.run(XS, XS.shape[0]).reshape(XS.shape[0], self.n, self._no)
        return YS if self.model.return_sequences else YS[-1:]

    def reset(self, i: int | None = None) -> None:
        """Return stream ``i`` (every stream when ``i`` is None) to the initial state."""
        rows = range(self.n) if i is None else [self._index(i)]
        for r in rows:
            self._r.F[r] = 0.0
            if self.model.initial_state is not None:
                self.set_state(r, self.model.initial_state)

    def _index(self, i) -> int:
        i = int(i)
        if not 0 <= i < self.n:
            raise StreamError(f"stream index {i} out of range [0, {self.n})")
        return i

    def get_state(self, i: int) -> StreamState:
        """A copy of stream ``i``'s recurrent state."""
        spans = list(self._r.spans(self._index(i)))
        return StreamState(tuple(s[1] for s in spans),
                           tuple(S[off:off + n].copy() for S, _, off, n in spans))

    def set_state(self, i: int, state: StreamState) -> None:
        """Load ``state`` into stream ``i`` (matched as in :meth:`Stream.set_state`)."""
        load_state(state, list(self._r.spans(self._index(i))))

    def state_absmax(self) -> np.ndarray:
        """float32[n]: per stream, the largest absolute value in its recurrent state
        (nan if any is nan), without copying the states out (a daemon's check for
        exploding state)."""
        out = np.zeros(self.n, np.float32)
        for _, off, n in self._r.plan.state_spans:
            np.maximum(out, np.abs(self._r.F[:, off:off + n]).max(axis=1), out=out)
        return out

    @property
    def nonfinite_steps(self) -> np.ndarray:
        """Per stream: steps in which some op's output or state was non-finite."""
        return self._r.L[:, T.S_NONFINITE].copy()
