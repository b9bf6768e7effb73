"""Live capture as a source (``kind = "audio"``): a sound card through sounddevice.

Like a WAV source it feeds the model frames of samples or spectra (``frame``,
``features``), or, with ``denoise = true``, 10 ms hops to
``edgernn.audio.Denoiser`` (see :mod:`edgernn_serve.denoise`). A capture stream
that fails (a USB microphone unplugged) is reopened every second; each
reopening is counted in ``edgernn_reconnects_total``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from edgernn_serve.audio import AudioFormat, HopCutter, device_name, import_sounddevice
from edgernn_serve.items import Sample
from edgernn_serve.schema import DEVICE, LATENCY, ConfigError
from edgernn_serve.sources.base import Source
from edgernn_serve.sources.wav import FrontEnd, frames_schema

log = logging.getLogger("edgernn.serve")


def capture_schema(t) -> dict:
    """Options of ``kind = "audio"`` (live capture through sounddevice)."""
    o = {"device": t.take("device", (str, int), None, *DEVICE),
         "sample_rate": t.take("sample_rate", int, None, lambda v: 1000 <= v <= 768000,
                               "1000 to 768000 Hz"),
         "input_channels": t.take("input_channels", int, 1, lambda v: 1 <= v <= 64,
                                  "1 to 64"),
         "latency": t.take("latency", (str, int, float), "low", *LATENCY)}
    return {**o, **frames_schema(t)}


class CaptureSource(Source):
    """Live capture from a sound card (see the module docstring).

    Parameters
    ----------
    submit : callable
    o : dict
        The validated ``[source]`` options.
    model_rate, hop : int
        The rate and hop the consumer wants: the denoiser's (10 ms), or the
        capture's own rate and ``source.frame`` for a model fed frames.
    fronts : list of FrontEnd or None
        Per-stream feature front ends (frames for a model); None: raw hops.
    """

    kind = "audio"

    @classmethod
    def build(cls, o: dict, ctx) -> CaptureSource:
        if ctx.front:  # 10 ms hops at the denoiser's rate
            return cls(ctx.submit, o, *ctx.front)
        n = 1 if o["channels"] == "mix" else o["input_channels"]
        fronts = [FrontEnd(o["features"], o["frame"], o["window"]) for _ in range(n)]
        return cls(ctx.submit, o, o["sample_rate"] or 16000, o["frame"], fronts)

    def __init__(self, submit, o: dict, model_rate: int, hop: int, fronts=None) -> None:
        super().__init__(submit)
        self.sd = import_sounddevice("source.kind = 'audio'")
        self.o, self.fronts = o, fronts
        self.rate = o["sample_rate"] or model_rate
        self.device_name = device_name(self.sd, o["device"], "input", o["input_channels"],
                                       self.rate, "source.device: cannot capture")
        self.cutter = HopCutter(o["input_channels"], o["channels"] == "mix", self.rate,
                                model_rate, hop)
        self.model_rate, self.hop = model_rate, hop
        self.xruns: Counter = Counter()  # overruns, underruns reported by PortAudio
        self._reconnects = 0
        self._stream = None
        self._k = 0

    @property
    def format(self) -> AudioFormat:
        return AudioFormat(self.rate, self.cutter.streams, self.model_rate, self.hop)

    def check_model(self, model) -> None:
        if self.fronts is not None and model.input_size != self.fronts[0].size:
            raise ConfigError(f"source: {self.o['features']} frames of {self.fronts[0].size} "
                              f"values do not fit the model's input_size {model.input_size}")

    def _callback(self, indata, frames, time_info, status) -> None:
        if self._stop.is_set():
            return
        now = time.perf_counter_ns()
        if status.input_overflow:
            self.xruns["overruns"] += 1
        if status.input_underflow:
            self.xruns["underruns"] += 1
        try:
            items = []
            for hops in self.cutter.feed(indata):
                t = int(self._k * self.hop * 1e6 / self.model_rate)
                for c, h in enumerate(hops):
                    x = h if self.fronts is None else self.fronts[c](h)
                    items.append(Sample(c, self._k, t, x, self, now))
                self._k += 1
            if items:
                self.submit(items)
        except Exception:  # never raise into PortAudio's thread
            log.exception("audio capture callback failed")
            self.bad["callback"] += 1

    def _open(self):
        o = self.o
        block = max(1, round(self.hop * self.rate / self.model_rate))
        s = self.sd.InputStream(samplerate=self.rate, blocksize=block, device=o["device"],
                                channels=o["input_channels"], dtype="float32",
                                latency=o["latency"], callback=self._callback)
        s.start()
        return s

    def _loop(self) -> None:
        opened_once = False
        while not self._stop.is_set():
            try:
                self._stream = self._open()
            except (self.sd.PortAudioError, ValueError) as e:
                log.warning("audio capture from %s failed to open (%s); retrying in 1 s",
                            self.device_name, e)
                self._stop.wait(1.0)
                continue
            if opened_once:
                self._reconnects += 1
            opened_once = True
            log.info("capturing %s at %d Hz, %d channel(s)", self.device_name, self.rate,
                     self.o["input_channels"])
            while not self._stop.wait(0.1) and self._stream.active:
                pass
            if not self._stop.is_set():
                log.warning("audio capture from %s stopped; reopening", self.device_name)
            self._close_stream()

    def _close_stream(self) -> None:
        s, self._stream = self._stream, None
        if s is not None:
            try:
                s.stop() if self._stop.is_set() else s.abort()
                s.close()
            except self.sd.PortAudioError as e:
                log.debug("closing the capture stream: %s", e)

    def close(self) -> None:
        """Stop capturing: the capture thread stops and closes the stream (PortAudio
        calls on one stream must not overlap), so no callback runs after this returns."""
        super().close()

    @property
    def reconnects(self) -> int:
        return self._reconnects

    @property
    def connected(self) -> bool:
        s = self._stream
        return s is not None and s.active
