"""A denoising source's stepping: hops through a denoiser per stream.

With ``[source] denoise = true`` (a WAV file or live capture) every stream
(channel) has its own denoiser running the served model
(``edgernn.audio.open_denoiser``: a band-gain :class:`edgernn.audio.Denoiser`, or
a :class:`edgernn.audio.Pipeline` of samples such as DTLN). The daemon's
:class:`Scheduler` steps them through a :class:`DenoiseStepper` (a
:class:`DenoiserBank` in place of the batched model): the same input queue,
inline stepping, stop and reload, frame-latency histogram and deadline (by
default 10 ms). Each hop's denoised audio goes to the audio sinks (``wav``,
``audio``); every ``denoise.report_every`` hops of a stream a
summary goes to the JSON sinks::

    {"device": "mic-1", "stream": 0, "seq": 99, "n": 100, "t": 990000, "model": "denoiser",
     "frames": 10, "vad": 0.93, "vad_max": 0.99, "gain_db": -4.1, "gain_min_db": -31.5,
     "in_dbfs": -30.2, "out_dbfs": -33.9, "latency_us": 85.2}

A reload installs the new settings between two hops, and every stream's audio
goes on without a gap: another model file or ``model.math`` of the same front
end is swapped into each Denoiser (``Denoiser.swap_model``: the front end and
delay line go on, the new model starts from its initial state); a model of
another front end at the same rate (DTLN's 8 ms hops <-> the bundled model's
10 ms ones) is *handed over*: from the first hop after the reload (input sample
``S``) each stream's samples go to a new denoiser of that model, from its
initial state, while the old one is fed ``old.latency`` samples of silence, so
that every sample it was given comes out, and its output over them is added to
the new one's first output. So the output is exactly::

    y = old(x[:S] ++ zeros(L_old))   (the first S + L_old samples)
      + new(x[S:])                   (from sample S on)

every input sample going through exactly one of the two; where the latencies
differ the hand-over either overlaps L_old - L_new samples of the two or leaves
the L_new - L_old samples of the new one's own warm-up. The source keeps
cutting the hops of the model it started with; the new denoiser takes them as
any block size. ``[denoise]`` (``attenuation_limit_db``, ``report_every``)
applies from the next hop; another ``streams.max`` rebuilds the bank with the
Denoisers (and hand-overs) of the streams kept (the least recently heard
beyond the new size are evicted). A non-finite or exploding model state resets
only the model's state; the audio goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edgernn.audio import open_denoiser
from edgernn.errors import EdgeRNNError
from edgernn_serve.items import Result
from edgernn_serve.metrics import Histogram
from edgernn_serve.scheduler import Scheduler, log
from edgernn_serve.vad import configure_stage

_FLOOR_DB = -100.0  # a gain of 0 is reported as -100 dB


class DenoiserBank:
    """``n`` stream slots, each a denoiser of ``model``; duck-types ``models.Batch``.

    ``hop`` is the block the source cuts (default: the model's hop); a slot's
    denoiser takes it whatever its own hop (``HopStream.process``). Each slot may
    also hold hand-overs: denoisers of an earlier front end being flushed (module
    docstring). After ``step``, ``stats[i]`` holds row ``rows[i]``'s (vad or nan,
    mean gain in dB, smallest gain in dB) of the frame, gains as applied
    (attenuation floor, clipped to 1).
    """

    def __init__(self, model, n: int, math: str, limit_db, frame_hist: Histogram,
                 hop: int | None = None) -> None:
        self.model, self.math, self.hist = model, math, frame_hist
        self.limit = limit_db
        self.d: list = [None] * n
        self.flush: list = [[] for _ in range(n)]  # per slot: [old denoiser, samples left]
        self.d[0] = self._make()  # checks the model, and warms the front end
        self.sample_rate = self.d[0].sample_rate
        self.hop = hop or self.d[0].hop
        self.stats = np.zeros((n, 3), np.float64)
        self._seen = np.zeros(n, np.int64)
        self._zeros = np.zeros(self.hop, np.float32)
        self.set_limit(limit_db)

    def _make(self):
        d = open_denoiser(self.model, math=self.math)
        d.attenuation_limit_db = self.limit
        return d

    def set_limit(self, limit_db) -> None:
        self.limit = limit_db
        self.floor = 0.0 if limit_db is None else 10.0 ** (-limit_db / 20.0)
        for d in self.d:
            if d is not None:
                d.attenuation_limit_db = limit_db

    def _row(self, row: int):
        d = self.d[row]
        if d is None:
            d = self.d[row] = self._make()
        return d

    def step(self, X: np.ndarray, out: np.ndarray, rows: np.ndarray) -> np.ndarray:
        for i, row in enumerate(rows):
            d = self._row(row)
            t0 = time.perf_counter_ns()
            out[i] = d.process(X[i])
            if self.flush[row]:
                self._flush(row, out[i])
            self.hist.observe((time.perf_counter_ns() - t0) * 1e-9)
            g = d.gains
            if g is None:  # no frame with gains: a sample pipeline, or no frame completed
                self.stats[i] = (np.nan, 0.0, 0.0)
                continue
            g = np.minimum(np.where(g >= self.floor, g, self.floor), 1.0)
            db = 20.0 * np.log10(np.maximum(g, 1e-5))
            self.stats[i] = (np.nan if d.vad is None else d.vad, db.mean(), db.min())
        return out

    def _flush(self, row: int, y: np.ndarray) -> None:
        """Add the hand-overs' output for silence to ``y``, the new denoiser's hop."""
        left = []
        for old, n in self.flush[row]:
            m = min(n, y.size)
            y[:m] += old.process(self._zeros[:m])
            if n > m:
                left.append([old, n - m])
        self.flush[row] = left

    def reset(self, row: int) -> None:
        """Slot ``row`` starts a new stream: audio buffers and model state from silence."""
        self._row(row).reset()
        self.flush[row] = []
        self._seen[row] = self.d[row].stream.nonfinite_steps

    def reset_model(self, row: int) -> None:
        """Only the model's state of slot ``row`` (the audio goes on)."""
        self._row(row).stream.reset()

    def new_nonfinite(self, rows: np.ndarray) -> np.ndarray:
        now = np.array([self._row(r).stream.nonfinite_steps for r in rows], np.int64)
        hit = now != self._seen[rows]
        self._seen[rows] = now
        return hit

    def state_peaks(self, rows: list) -> np.ndarray:
        """The largest absolute value in each slot's model state (each Denoiser has its
        own stream)."""
        return np.array([max((float(np.max(np.abs(a))) for a in
                              self._row(r).stream.get_state().arrays if a.size), default=0.0)
                         for r in rows], np.float32)

    def _continue(self, row: int, d, math: str) -> None:
        """Slot ``row`` continues the audio of ``d`` with this bank's model in ``math``:
        swapped into ``d`` when their front ends match, else handed over (module
        docstring). On an EdgeRNNError nothing changes."""
        new = open_denoiser(self.model, attenuation_limit_db=self.limit, math=math)
        if new.sample_rate != d.sample_rate:
            raise EdgeRNNError(f"the new model runs at {new.sample_rate} Hz, the audio at "
                               f"{d.sample_rate} Hz")
        if new.front_tag == d.front_tag:
            d.swap_model(self.model, math=math)
            d.attenuation_limit_db, new = self.limit, d
        else:
            self.flush[row].append([d, d.latency])
        self.d[row] = new
        self._seen[row] = new.stream.nonfinite_steps

    def swap_model(self, model) -> None:
        """Every stream continues its audio with ``model`` (checked by the caller)."""
        self.model = model
        for row, d in enumerate(self.d):
            if d is not None:
                self._continue(row, d, self.math)

    def adopt(self, row: int, d, flush: list, same_model: bool) -> None:
        """Slot ``row`` continues the audio of ``d`` (and its hand-overs ``flush``), a
        denoiser of a bank this one replaces.

        ``d`` keeps its model state when ``same_model`` (the same file) and its math
        is this bank's; otherwise it goes on with this bank's model and math from
        their initial state (swapped in, or handed over; on an EdgeRNNError nothing
        changes). Either way its audio goes on without a gap.
        """
        if not same_model or d.math != self.math:
            self._continue(row, d, self.math)
        else:
            d.attenuation_limit_db = self.limit
            self.d[row] = d
            self._seen[row] = d.stream.nonfinite_steps
        self.flush[row] = list(flush) + self.flush[row]


