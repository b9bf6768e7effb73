"""Audio helpers shared by the audio sources and sinks: optional packages, devices, hops.

:class:`HopCutter` turns blocks of any length (a read of a WAV file, a capture
callback's buffer) into hops of one stream per channel (``channels = "each"``)
or of their mean (``"mix"``), resampled with soxr when the audio's rate is not
the model's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edgernn_serve.schema import ConfigError

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
