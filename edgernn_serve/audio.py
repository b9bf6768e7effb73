"""Audio as a source: live capture through sounddevice, and cutting audio into hops.

``[source] kind = "audio"`` captures from a sound card (PortAudio through
``sounddevice``, the ``audio`` extra). Like a WAV source it either feeds the
model frames of samples or spectra (``frame``, ``features``), or, with
``denoise = true``, 10 ms hops to ``edgernn.audio.Denoiser`` (see
:mod:`edgernn_serve.denoise`).

:class:`HopCutter` turns blocks of any length (a read of a WAV file, a capture
callback's buffer) into hops of one stream per channel (``channels = "each"``)
or of their mean (``"mix"``), resampled with soxr when the audio's rate is not
the model's. A capture stream that fails (a USB microphone unplugged) is
reopened every second; each reopening is counted in ``edgernn_reconnects_total``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from edgernn_serve.config import ConfigError
from edgernn_serve.items import Sample
from edgernn_serve.sources import Source

log = logging.getLogger("edgernn.serve")


def import_sounddevice(what: str):
    """The sounddevice module, or a ConfigError saying what to install."""
    try:
        import sounddevice
    except ImportError as e:
        raise ConfigError(f"{what} needs the sounddevice package (pip install "
                          f"'edgernn[audio]'): {e}") from None
    except OSError as e:  # the package is there, the PortAudio library is not
        raise ConfigError(f"{what} needs the PortAudio library for sounddevice (Debian: "
                          f"apt-get install libportaudio2): {e}") from None
    return sounddevice


def device_name(sd, device, kind: str, channels: int, rate: int, who: str) -> str:
    """The name of PortAudio's ``kind`` ("input" or "output") device ``device`` (None: the
    default one), once it is known to take ``channels`` float32 channels at ``rate``;
    else a ConfigError starting with ``who`` ("source.device: cannot capture", ...)."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        info = sd.query_devices(device, kind)
        check(device=device, channels=channels, samplerate=rate, dtype="float32")
    except (ValueError, sd.PortAudioError) as e:
        want = f"the default {kind}" if device is None else repr(device)
        raise ConfigError(f"{who} {channels} channel(s) at {rate} Hz "
                          f"{'from' if kind == 'input' else 'on'} {want}: {e}") from None
    return info["name"]


def import_soxr(what: str):
    try:
        import soxr
    except ImportError as e:
        raise ConfigError(f"{what} needs the soxr package to resample (pip install "
                          f"'edgernn[audio]'): {e}") from None
    return soxr


@dataclass(frozen=True)
class AudioFormat:
    """The audio of a denoising source, as its audio sinks see it.

    Attributes
    ----------
    rate : int
        The source's sample rate; audio sinks write and play at it.
    streams : int
        Channels of the denoised audio: stream c is channel c (1 with ``channels = "mix"``).
    model_rate : int
        The denoiser's rate; hops are resampled to it and the audio back.
    hop : int
        Samples per hop at ``model_rate`` (10 ms).
    """

    rate: int
    streams: int
    model_rate: int
    hop: int


class HopCutter:
    """Blocks float32[k, channels] at ``rate`` -> hops float32[hop] at ``out_rate`` per stream.

    Parameters
    ----------
    channels : int
    mix : bool
        One stream, the mean of the channels (else one stream per channel).
    rate, out_rate : int
        Sample rates in and out (soxr's streaming HQ resampler between them).
    hop : int
        Samples per hop at ``out_rate``.
    """

    def __init__(self, channels: int, mix: bool, rate: int, out_rate: int, hop: int) -> None:
        self.channels, self.mix, self.hop = channels, mix, hop
        self.streams = 1 if mix or channels == 1 else channels
        self.resample = None
        if rate != out_rate:
            soxr = import_soxr(f"audio at {rate} Hz for a model at {out_rate} Hz")
            self.resample = [soxr.ResampleStream(rate, out_rate, 1, dtype="float32",
                                                 quality="HQ") for _ in range(self.streams)]
        self.buf = np.zeros((self.streams, 0), np.float32)

    def feed(self, block: np.ndarray, last: bool = False) -> list:
        """The hops completed by ``block``: a list of lists (one hop per stream)."""
        if self.streams == 1:
            x = [block.mean(axis=1) if self.channels > 1 else block[:, 0]]
        else:
            x = [block[:, c] for c in range(self.channels)]
        if self.resample is not None:
            x = [r.resample_chunk(np.ascontiguousarray(v), last=last)
                 for r, v in zip(self.resample, x, strict=True)]
        n = min(len(v) for v in x)
        if self.buf.shape[1] == 0 and n % self.hop == 0 and self.resample is None:
            ready, self.buf = np.stack([v[:n] for v in x]), self.buf  # the usual case: no copy
        else:
            ready = np.concatenate([self.buf, np.stack([v[:n] for v in x])], axis=1)
            k = ready.shape[1] // self.hop * self.hop
            ready, self.buf = ready[:, :k], ready[:, k:].copy()
        return [[np.ascontiguousarray(ready[s, i:i + self.hop]) for s in range(self.streams)]
                for i in range(0, ready.shape[1], self.hop)]


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
