"""The stepping loop: ready frames of many streams go through one model in one call.

One thread takes everything waiting in the :class:`~edgernn_serve.items.InputQueue`
and cuts it into *waves*: wave k holds the k-th waiting sample of every stream.
A wave is stepped with one ``Batch.step(X, out, rows)`` native call and its
results are handed to the sinks. So each stream sees its frames (and resets) in
order, and streams that are ready together share the weights' trip through the
cache; results of different streams may leave in another order than their
frames arrived.

Stream policy (``[streams]``): each stream key gets a slot (a row of the batch)
on its first frame; when all ``max`` slots are taken, the least recently used
slot idle for over a second is evicted, else the frame is dropped and counted.
A slot is reset on a sequence gap (``reset_on_gap``), after ``idle_reset``
seconds of silence, when the engine reports a non-finite state, when an output
is non-finite (that frame is answered with an error), and when its state's
magnitude exceeds ``state_limit`` (checked every second). The resets that
restart the stream's audio (not the non-finite and ``state_limit`` ones) also
restart its VAD stage (:mod:`edgernn_serve.vad`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from edgernn_serve.items import InputQueue, Reset, Result, Sample
from edgernn_serve.logutil import RateLimitedLog
from edgernn_serve.models import ModelHandle
from edgernn_serve.stepper import ModelStepper

log = logging.getLogger("edgernn.serve")

_EVICT_IDLE_NS = 1_000_000_000
_TRIM_EVERY_S = 10.0


def _malloc_trim():
    """glibc's malloc_trim(0), or None elsewhere: hands freed heap pages back to the OS."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


#: how long a source's thread waits for the stepping thread before queueing instead
INLINE_WAIT_S = 0.05


@dataclass
class _Slot:
    row: int
    key: object = None
    last_seq: int | None = None
    last_ns: int = 0
    n: int = 0


