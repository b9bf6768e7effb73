"""WAV files as a source: frames of samples, or of a short-time spectrum, per hop.

:class:`WavReader` reads RIFF/WAVE files block by block (never the whole file):
PCM 8/16/24/32-bit and IEEE float 32/64, plain or WAVE_FORMAT_EXTENSIBLE, any
channel count up to 64. Samples are float32 in [-1, 1).

:class:`WavSource` cuts the signal into hops of ``frame`` samples and feeds the
model one vector per hop (``source.features``):

- ``samples``: the hop itself, ``float32[frame]``;
- ``stft``: ``|rfft(hann(window) * last window samples)|``, ``float32[window // 2 + 1]``;
- ``log_power``: ``ln(|rfft(...)|**2 + 1e-10)``, same size.

``channels = "mix"`` averages the channels into stream 0; ``"each"`` makes
channel ``c`` stream ``c``. With ``realtime = true`` hops are paced at the
file's sample rate (a live capture); otherwise they go as fast as the stepping
loop takes them (the source waits while the input queue is half full, so a
file is never cut by the queue's drop policy). The end of the file ends the
daemon after every frame is answered.

With ``denoise = true`` the hops are 10 ms of samples at the denoiser's rate
(the file is resampled when its rate differs) and go through
``edgernn.audio.Denoiser`` (:mod:`edgernn_serve.denoise`).
"""

from __future__ import annotations

import struct
import time

import numpy as np

from edgernn_serve.audio import AudioFormat, HopCutter
from edgernn_serve.items import Sample
from edgernn_serve.schema import ConfigError, one_of
from edgernn_serve.sources.base import Source

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
FEATURES = ("samples", "stft", "log_power")


def frames_schema(t) -> dict:
    """What an audio source (``wav``, ``audio``) feeds: model frames or denoiser hops."""
    o = {"denoise": t.take("denoise", bool, False)}
    if o["denoise"]:
        for key in ("frame", "features", "window"):
            if key in t.data:
                raise t.fail(key, "not used with denoise = true (the denoiser takes 10 ms "
                                  "hops of samples)")
    else:
        o["frame"] = t.take("frame", int, ..., lambda v: 1 <= v <= 1 << 16, "1 to 65536")
        check, expect = one_of(FEATURES)
        o["features"] = t.take("features", str, "samples", check, expect)
        o["window"] = t.take("window", int, 2 * o["frame"], lambda v: v >= o["frame"]
                             and v <= 1 << 16, f"{o['frame']} (source.frame) to 65536")
    check, expect = one_of(("mix", "each"))
    o["channels"] = t.take("channels", str, "mix", check, expect)
    return o


def wav_schema(t) -> dict:
    return {"path": t.path("path"), "realtime": t.take("realtime", bool, False),
            **frames_schema(t)}


class WavError(ConfigError):
    """A WAV file is unreadable or in an unsupported format."""


class WavReader:
    """Block reader of a RIFF/WAVE file.

    Attributes
    ----------
    sample_rate : int
    channels : int
    frames : int or None
        Sample frames in the data chunk (None when the header leaves it open).
    """

    def __init__(self, path) -> None:
        self.path = str(path)
        try:
            self.fh = open(path, "rb")  # noqa: SIM115 (held open while reading)
        except OSError as e:
            raise WavError(f"{path}: cannot open the WAV file: {e.strerror}") from None
        try:
            self._header()
        except Exception:
            self.fh.close()
            raise

    def _fail(self, msg: str) -> WavError:
        return WavError(f"{self.path}: {msg}")

    def _header(self) -> None:
        head = self.fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise self._fail(f"not a RIFF/WAVE file (starts with {head[:12]!r})")
        fmt = None
        while True:
            ch = self.fh.read(8)
            if len(ch) < 8:
                raise self._fail("no 'data' chunk")
            cid, size = ch[:4], struct.unpack("<I", ch[4:])[0]
            if cid == b"fmt ":
                if not 16 <= size <= 1024:
                    raise self._fail(f"'fmt ' chunk of {size} bytes (expected 16 to 40)")
                fmt = self.fh.read(size + (size & 1))
            elif cid == b"data":
                if fmt is None:
                    raise self._fail("'data' chunk before the 'fmt ' chunk")
                self._format(fmt)
                self.remaining = None if size == 0xFFFFFFFF else size // self.block
                self.frames = self.remaining
                return
            else:
                self.fh.seek(size + (size & 1), 1)

    def _format(self, fmt: bytes) -> None:
        tag, ch, rate, _, block, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag == _EXTENSIBLE and len(fmt) >= 26:
            tag = struct.unpack("<H", fmt[24:26])[0]
        kinds = {(_PCM, 8): "u1", (_PCM, 16): "<i2", (_PCM, 24): "i3", (_PCM, 32): "<i4",
                 (_FLOAT, 32): "<f4", (_FLOAT, 64): "<f8"}
        if (tag, bits) not in kinds:
            raise self._fail(f"unsupported sample format (tag {tag}, {bits} bits); expected "
                             f"PCM 8/16/24/32 or float 32/64")
        if not 1 <= ch <= 64 or rate < 1 or block != ch * bits // 8:
            raise self._fail(f"inconsistent format: {ch} channels, {rate} Hz, block {block}")
        self.kind, self.channels, self.sample_rate, self.block = kinds[tag, bits], ch, rate, block

    def read(self, n: int) -> np.ndarray:
        """Up to ``n`` sample frames as float32[k, channels]; k == 0 at the end."""
        if self.remaining is not None:
            n = min(n, self.remaining)
        raw = self.fh.read(n * self.block)
        k = len(raw) // self.block
        raw = raw[:k * self.block]
        if self.remaining is not None:
            self.remaining -= k
        if self.kind == "u1":
            x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
        elif self.kind == "i3":
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
            v = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8)
                 | (b[:, 2].astype(np.int8).astype(np.int32) << 16))
            x = v.astype(np.float32) / float(1 << 23)
        elif self.kind in ("<i2", "<i4"):
            v = np.frombuffer(raw, self.kind)
            x = v.astype(np.float32) / float(1 << (8 * v.itemsize - 1))
        else:
            x = np.frombuffer(raw, self.kind).astype(np.float32)
        return x.reshape(k, self.channels)

    def close(self) -> None:
        self.fh.close()


