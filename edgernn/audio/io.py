"""File and device side of edgernn.audio: read/check, resample, denoise, write atomically.

soundfile, soxr and sounddevice (``pip install "edgernn[audio]"``) are imported
here, inside the functions that need them, never by ``import edgernn.audio``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EdgeRNNError


def _need(name: str):
    try:
        return __import__(name)
    except ImportError as exc:
        raise EdgeRNNError(f"this needs the {name} package (pip install 'edgernn[audio]'): "
                           f"{exc}") from None


def read_audio(path):
    """Read a sound file as float32[frames, channels] and its sample rate, checked.

    Raises EdgeRNNError for anything that is not a readable, non-empty sound file
    of finite samples with at least one channel.
    """
    sf = _need("soundfile")
    path = Path(path)
    if not path.exists():
        raise EdgeRNNError(f"{path}: no such file")
    if path.is_dir():
        raise EdgeRNNError(f"{path}: is a directory, expected a sound file")
    if path.stat().st_size == 0:
        raise EdgeRNNError(f"{path}: empty file, expected a sound file (WAV, FLAC, OGG, ...)")
    try:
        with sf.SoundFile(str(path)) as f:
            info = (f.format, f.subtype, f.channels, f.samplerate, f.frames)
            if f.channels < 1:
                raise EdgeRNNError(f"{path}: {f.channels} channels, expected at least 1")
            data = f.read(dtype="float32", always_2d=True)
    except EdgeRNNError:
        raise
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        msg = " ".join(str(exc).split())
        raise EdgeRNNError(f"{path}: not a sound file soundfile can read (WAV, FLAC, OGG, ... "
                           f"with a supported sample format): {msg}") from None
    fmt, subtype, channels, rate, frames = info
    if rate <= 0:
        raise EdgeRNNError(f"{path}: sample rate {rate}, expected a positive rate")
    if data.shape[0] == 0:
        raise EdgeRNNError(f"{path}: no samples ({fmt} {subtype}, {channels} channels), "
                           f"expected at least one frame")
    bad = ~np.isfinite(data)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise EdgeRNNError(f"{path}: {int(bad.sum())} NaN/inf samples (first at frame "
                           f"{first}), expected finite samples")
    return data, int(rate), {"format": fmt, "subtype": subtype}


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """float32[n] at rate_in -> float32[~n * rate_out / rate_in] (soxr, high quality)."""
    if rate_in == rate_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    soxr = _need("soxr")
    return soxr.resample(x.astype(np.float32), rate_in, rate_out, quality="HQ").astype(
        np.float32)


def denoise_array(denoiser, x: np.ndarray, rate: int, progress=None) -> np.ndarray:
    """Denoise float32[frames, channels] at ``rate``; same shape out, time-aligned.

    Each channel is resampled to the model's rate, run through the denoiser from
    a reset state, its latency removed (the input is followed by ``latency``
    zeros and the first ``latency`` outputs are dropped), and resampled back.
    ``progress(done_fraction)`` is called now and then.
    """
    frames, channels = x.shape
    out = np.empty_like(x, dtype=np.float32)
    chunk = denoiser.hop * 100
    for c in range(channels):
        y = resample(x[:, c], rate, denoiser.sample_rate)
        denoiser.reset()
        padded = np.concatenate([y, np.zeros(denoiser.latency, np.float32)])
        res = np.empty_like(padded)
        for i in range(0, len(padded), chunk):
            res[i:i + chunk] = denoiser.process(padded[i:i + chunk])
            if progress:
                progress((c + min(i + chunk, len(padded)) / len(padded)) / channels)
        z = resample(res[denoiser.latency:], denoiser.sample_rate, rate)
        n = min(len(z), frames)
        out[:n, c] = z[:n]
        out[n:, c] = 0.0
    return out


def write_audio_atomic(path, data: np.ndarray, rate: int, subtype: str | None = None) -> None:
    """Write a sound file via a temporary file in the same folder and a rename.

    The destination is untouched if anything fails; the temporary file is removed.
    """
    sf = _need("soundfile")
    path = Path(path)
    fmt = path.suffix.lstrip(".").upper()
    if fmt not in sf.available_formats():
        raise EdgeRNNError(f"{path}: unknown output format {path.suffix!r}, expected one of "
                           f"{', '.join('.' + f.lower() for f in sorted(sf.available_formats()))}")
    if subtype is not None and not sf.check_format(fmt, subtype):
        subtype = None
    if subtype is None or not subtype.startswith(("FLOAT", "DOUBLE")):
        data = np.clip(data, -1.0, 1.0)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        sf.write(tmp, data, rate, subtype=subtype, format=fmt)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, (RuntimeError, ValueError, TypeError)):
            raise EdgeRNNError(f"{path}: cannot write: {' '.join(str(exc).split())}") from None
        raise


def live(denoiser, seconds: float | None = None, device=None) -> None:
    """Denoise the default input device to the default output device until Ctrl-C."""
    try:
        import sounddevice as sd
    except ImportError:
        raise EdgeRNNError("--live needs the sounddevice package (pip install "
                           "'edgernn[audio]')") from None
    except OSError as exc:
        raise EdgeRNNError(f"--live needs sounddevice with the PortAudio library (Debian: "
                           f"apt-get install libportaudio2): {exc}") from None

    def callback(indata, outdata, frames, time_info, status):
        outdata[:, 0] = denoiser.process(indata[:, 0])

    try:
        with sd.Stream(samplerate=denoiser.sample_rate, blocksize=denoiser.hop, channels=1,
                       dtype="float32", callback=callback, device=device):
            print(f"denoising live at {denoiser.sample_rate} Hz, latency "
                  f"{1000 * denoiser.latency / denoiser.sample_rate:.1f} ms + device; "
                  f"Ctrl-C stops", file=sys.stderr)
            sd.sleep(int(1000 * seconds) if seconds else 2 ** 31 - 1)
    except sd.PortAudioError as exc:
        raise EdgeRNNError(f"--live: no usable audio device: {exc}") from None
