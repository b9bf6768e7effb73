"""An audio source's VAD stage: speech start and end events per stream, to the sinks.

With a ``[vad]`` table and a ``wav`` or ``audio`` source (``denoise = true``, or
``features = "samples"``) every stream's input samples (before denoising) also
go through its own :class:`edgernn.audio.VAD` (a model converted with
``edgernn convert silero_vad.onnx --audio silero-vad``), resampled with soxr
when their rate (the denoiser's, else the source's) is not the VAD model's. Each 32 ms
chunk's probability goes through :class:`SpeechEvents`, the streaming rules of
``silero_vad.VADIterator``, and each event becomes a JSON record for the JSON
sinks (the MQTT sink publishes them on its ``vad_topic``)::

    {"device": "mic-1", "stream": 0, "seq": 41, "n": 42, "t": 384000, "model": "denoiser",
     "event": "speech_start", "sample": 6144, "time_s": 0.384, "sample_rate": 16000}

``sample`` counts the stream's samples at the VAD model's rate from its first
one; ``t`` is the same instant in µs. With ``report_probabilities = true`` a
``{"event": "speech_probabilities", "sample": <first chunk's start>, "chunk": 512,
"probabilities": [...]}`` record follows every ``probabilities_every`` chunks.
When the daemon stops during speech, a last ``speech_end`` at the stream's last
sample carries ``"at_stop": true``.

When the scheduler restarts a stream's audio (a sequence gap with
``streams.reset_on_gap``, ``streams.idle_reset``, a control reset, a slot given
to the stream afresh after an eviction) its VAD restarts with it, as the
denoiser does: a stream in speech first gets a ``speech_end`` at its last
sample with ``"reset": "<reason>"`` (after its pending probabilities), then the
VAD model, the chunk buffer, the resampler and the rules start afresh, and
``sample`` goes on from the stream's position at the first hop after the
reset (its ``t``), so the hops lost in a gap do not shift later events. A reset
of the denoiser's model state alone (non-finite, ``state_limit``) leaves the
VAD alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import edgernn
from edgernn.errors import EdgeRNNError
from edgernn_serve.items import Result
from edgernn_serve.models import ModelLoadError

EVENTS = ("speech_start", "speech_end")


@dataclass(frozen=True)
class VadConf:
    """``[vad]``: the VAD model and the streaming rules (reloadable)."""

    model: Path
    threshold: float = 0.5
    min_silence_ms: float = 100.0
    pad_ms: float = 30.0
    report_probabilities: bool = False
    probabilities_every: int = 10
    math: str = "fast"


def vad_schema(t, math_check, math_expect) -> VadConf:
    """The validated ``[vad]`` table ``t`` (a :class:`edgernn_serve.schema.Table`)."""
    c = VadConf(
        model=t.path("model"),
        threshold=t.take("threshold", float, 0.5, lambda v: 0 < v < 1,
                         "a probability in (0, 1)"),
        min_silence_ms=t.take("min_silence_ms", float, 100.0, lambda v: 0 <= v <= 60000,
                              "0 to 60000 ms"),
        pad_ms=t.take("pad_ms", float, 30.0, lambda v: 0 <= v <= 10000, "0 to 10000 ms"),
        report_probabilities=t.take("report_probabilities", bool, False),
        probabilities_every=t.take("probabilities_every", int, 10,
                                   lambda v: 1 <= v <= 100000, "1 to 100000 chunks"),
        math=t.take("math", str, "fast", math_check, math_expect))
    t.done()
    return c


def _vad(model, math: str):
    """A new :class:`edgernn.audio.VAD` of ``model``, imported here: a daemon without a
    ``[vad]`` stage never imports ``edgernn.audio`` (nor numba, which its front end uses)."""
    from edgernn.audio import VAD

    return VAD(model, math=math)


@dataclass(frozen=True)
class VadModel:
    """A loaded, checked VAD model: ``conf``, the model, its file's sha256, and the
    rate of the audio it will be fed (``in_rate``)."""

    conf: VadConf
    model: object
    sha256: str
    in_rate: int


def load_vad(conf: VadConf, in_rate: int) -> VadModel:
    """Load and check ``conf.model`` for audio at ``in_rate`` Hz; a one-line error if not."""
    try:
        raw = Path(conf.model).read_bytes()
        model = edgernn.load(conf.model)
        probe = _vad(model, conf.math)
        probe.process(np.zeros(probe.hop, np.float32))
    except OSError as e:
        raise ModelLoadError(f"vad.model {conf.model}: cannot read it: {e.strerror or e}") \
            from None
    except EdgeRNNError as e:
        raise ModelLoadError(f"vad.model {conf.model}: not a VAD model: {e}") from None
    if probe.sample_rate != in_rate:
        from edgernn_serve.audio import import_soxr

        import_soxr(f"vad.model at {probe.sample_rate} Hz for audio at {in_rate} Hz")
    return VadModel(conf, model, hashlib.sha256(raw).hexdigest(), in_rate)


class SpeechEvents:
    """``silero_vad.VADIterator``'s rules, one chunk probability at a time.

    Speech starts at a chunk whose probability reaches ``threshold`` (reported
    ``pad`` samples before the chunk); it ends once the probability stayed below
    ``threshold - 0.15`` for ``min_silence`` samples (reported at the first such
    chunk's start plus ``pad``). ``start``: the stream's sample at which the rules
    begin (after a reset); no start is reported before it.
    """

    def __init__(self, rate: int, threshold: float, min_silence_ms: float,
                 pad_ms: float, start: int = 0) -> None:
        self.configure(rate, threshold, min_silence_ms, pad_ms)
        self.triggered, self.temp_end = False, 0
        self.start = self.current = start  # samples, counted from the stream's first one

    def configure(self, rate, threshold, min_silence_ms, pad_ms) -> None:
        self.threshold = threshold
        self.min_silence = rate * min_silence_ms / 1000
        self.pad = rate * pad_ms / 1000

    def push(self, p: float, n: int) -> tuple | None:
        """The chunk of ``n`` samples with probability ``p``: ("speech_start" or
        "speech_end", sample) or None."""
        self.current += n
        if p >= self.threshold and self.temp_end:
            self.temp_end = 0
        if p >= self.threshold and not self.triggered:
            self.triggered = True
            return "speech_start", int(max(self.start, self.current - self.pad - n))
        if p < self.threshold - 0.15 and self.triggered:
            if not self.temp_end:
                self.temp_end = self.current
            if self.current - self.temp_end < self.min_silence:
                return None
            end = self.temp_end + self.pad - n
            self.temp_end, self.triggered = 0, False
            return "speech_end", int(end)
        return None


class _Stream:
    """One stream's VAD, resampler, events and pending probabilities, from sample
    ``start`` of the stream (at the VAD's rate)."""

    def __init__(self, vm: VadModel, start: int = 0) -> None:
        c = vm.conf
        self.vad = _vad(vm.model, c.math)
        self.rate, self.hop = self.vad.sample_rate, self.vad.hop
        self.resample = None
        if vm.in_rate != self.rate:
            import soxr

            self.resample = soxr.ResampleStream(vm.in_rate, self.rate, 1, dtype="float32",
                                                quality="HQ")
        self.events = SpeechEvents(self.rate, c.threshold, c.min_silence_ms, c.pad_ms, start)
        self.fed = start  # the stream's position at the VAD's rate: samples given to it
        self.probs: list = []
        self.probs_start = 0
        self.last: Result | None = None
        self.restart: str | None = None  # the reason of a reset to apply at the next hop


class VadStage:
    """Per-stream VADs of one :class:`VadModel`; :meth:`feed` turns hops into event records."""

    def __init__(self, vm: VadModel) -> None:
        self.vm = vm
        self.streams: dict = {}
        self.counts = dict.fromkeys((*EVENTS, "speech_probabilities"), 0)
        self.chunks = 0

    def configure(self, vm: VadModel) -> None:
        """A reload: the new rules apply from the next chunk; another model file (or
        math) continues every stream's audio from the new model's initial state."""
        swap = (vm.sha256, vm.conf.math) != (self.vm.sha256, self.vm.conf.math)
        self.vm = vm
        c = vm.conf
        for key, s in list(self.streams.items()):
            if swap:
                vad = _vad(vm.model, c.math)
                if (vad.sample_rate, vad.hop) != (s.rate, s.hop):
                    del self.streams[key]  # another rate: this stream starts afresh
                    continue
                s.vad = vad
            s.events.configure(s.rate, c.threshold, c.min_silence_ms, c.pad_ms)

    def reset(self, key, reason: str) -> None:
        """Stream ``key``'s audio restarts (module docstring): its VAD restarts at its
        next hop."""
        s = self.streams.get(key)
        if s is not None:
            s.restart = reason

    def feed(self, key, x: np.ndarray, r: Result) -> list:
        """Stream ``key``'s next input hop ``x`` (its answer ``r``): the records it makes."""
        out = []
        s = self.streams.get(key)
        if s is not None and s.restart is not None:
            out = self._close(s, s.last, reset=s.restart)
            start = s.fed if r.t is None else round(r.t * s.rate / 1_000_000)
            s = self.streams[key] = _Stream(self.vm, start)
        elif s is None:
            s = self.streams[key] = _Stream(self.vm)
        s.last = r
        if s.resample is not None:
            x = s.resample.resample_chunk(x)
        c = self.vm.conf
        for p in s.vad.process(x):
            self.chunks += 1
            if c.report_probabilities:
                if not s.probs:
                    s.probs_start = s.fed
                s.probs.append(round(float(p), 5))
            s.fed += s.hop
            ev = s.events.push(float(p), s.hop)
            if ev is not None:
                out.append(self._record(s, r, ev[0], ev[1]))
            if len(s.probs) >= c.probabilities_every:
                out.append(self._probs(s, r))
        return out

    def _record(self, s: _Stream, r: Result, event: str, sample: int, **more) -> Result:
        self.counts[event] += 1
        extra = {"event": event, "sample": sample, "time_s": round(sample / s.rate, 6),
                 "sample_rate": s.rate, **more}
        return Result(r.key, r.seq, int(sample * 1_000_000 // s.rate), r.n, None, r.model_id,
                      r.origin, r.arrived_ns, r.done_ns, extra=extra)

    def _probs(self, s: _Stream, r: Result) -> Result:
        rec = self._record(s, r, "speech_probabilities", s.probs_start, chunk=s.hop,
                           probabilities=s.probs)
        s.probs = []
        return rec

    def _close(self, s: _Stream, r: Result, **why) -> list:
        """Stream ``s``'s pending probabilities, and its end if it is in speech."""
        out = []
        if s.probs:
            out.append(self._probs(s, r))
        if s.events.triggered:
            s.events.triggered = False
            out.append(self._record(s, r, "speech_end", s.fed, **why))
        return out

    def final(self) -> list:
        """At a stop: pending probabilities, and an end for every stream still in speech."""
        return [rec for s in self.streams.values() if s.last is not None
                for rec in self._close(s, s.last, at_stop=True)]


def configure_stage(stage: VadStage | None, vm: VadModel | None) -> VadStage | None:
    """A stepper's VAD stage after a (re)configuration with ``vm`` (None: no stage)."""
    if vm is None:
        return None
    if stage is None:
        return VadStage(vm)
    stage.configure(vm)
    return stage


def vad_samples(stepper):
    """Metrics of the VAD stage (``edgernn_vad_*``), for ``Metrics.add``."""
    stage = getattr(stepper, "vad_stage", None)
    if stage is None:
        return
    yield "vad_chunks", "counter", "VAD chunks (32 ms) stepped, all streams", None, stage.chunks
    for event, n in stage.counts.items():
        yield "vad_events", "counter", "VAD records sent to the sinks, by event", \
            {"event": event}, n
    for key, s in sorted(stage.streams.items(), key=lambda kv: str(kv[0])):
        yield "vad_speech", "gauge", "1 while the stream is in speech (VAD), else 0", \
            {"stream": key}, int(s.events.triggered)