class Scheduler:
    """Steps every accepted sample and hands one Result per sample to ``sinks``.

    Parameters
    ----------
    handle : ModelHandle
    streams : StreamsConf
    sinks : object with ``emit(results: list[Result])``
    metrics : Metrics
    math : str
    stepper : ModelStepper or DenoiseStepper, optional
        What waves are stepped with (default: a ``ModelStepper``, batches of the model).
    **options
        The stepper's knobs (``denoise=DenoiseConf`` for a DenoiseStepper).
    """

    def __init__(self, handle: ModelHandle, streams, sinks, metrics, math: str = "fast",
                 stepper=None, **options):
        self.stepper = stepper if stepper is not None else ModelStepper()
        self.queue = InputQueue(streams.queue)
        self.metrics = metrics
        self.c = Counter()  # steps, batches, results_ok, results_error, deadline_misses, ...
        self.bad = Counter()  # bad frames by reason
        self.resets = Counter()  # stream resets by reason
        self.slots: dict = {}
        self.heartbeat = time.monotonic()
        self._pending = None
        self._swapped = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()  # held while stepping: by the thread or a source inline
        self._thread: threading.Thread | None = None
        self._warn = RateLimitedLog(log)
        self._next_state_check = time.monotonic() + 1.0
        self._trim, self._next_trim = _malloc_trim(), time.monotonic() + _TRIM_EVERY_S
        self.stepper.bind(self.c, self.bad)
        self._install(handle, streams, sinks, math, **options)

    # ------------------------------------------------------------ model swaps
    def _install(self, handle, streams, sinks, math, **options) -> None:
        old, st = getattr(self, "handle", None), self.stepper
        old_batch = getattr(self, "batch", None)
        rows = {key: slot.row for key, slot in self.slots.items()}
        keep_state = (old is not None and self.math == math and self.conf.max == streams.max
                      and st.carry_over(self.batch, old, handle))
        self.handle, self.conf, self.sinks, self.math = handle, streams, sinks, math
        self.queue.capacity = streams.queue
        self.deadline_ns = int(streams.deadline_ms * 1e6)
        self.metrics.info = handle.info
        if not keep_state:
            m = handle.model
            self.batch, n_in, n_out = st.new_batch(m, streams.max, math, options)
            self.X = np.zeros((streams.max, max(n_in, 1)), np.float32)
            self.Y = np.zeros((streams.max, n_out), np.float32)
            self.rows = np.zeros(streams.max, np.int64)
            self.in_size, self.tokens = n_in, m.num_tokens
            if len(self.slots) > streams.max:
                for key, _ in sorted(self.slots.items(), key=lambda kv: kv[1].last_ns)[
                        :len(self.slots) - streams.max]:
                    del self.slots[key]
                    self.resets["evicted"] += 1
            for row, slot in enumerate(self.slots.values()):
                slot.row = row  # fresh batch: every slot starts from the initial state
            self.free = list(range(streams.max - 1, len(self.slots) - 1, -1))
            if old_batch is not None:
                st.carry_streams(old_batch, self.batch, {k: (rows[k], slot.row) for k, slot
                                                         in self.slots.items()},
                                 old.sha256 == handle.sha256)
        st.configure(self.batch, options)

    def request_swap(self, handle: ModelHandle, streams, sinks, math: str,
                     timeout: float = 5.0, **options) -> bool:
        """Install a new (validated) model, policy and sinks between two waves.

        Returns once the stepping thread installed them (True), or False after
        ``timeout`` s. No queued frame is lost: frames before the swap are answered
        by the old model and sinks, the rest by the new ones. ``options`` go to
        the stepper (a denoising source's knobs).
        """
        self._swapped.clear()
        self._pending = (handle, streams, sinks, math, options)
        self.queue.wake()
        if self._thread is None:
            self._take_swap()
        return self._swapped.wait(timeout)

    def _take_swap(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._install(*pending[:4], **pending[4])
            self._swapped.set()

    # ------------------------------------------------------------ running
    def start(self, init=None) -> None:
        """Start the stepping thread; it first calls ``init()`` (e.g. to set its priority)."""
        def main():
            if init is not None:
                init()
            self._run()

        self._thread = threading.Thread(target=main, name="stepper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Answer everything already queued, then stop; False if not done in ``timeout`` s.

        Then the stepper's last words (a denoiser's partial reports) go to the sinks."""
        self._stopping = True
        self.queue.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        last = self.stepper.final()
        if last:
            self._deliver(self.sinks.emit, last)
        return True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, items: list) -> None:
        """Called by a source's thread with the items it read, in order.

        Inline (``streams.inline``): when nothing is queued, step them right here,
        saving a thread hand-off per read, once the stepping thread is idle (waiting
        for it at most :data:`INLINE_WAIT_S`: the source is paced by the stepping, and
        a reader never queues just because the stepping thread was waking up);
        otherwise queue them for the stepping thread. Items leave the queue only under
        the lock, so a stream's frames are stepped in order either way.
        """
        if self.conf.inline and not self._stopping and self._lock.acquire(
                timeout=INLINE_WAIT_S):
            try:
                if not len(self.queue) and self._pending is None:
                    self.queue.count(items)
                    self._safe_process(items)
                    return
            finally:
                self._lock.release()
        self.queue.put_many(items)

    def _safe_process(self, items: list) -> None:
        try:
            self.process(items)
        except Exception:  # a bug must not stop the daemon silently
            log.exception("stepping failed on %d items", len(items))
            self.c["internal_errors"] += 1

    def _run(self) -> None:
        while True:
            self.queue.wait(0.05)
            self.heartbeat = time.monotonic()
            with self._lock:
                if self._pending is not None:
                    self._take_swap()
                items = self.queue.take()
                if items:
                    self._safe_process(items)
                elif self._stopping:
                    return
                if self.heartbeat >= self._next_state_check:
                    self._check_states()
            if self._trim is not None and self.heartbeat >= self._next_trim:
                self._next_trim = self.heartbeat + _TRIM_EVERY_S
                self._trim(0)  # a burst's freed memory goes back: RSS stays flat for months

    # ------------------------------------------------------------ stepping
    def process(self, items: list) -> None:
        """Step ``items`` (Samples and Resets), each stream's in order, in as few waves as can be.

        The k-th sample of each stream in ``items`` goes to wave k; a Reset, or a
        sample that cannot be stepped (answered with an error), is applied just
        before the wave holding that stream's next sample.
        """
        waves: list = []  # [(pre-actions, samples)]
        level: dict = {}
        for it in items:
            k = level.get(it.key, 0)
            if k == len(waves):
                waves.append(([], []))
            if type(it) is Reset:
                waves[k][0].append(it)
                continue
            err = self.stepper.check(it.x, self.in_size, self.tokens)
            if err is not None:
                waves[k][0].append((it, err))
                continue
            waves[k][1].append(it)
            level[it.key] = k + 1
        now = time.perf_counter_ns()
        for pre, samples in waves:
            for act in pre:
                self._pre(act)
            self._wave(samples, now)

    def _pre(self, act) -> None:
        if type(act) is Reset:
            slot = self.slots.get(act.key)
            if slot is not None:
                self._reset(slot, "control")
                slot.last_seq = None
            if act.reply is not None:
                act.origin.reply(act.reply)
        else:
            self._answer_error(*act)

    def _wave(self, samples: list, now: int) -> None:
        X, rows, n = self.X, self.rows, self.conf.max
        wave: list = []
        for it in samples:
            slot = self.slots.get(it.key) or self._new_slot(it.key, now)
            if slot is None:
                self.c["dropped_no_slot"] += 1
                self._warn.warning("slots", f"all {n} stream slots busy: dropped a frame of "
                                            f"stream {it.key!r}")
                continue
            self._policy(it, slot, now)
            X[len(wave), :it.x.shape[0]] = it.x
            rows[len(wave)] = slot.row
            wave.append((it, slot))
        if wave:
            self._flush(wave)

    def _new_slot(self, key, now: int) -> _Slot | None:
        if not self.free:
            lru_key, lru = min(self.slots.items(), key=lambda kv: kv[1].last_ns)
            if now - lru.last_ns < _EVICT_IDLE_NS:
                return None
            del self.slots[lru_key]
            self.free.append(lru.row)
            self.resets["evicted"] += 1
        slot = _Slot(self.free.pop(), key)
        self.batch.reset(slot.row)
        self._restart_vad(key, "evicted")  # a stream evicted before: its VAD restarts too
        self.slots[key] = slot
        return slot

    def _policy(self, it: Sample, slot: _Slot, now: int) -> None:
        conf = self.conf
        if it.seq is not None and slot.last_seq is not None:
            mod = getattr(it.origin, "seq_mod", None)
            want = slot.last_seq + 1
            if it.seq != (want % mod if mod else want):
                self.c["gaps"] += 1
                if conf.reset_on_gap:
                    self._reset(slot, "gap")
        if (conf.idle_reset_s and slot.last_ns
                and now - slot.last_ns > conf.idle_reset_s * 1e9):
            self._reset(slot, "idle")
        slot.last_seq = it.seq
        slot.last_ns = now

    def _reset(self, slot: _Slot, reason: str) -> None:
        self.stepper.reset(self.batch, slot.row, reason)
        self.resets[reason] += 1
        if reason not in ("nonfinite", "state_limit"):  # the stream's audio restarts
            self._restart_vad(slot.key, reason)

    def _restart_vad(self, key, reason: str) -> None:
        stage = self.stepper.vad_stage  # an audio source's [vad] (edgernn_serve.vad)
        if stage is not None:
            stage.reset(key, reason)

    def _step(self, m: int):
        """Step the first ``m`` staged streams in one call, counted and timed; returns
        ``(X, Y, rows, finite, blew_up, t1)``: per stream, whether its outputs are finite
        and whether its state blew up; ``t1`` when the step ended (ns)."""
        X, Y, rows = self.X[:m], self.Y[:m], self.rows[:m]
        t0 = time.perf_counter_ns()
        self.batch.step(X, Y, rows)
        t1 = time.perf_counter_ns()
        self.metrics.step_latency.observe((t1 - t0) * 1e-9)
        self.c["steps"] += m
        self.c["batches"] += 1
        return X, Y, rows, np.isfinite(Y).all(axis=1), self.batch.new_nonfinite(rows), t1

    def _flush(self, wave: list) -> None:
        X, Y, rows, finite, blew_up, t1 = self._step(len(wave))
        for i, (it, slot) in enumerate(wave):
            slot.n += 1
            if not finite[i] or blew_up[i]:
                self._nonfinite(it, slot, finite[i])
        answers, reports = self.stepper.results(wave, X, Y, finite, t1, self.handle.id)
        self._account(answers)
        self._deliver(self.sinks.emit_audio if self.stepper.audio else self.sinks.emit,
                      answers)
        if reports:
            self._deliver(self.sinks.emit, reports)

    def _nonfinite(self, it: Sample, slot: _Slot, output_finite: bool) -> None:
        """Reset a stream whose output or state went non-finite; count it and warn."""
        self._reset(slot, "nonfinite")
        self.c["nonfinite_resets"] += 1
        output, state, unit, reset = self.stepper.words
        self._warn.warning("nonfinite", f"stream {it.key!r}: non-finite "
                           f"{state if output_finite else output} at {unit} {slot.n}; "
                           f"{reset} reset")

    def _answer_error(self, it: Sample, err: str) -> None:
        self._warn.warning("bad", f"stream {it.key!r}: bad frame: {err}")
        self._emit([Result(it.key, it.seq, it.t, 0, None, self.handle.id, it.origin,
                           it.arrived_ns, time.perf_counter_ns(), err)])

    def _emit(self, results: list) -> None:
        self._account(results)
        self._deliver(self.sinks.emit, results)

    def _account(self, results: list) -> None:
        """Frame latency, deadline misses and answers of ``results``."""
        h, deadline = self.metrics.frame_latency, self.deadline_ns
        for r in results:
            lat = r.done_ns - r.arrived_ns
            h.observe(lat * 1e-9)
            if lat > deadline:
                self.c["deadline_misses"] += 1
            self.c["results_error" if r.error else "results_ok"] += 1

    def _deliver(self, emit, results: list) -> None:
        try:
            emit(results)
        except Exception:
            log.exception("a sink failed on %d results", len(results))
            self.c["internal_errors"] += 1

    def _check_states(self) -> None:
        self._next_state_check = time.monotonic() + 1.0
        limit = self.conf.state_limit
        if not limit:
            return
        slots = list(self.slots.items())
        peaks = self.batch.state_peaks([slot.row for _, slot in slots])
        for (key, slot), peak in zip(slots, peaks, strict=True):
            if peak > limit:
                self._reset(slot, "state_limit")
                self.c["nonfinite_resets"] += 1
                self._warn.warning("explode", f"stream {key!r}: state magnitude {peak:.3g} "
                                   f"exceeds streams.state_limit {limit:g}; stream reset")

    # ------------------------------------------------------------ accounting
    def accounting(self) -> dict:
        """Every accepted sample is answered (ok or error) or counted as dropped."""
        q = self.queue
        dropped = {"queue_overflow": q.dropped_samples, "no_slot": self.c["dropped_no_slot"]}
        answered = self.c["results_ok"] + self.c["results_error"]
        waiting = q.samples_waiting()
        return {"accepted": q.accepted, "answered": answered, "answered_ok": self.c["results_ok"],
                "answered_error": self.c["results_error"], "dropped": dropped,
                "in_queue": waiting,
                "unaccounted": q.accepted - answered - sum(dropped.values()) - waiting}