@dataclass
class _Acc:
    """One stream's figures since its last report."""

    frames: int = 0
    vad_sum: float = 0.0
    vad_max: float = 0.0
    has_vad: bool = False
    gain_db_sum: float = 0.0
    gain_min_db: float = 0.0
    ss_in: float = 0.0
    ss_out: float = 0.0
    samples: int = 0
    last: Result | None = None

    def report(self) -> dict:
        def dbfs(ss):
            return round(max(10.0 * np.log10(ss / self.samples + 1e-30), _FLOOR_DB), 2)

        d = {"frames": self.frames}
        if self.has_vad:
            d["vad"] = round(self.vad_sum / self.frames, 4)
            d["vad_max"] = round(self.vad_max, 4)
        d.update(gain_db=round(self.gain_db_sum / self.frames, 2),
                 gain_min_db=round(self.gain_min_db, 2),
                 in_dbfs=dbfs(self.ss_in), out_dbfs=dbfs(self.ss_out))
        return d


class DenoiseStepper:
    """The :class:`~edgernn_serve.scheduler.Scheduler`'s stepper for a denoising source:
    a :class:`DenoiserBank` (module docstring) of the source's ``hop``. Knobs: ``denoise``
    (a ``DenoiseConf``), ``vad`` (a ``VadModel`` or None)."""

    audio = True  # each hop's audio goes to the audio sinks; reports to the JSON sinks
    words = ("audio", "model state", "frame", "model state")

    def __init__(self, metrics, hop: int | None = None) -> None:
        self.hop = hop  # the source's hop (default: the model's)
        self.frame_seconds = Histogram()
        metrics.histograms["audio_frame_seconds"] = (
            "Seconds of compute per audio hop (the source's: 10 ms, DTLN's 8 ms) and "
            "stream: front end, model and synthesis, and a hand-over's flush",
            self.frame_seconds)
        self.acc: dict = {}
        self.vad: dict = {}  # the last frame's VAD per stream (a gauge)
        self.bank = self.denoise = self.vad_stage = None

    def bind(self, counters, bad) -> None:
        self.c, self.bad = counters, bad

    def new_batch(self, model, n: int, math: str, options: dict) -> tuple:
        bank = DenoiserBank(model, n, math, options["denoise"].attenuation_limit_db,
                            self.frame_seconds, self.hop)
        return bank, bank.hop, bank.hop

    def carry_over(self, bank, old, new) -> bool:
        if old.sha256 != new.sha256:
            try:
                bank.swap_model(new.model)
            except EdgeRNNError as e:  # validated before; if not, start the streams afresh
                log.error("the new model does not continue the audio (%s); streams restart", e)
                return False
        return True

    def carry_streams(self, old_bank, bank, rows: dict, same_model: bool) -> None:
        """A new bank (another math or size): the streams kept go on without a gap."""
        for key, (old_row, row) in rows.items():
            d = old_bank.d[old_row]
            if d is None:
                continue
            try:
                bank.adopt(row, d, old_bank.flush[old_row], same_model)
            except EdgeRNNError as e:  # validated before; if not, this stream restarts
                log.error("stream %r: the new model does not continue the audio (%s); "
                          "the stream restarts", key, e)

    def configure(self, bank, options: dict) -> None:
        self.bank, self.denoise = bank, options["denoise"]
        self.vad_stage = configure_stage(self.vad_stage, options.get("vad"))  # [vad]
        denoise = self.denoise
        if bank.limit != denoise.attenuation_limit_db:
            bank.set_limit(denoise.attenuation_limit_db)

    def check(self, x: np.ndarray, in_size: int, tokens: int) -> str | None:
        if x.shape != (in_size,):
            self.bad["size"] += 1
            return f"expected {in_size} samples, got {x.shape[0]}"
        if not np.isfinite(x).all():  # the Denoiser takes them as 0: the audio goes on
            self.bad["nonfinite_input"] += 1
            self.c["nonfinite_samples"] += int((~np.isfinite(x)).sum())
        return None

    def reset(self, bank, row: int, reason: str) -> None:
        if reason in ("nonfinite", "state_limit"):
            bank.reset_model(row)  # only the model's state: the audio goes on
        else:
            bank.reset(row)

    def results(self, wave: list, X, Y, finite, t1: int, model_id: str) -> tuple:
        """(each hop's denoised audio, the reports of streams that reached report_every)."""
        finite_in = np.isfinite(X).all(axis=1)
        stats = self.bank.stats  # row i: frame i's (vad, mean gain dB, min gain dB)
        out, reports, every = [], [], self.denoise.report_every
        for i, (it, slot) in enumerate(wave):
            if not finite[i]:
                Y[i] = 0.0
            r = Result(it.key, it.seq, it.t, slot.n, Y[i].copy(), model_id, it.origin,
                       it.arrived_ns, t1)
            out.append(r)
            a = self.acc.get(it.key)
            if a is None:
                a = self.acc[it.key] = _Acc()
            vad, gdb, gmin = stats[i]
            if vad == vad:  # not nan
                self.vad[it.key] = vad
                a.has_vad = True
                a.vad_sum += vad
                a.vad_max = max(a.vad_max, vad)
            a.gain_min_db = min(a.gain_min_db, gmin)
            a.gain_db_sum += gdb
            x = X[i] if finite_in[i] else np.where(np.isfinite(X[i]), X[i], 0.0)
            a.ss_in += float(np.dot(x, x))  # non-finite samples count as the 0 denoised
            a.ss_out += float(np.dot(Y[i], Y[i]))
            a.samples += X.shape[1]
            a.frames += 1
            a.last = r
            if a.frames >= every:
                reports.append(self._report(it.key))
            if self.vad_stage is not None:  # the input samples, non-finite ones as 0
                reports += self.vad_stage.feed(it.key, x, r)
        self.c["audio_frames"] += len(wave)
        return out, reports

    def _report(self, key) -> Result:
        a = self.acc.pop(key)
        r = a.last
        return Result(r.key, r.seq, r.t, r.n, None, r.model_id, r.origin, r.arrived_ns,
                      r.done_ns, extra=a.report())

    def final(self) -> list:
        """The streams' last partial intervals, when the scheduler stops."""
        last = [self._report(k) for k in list(self.acc)]
        return last + (self.vad_stage.final() if self.vad_stage is not None else [])