class FrontEnd:
    """Per-stream feature front end: hops of ``frame`` samples -> model inputs."""

    def __init__(self, features: str, frame: int, window: int) -> None:
        self.features, self.frame, self.window = features, frame, window
        self.size = frame if features == "samples" else window // 2 + 1
        n = np.arange(window)
        self.hann = (0.5 - 0.5 * np.cos(2 * np.pi * n / window)).astype(np.float32)  # periodic
        self.buf = np.zeros(window, np.float32)

    def __call__(self, hop: np.ndarray) -> np.ndarray:
        if self.features == "samples":
            return hop.astype(np.float32, copy=True)
        self.buf[:-self.frame] = self.buf[self.frame:]
        self.buf[-self.frame:] = hop
        mag = np.abs(np.fft.rfft(self.buf * self.hann))
        if self.features == "stft":
            return mag.astype(np.float32)
        return np.log(mag * mag + 1e-10).astype(np.float32)


class WavSource(Source):
    """Hops of a WAV file as frames (see the module docstring).

    Parameters
    ----------
    submit : callable
    o : dict
        The validated ``[source]`` options.
    backlog : callable
        Items waiting in the input queue (the source waits while it is half full).
    capacity : int
        The input queue's bound.
    model_rate, hop : int, optional
        With ``denoise = true``: the denoiser's rate and hop; the file is resampled
        to that rate (soxr) when its own differs, and hops of raw samples are fed.
    """

    kind = "wav"
    restartable = False  # a failed read ends the file: the daemon drains and exits

    @classmethod
    def build(cls, o: dict, ctx) -> WavSource:
        rate, hop = ctx.front if ctx.front else (None, None)
        return cls(ctx.submit, o, ctx.backlog, ctx.queue, rate, hop)

    def __init__(self, submit, o: dict, backlog, capacity: int, model_rate=None,
                 hop=None) -> None:
        super().__init__(submit)
        self.o, self.backlog, self.capacity = o, backlog, capacity
        self.reader = WavReader(o["path"])
        r = self.reader
        self.rate = r.sample_rate
        self.model_rate = model_rate or r.sample_rate
        self.hop = hop or o["frame"]
        try:
            self.cutter = HopCutter(r.channels, o["channels"] == "mix", r.sample_rate,
                                    self.model_rate, self.hop)
        except Exception:
            r.close()
            raise
        self.fronts = None if o.get("denoise") else [
            FrontEnd(o["features"], o["frame"], o["window"]) for _ in range(self.cutter.streams)]

    @property
    def format(self):
        return AudioFormat(self.rate, self.cutter.streams, self.model_rate, self.hop)

    def check_model(self, model) -> None:
        if self.fronts is None:
            return
        want = self.fronts[0].size
        if model.input_size != want:
            what = ("source.frame" if self.o["features"] == "samples"
                    else "source.window // 2 + 1")
            raise ConfigError(f"source: {self.o['features']} frames of {what} = {want} values "
                              f"do not fit the model's input_size {model.input_size}")

    def close(self) -> None:
        super().close()
        if self._thread is None:  # never started (--check, a failed start)
            self.reader.close()

    def _loop(self) -> None:
        r, hop, rate = self.reader, self.hop, self.model_rate
        chunk = max(1, round(hop * r.sample_rate / rate))
        start, k = time.perf_counter(), 0
        try:
            while not self._stop.is_set():
                block = r.read(chunk)
                last = block.shape[0] < chunk  # a last partial hop is dropped (a full one only)
                for hops in self.cutter.feed(block, last=last):
                    if self.o["realtime"]:
                        due = start + k * hop / rate
                        delay = due - time.perf_counter()
                        if delay > 0 and self._stop.wait(delay):
                            return
                    else:
                        while self.backlog() > self.capacity // 2 and not self._stop.wait(0.001):
                            pass
                    if self._stop.is_set():
                        return
                    now = time.perf_counter_ns()
                    t = int(k * hop * 1e6 / rate)
                    fronts = self.fronts
                    self.submit([Sample(c, k, t, h if fronts is None else fronts[c](h), self, now)
                                 for c, h in enumerate(hops)])
                    k += 1
                if last:
                    self.finished.set()
                    return
        finally:
            r.close()
