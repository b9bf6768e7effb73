"""`HopStream`: any block size in, the same number of samples out, one hop at a time.

A streaming audio processor works in hops of ``hop`` samples (``_hop(x) -> y``,
both float32[hop]); callers hand it blocks of any size. ``process`` collects the
input into hops and returns as many samples as it took, from a queue that starts
with ``hop - 1`` zeros, so an output is always there: the output is delayed by
``hop - 1`` samples plus whatever the hop transform itself delays.
"""

from __future__ import annotations

import numpy as np

from ..errors import EdgeRNNError


class HopStream:
    """Base of :class:`~edgernn.audio.Denoiser` and :class:`~edgernn.audio.Pipeline`:
    subclasses set ``hop`` and define ``_hop``; :meth:`_start` empties the buffers."""

    hop: int

    def _hop(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _start(self) -> None:
        self._hopbuf = np.zeros(self.hop, np.float32)
        self._pending = np.zeros(2 * self.hop, np.float32)
        self._fill = 0
        self._npend = self.hop - 1          # the hop - 1 samples of hop buffering
        self.frames = 0
        self.nonfinite_samples = 0

    def process(self, block) -> np.ndarray:
        """The next ``n`` samples: float32[n] -> float32[n] (delayed by ``latency``).

        NaN/inf input samples are counted (``nonfinite_samples``) and taken as 0.
        """
        x = np.asarray(block)
        if x.ndim != 1 or x.dtype.kind != "f":
            raise EdgeRNNError(f"process expects a 1-D float array of samples (one channel), "
                               f"got {x.dtype} with shape {x.shape}")
        x = x.astype(np.float32, copy=False)
        bad = ~np.isfinite(x)
        if bad.any():
            self.nonfinite_samples += int(bad.sum())
            x = np.where(bad, np.float32(0.0), x)
        n, h, i = x.size, self.hop, 0
        out = np.empty(n, np.float32)
        while i < n:
            take = min(h - self._fill, n - i)
            self._hopbuf[self._fill:self._fill + take] = x[i:i + take]
            self._fill += take
            if self._fill == h:
                self._fill = 0
                p = self._npend
                self._pending[p:p + h] = self._hop(self._hopbuf)
                self._npend = p + h
                self.frames += 1
            # emit as many samples as were consumed: always available (the queue's head)
            j, p = i + take, self._npend
            out[i:j] = self._pending[:take]
            self._pending[:p - take] = self._pending[take:p]
            self._npend = p - take
            i = j
        return out
