"""What every source shares: counters, a supervised reader thread, line splitting.

A source reads in its own thread and hands :class:`~edgernn_serve.items.Sample`
items to ``submit`` (the scheduler's input queue). Malformed input is never
fatal: it is counted in ``bad[reason]`` and skipped. A reader that fails anyway
(a bug, an unexpected OS error) is logged, turns ``healthy`` false (``/healthz``
answers 503) and is restarted after a backoff that doubles from 0.1 s to 5 s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

log = logging.getLogger("edgernn.serve")

MAX_LINE = 1 << 20
RESTART_MIN_S, RESTART_MAX_S = 0.1, 5.0


class Source:
    """Base: counters, lifecycle and the interface every source offers.

    Subclasses implement ``_loop`` (read until ``self._stop`` is set or the input
    ends, then set ``finished``); ``start`` runs it under :meth:`_supervise`.
    """

    kind = "source"
    seq_mod: int | None = None  # sequence numbers wrap at this modulus (None: no wrap)
    restartable = True  # False: a failed reader ends the input instead (a file)

    def __init__(self, submit) -> None:
        self.submit = submit
        self.bad: Counter = Counter()
        self.finished = threading.Event()  # the input ended (EOF): the daemon drains and exits
        self.restarts = 0  # reader threads restarted after a failure
        self.failing = False  # the reader failed and waits to be restarted
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name=f"source-{self.kind}",
                                        daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        backoff = RESTART_MIN_S
        while not self._stop.is_set() and not self.finished.is_set():
            t0 = time.monotonic()
            try:
                self._loop()
                return
            except Exception as e:  # a bug or an unexpected OS error: never a silent death
                if self._stop.is_set():
                    return
                self.failing, self.last_error = True, f"{type(e).__name__}: {e}"
                if not self.restartable:
                    log.exception("source %s: the reader failed; the input ends", self.kind)
                    self.failing = False
                    self.finished.set()
                    return
                log.exception("source %s: the reader failed; restarting in %.1f s",
                              self.kind, backoff)
            if time.monotonic() - t0 > 10 * RESTART_MAX_S:
                backoff = RESTART_MIN_S  # it ran well for a while: start the backoff over
            if self._stop.wait(backoff):
                return
            backoff = min(2 * backoff, RESTART_MAX_S)
            self.restarts += 1
            self.failing = False

    def _loop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop reading; after it returns no more frames are submitted."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)

    @property
    def healthy(self) -> bool:
        """False while the reader is down (failed and not yet restarted, or dead)."""
        if self.failing:
            return False
        t = self._thread
        return t is None or t.is_alive() or self.finished.is_set() or self._stop.is_set()

    def bad_frames(self) -> dict:
        return dict(self.bad)

    def drops(self) -> dict:
        """Frames the source itself dropped before they were accepted, by queue."""
        return {}

    @property
    def reconnects(self) -> int:
        return 0

    @property
    def connected(self) -> bool:
        return not self.finished.is_set() and self.healthy

    def check_model(self, model) -> None:
        """Raise ConfigError if frames of this source cannot feed ``model``."""


class LineSplitter:
    """Bytes in, complete lines out; a line longer than MAX_LINE is dropped whole
    (counted ``bad["oversize"]``), so memory stays bounded."""

    def __init__(self, bad: Counter) -> None:
        self.bad = bad
        self.buf = bytearray()
        self.discarding = False

    def feed(self, data: bytes) -> list:
        lines, start = [], 0
        while True:
            i = data.find(b"\n", start)
            if i < 0:
                if not self.discarding:
                    self.buf += data[start:]
                    if len(self.buf) > MAX_LINE:
                        self.bad["oversize"] += 1
                        self.buf.clear()
                        self.discarding = True
                return lines
            if self.discarding:
                self.discarding = False
            else:
                self.buf += data[start:i]
                if len(self.buf) > MAX_LINE:
                    self.bad["oversize"] += 1
                elif self.buf.strip():
                    lines.append(bytes(self.buf))
            self.buf.clear()
            start = i + 1

    def end(self) -> list:
        """The last line if the input ended without a newline."""
        line = bytes(self.buf)
        self.buf.clear()
        return [line] if line.strip() and not self.discarding else []