def DenoiseScheduler(handle, streams, sinks, metrics, math: str = "fast", *,  # noqa: N802
                     denoise, vad=None, hop: int | None = None) -> Scheduler:
    """The stepping loop of a denoising source: a Scheduler with a DenoiseStepper of hops
    of ``hop`` samples (default: the model's), and a VAD stage when ``vad`` is given."""
    return Scheduler(handle, streams, sinks, metrics, math,
                     stepper=DenoiseStepper(metrics, hop), denoise=denoise, vad=vad)


def audio_samples(scheduler: Scheduler, source, sinks):
    """Metrics of a denoising daemon (``edgernn_audio_*``), for ``Metrics.add``."""
    c = scheduler.c
    yield "audio_frames", "counter", "Audio hops denoised (all streams)", None, \
        c["audio_frames"]
    yield "audio_nonfinite_samples", "counter", "NaN or infinite input samples (taken as 0)", \
        None, c["nonfinite_samples"]
    parts = [("source", getattr(source, "xruns", {}))]
    parts += [(f"sink:{s.name}", s.xruns) for s in sinks.sinks if s.audio]
    for kind in ("overruns", "underruns"):
        for comp, xr in parts:
            yield (f"audio_{kind}", "counter", f"Audio {kind[:-1]}s: capture or playback "
                   f"buffers the device or the daemon could not serve in time",
                   {"component": comp}, xr.get(kind, 0))
    for key, vad in sorted(scheduler.stepper.vad.items(), key=lambda kv: str(kv[0])):
        yield "audio_vad", "gauge", "Voice-activity probability of the last frame", \
            {"stream": key}, vad
