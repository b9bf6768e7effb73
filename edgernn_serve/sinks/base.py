"""What every sink shares: the JSON record, the bounded buffer and its thread, the set.

Every sink takes the results of one wave with ``emit(results)`` in the stepping
thread and must not block it: sinks that can stall (a pipe, a file on a slow
card, a socket peer) queue results in a bounded buffer served by their own
thread; on overflow the oldest are dropped and counted. ``flush(timeout)``
delivers what is buffered and returns how many could not be (counted dropped).

JSON sinks write one object per result (docs/serve.md)::

    {"device": "pump-7", "stream": 0, "seq": 41, "n": 42, "t": 123456, "model": "m",
     "y": [0.1, ...], "latency_us": 84.1}

``y`` holds the exact float32 values; a model with named outputs (engine v2)
also gets ``"outputs": {"name": [...]}``. A frame that could not be stepped has
``"error": "..."`` instead of ``y``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque

from edgernn_serve.logutil import RateLimitedLog

log = logging.getLogger("edgernn.serve")


def record(r, device: str, slices: dict | None = None) -> dict:
    """The JSON-ready dict of one Result."""
    d = {"device": device, "stream": r.key, "seq": r.seq, "n": r.n, "t": r.t,
         "model": r.model_id}
    if r.error is not None:
        d["error"] = r.error
    elif r.y is not None:
        d["y"] = r.y.tolist()
        if slices:
            d["outputs"] = {name: r.y[s].tolist() for name, s in slices.items()}
    if r.extra:
        d.update(r.extra)
    d["latency_us"] = round((r.done_ns - r.arrived_ns) / 1000.0, 1)
    return d


class Sink:
    """Base: counters and the interface every sink offers."""

    type = "sink"
    audio = False  # True: takes the denoised audio (``emit_audio``), not JSON records
    buffered = False  # True: has a ``buffer`` option (a bounded queue of results)

    def __init__(self, name: str, device: str) -> None:
        self.name, self.device = name, device
        self.slices: dict | None = None
        self.delivered = 0
        self.dropped = 0
        self.errors = 0  # failed writes (a full disk, a broken pipe): their results dropped
        self.reconnects = 0

    def start(self) -> None:
        """Begin delivering (open connections, start threads)."""

    def emit(self, results: list) -> None:
        raise NotImplementedError

    @property
    def pending(self) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        """Deliver what is buffered within ``timeout`` s; return what was left (dropped)."""
        end = time.monotonic() + timeout
        while self.pending and time.monotonic() < end:
            time.sleep(0.005)
        return self.pending

    def close(self) -> None:
        """Stop delivering; release resources. Idempotent."""

    def line(self, r) -> bytes:
        return json.dumps(record(r, self.device, self.slices), separators=(",", ":"),
                          allow_nan=False).encode() + b"\n"


class QueuedSink(Sink):
    """A sink whose writes happen in its own thread, fed by a bounded buffer.

    The thread writes what gathered during ``linger`` seconds after the first
    result in one go: at 1 kHz that is one wake-up and one write per 5 ms, not
    per frame (latency to the reader grows by at most ``linger``).
    """

    linger = 0.005
    buffered = True

    def __init__(self, name: str, device: str, buffer: int) -> None:
        super().__init__(name, device)
        self.capacity = buffer
        self._q: deque = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = 0
        self._warn = RateLimitedLog(log)
        self._thread = threading.Thread(target=self._loop, name=f"sink-{name}", daemon=True)

    def start(self) -> None:
        if self._thread.ident is None:
            self._thread.start()

    def emit(self, results: list) -> None:
        with self._cond:
            self._q.extend(results)
            excess = len(self._q) - self.capacity
            for _ in range(excess):
                self._q.popleft()
            if excess > 0:
                self.dropped += excess
            self._cond.notify()

    @property
    def pending(self) -> int:
        return len(self._q) + self._busy

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._q and not self._closing:
                    self._cond.wait()
                if not self._q:
                    return
            if not self._closing:  # gather what arrives meanwhile: one write, one wake-up
                time.sleep(self.linger)
            with self._cond:
                batch = list(self._q)
                self._q.clear()
                self._busy = len(batch)
            try:
                ok = self.write(batch)
            except Exception as e:  # keep serving; the reason is logged, rate-limited
                self.errors += 1
                self._warn.warning("write", f"sink {self.name}: write failed ({e}); results "
                                            f"dropped")
                ok = False
            if ok is None:  # not connected: keep them (bounded), retry a little later
                with self._cond:
                    self._q.extendleft(reversed(batch))
                    excess = len(self._q) - self.capacity
                    for _ in range(excess):
                        self._q.popleft()
                    self.dropped += max(excess, 0)
                    self._busy = 0
                    if not self._closing:
                        self._cond.wait(0.1)
                continue
            if ok:
                self.delivered += len(batch)
            else:
                self.dropped += len(batch)
            self._busy = 0

    def write(self, batch: list) -> bool | None:
        """Deliver ``batch``: True if done, False if lost (counted), None to retry later."""
        raise NotImplementedError

    def close(self) -> None:
        with self._cond:
            self._closing = True
            left = len(self._q)
            self._q.clear()
            self.dropped += left
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(1.0)


class SinkSet:
    """All configured sinks; ``emit`` hands each wave's results to every one.

    Audio sinks (a denoising source's ``wav`` and ``audio`` sinks) get the
    denoised audio through ``emit_audio``; the others get ``emit``'s results.
    """

    def __init__(self, sinks: list) -> None:
        self.sinks = list(sinks)

    def start(self) -> None:
        for s in self.sinks:
            s.start()

    def start_new(self, running) -> None:
        """Start the sinks that are not carried over from the ``running`` set."""
        for s in self.sinks:
            if not any(s is k for k in running.sinks):
                s.start()

    def emit(self, results: list, audio: bool = False) -> None:
        for s in self.sinks:
            if s.audio != audio:
                continue
            try:
                s.emit(results)
            except Exception as e:  # one broken sink must not starve the others
                s.dropped += len(results)
                log.warning("sink %s: emit failed: %s", s.name, e)

    def emit_audio(self, results: list) -> None:
        self.emit(results, audio=True)

    def set_slices(self, slices) -> None:
        for s in self.sinks:
            s.slices = slices

    def flush(self, timeout: float) -> dict:
        """Flush every sink within ``timeout`` s in total; return {name: left}."""
        end = time.monotonic() + timeout
        return {s.name: s.flush(max(0.0, end - time.monotonic())) for s in self.sinks}

    def close(self, keep=()) -> None:
        """Close every sink but those in ``keep`` (carried over into a new set)."""
        for s in self.sinks:
            if not any(s is k for k in keep):
                s.close()
