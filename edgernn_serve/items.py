"""What flows through the daemon: samples in, results out, and the bounded input queue.

Sources turn their input into :class:`Sample` (and :class:`Reset`) items and
hand them to the :class:`InputQueue`; the scheduler steps them and hands a
:class:`Result` per accepted sample to the sinks.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Sample:
    """One input frame of one stream.

    Attributes
    ----------
    key : int or str
        Stream id (serial: 0..255; JSON sources: any int or string).
    seq : int or None
        The source's sequence number, if it has one.
    t : int
        Device timestamp (µs for serial frames) or 0.
    x : float32[k]
        The values (the model's input_size of them, or one token id).
    origin : object
        The source it came from (replies to the device go back through it).
    arrived_ns : int
        ``time.perf_counter_ns()`` when the frame was read.
    """

    key: object
    seq: int | None
    t: int
    x: np.ndarray
    origin: object
    arrived_ns: int


@dataclass(slots=True)
class Reset:
    """Reset a stream's state, in order with its samples; then send ``reply`` (an ACK)."""

    key: object
    origin: object
    reply: bytes | None = None


@dataclass(slots=True)
class Result:
    """The answer to one accepted sample.

    Attributes
    ----------
    y : float32[output_size] or None
        The model's output (None when ``error`` is set).
    n : int
        Steps of this stream so far (1 for its first result), for ordering.
    error : str or None
        Why there is no output (wrong size, non-finite output, ...).
    extra : dict or None
        Fields a JSON record carries besides (or instead of) ``y``: a denoising
        source's periodic report has ``y = None`` and its summary here.
    """

    key: object
    seq: int | None
    t: int
    n: int
    y: np.ndarray | None
    model_id: str
    origin: object
    arrived_ns: int
    done_ns: int
    error: str | None = None
    extra: dict | None = None


class InputQueue:
    """Bounded FIFO between the sources and the scheduler, drop-oldest on overflow.

    Dropped samples are counted in ``dropped_samples`` (other items in
    ``dropped_other``); ``accepted`` counts every sample put in.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.accepted = 0
        self.dropped_samples = 0
        self.dropped_other = 0
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._woken = False

    def __len__(self) -> int:
        return len(self._items)

    def count(self, items: list) -> None:
        """Count the samples of ``items`` as accepted (stepped without being queued)."""
        with self._cond:
            self.accepted += sum(1 for it in items if type(it) is Sample)

    def put_many(self, items: list) -> None:
        with self._cond:
            self.accepted += sum(1 for it in items if type(it) is Sample)
            self._items.extend(items)
            while len(self._items) > self.capacity:
                if type(self._items.popleft()) is Sample:
                    self.dropped_samples += 1
                else:
                    self.dropped_other += 1
            self._cond.notify()

    def samples_waiting(self) -> int:
        with self._cond:
            return sum(1 for it in self._items if type(it) is Sample)

    def get_many(self, timeout: float) -> list:
        """Everything queued, waiting up to ``timeout`` s for something (or a wake())."""
        self.wait(timeout)
        return self.take()

    def wait(self, timeout: float) -> None:
        """Return when something is queued, after a wake(), or after ``timeout`` s."""
        with self._cond:
            if not self._items and not self._woken:
                self._cond.wait(timeout)
            self._woken = False

    def take(self) -> list:
        """Everything queued now (no waiting)."""
        with self._cond:
            out = list(self._items)
            self._items.clear()
            return out

    def wake(self) -> None:
        """Make a waiting get_many return now (e.g. a model swap is pending)."""
        with self._cond:
            self._woken = True
            self._cond.notify()
