"""Real third-party models and real recorded speech for the tests (``../shared/models``,
the ALSA test recordings of Debian's alsa-utils, installed by .ci/run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers import need_module, require

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models"
ALSA = Path("/usr/share/sounds/alsa")


def model_file(*parts) -> Path:
    """A file under ``../shared/models`` (required)."""
    p = MODELS.joinpath(*parts)
    require(p.is_file(), f"the real model {p} (../shared/models beside the checkout)")
    return p


def speech_16k(seconds: float | None = None) -> np.ndarray:
    """Real recorded speech at 16 kHz, float32 mono: ALSA's voice recordings (all but
    Noise.wav), resampled from 48 kHz and joined, repeated to ``seconds``."""
    files = sorted(p for p in ALSA.glob("*.wav") if p.stem != "Noise") if ALSA.is_dir() else []
    require(bool(files), f"recorded speech in {ALSA} (Debian package alsa-utils)")
    sf = need_module("soundfile", "soundfile (the audio extra)")
    signal = need_module("scipy.signal", "scipy (the dev extra)")
    parts = []
    for p in files:
        x, rate = sf.read(p, dtype="float32", always_2d=True)
        parts.append(signal.resample_poly(x.mean(axis=1), 16000, rate).astype(np.float32))
    speech = np.concatenate(parts)
    if seconds is not None:
        n = int(seconds * 16000)
        speech = np.resize(speech, n) if n > speech.size else speech[:n]
    return speech


def dtln_magnitudes(speech: np.ndarray, blocks: int) -> tuple:
    """The DTLN authors' front end (block 512, shift 128, no window): per block the
    magnitude float32[257] and the phase of ``rfft(block)``."""
    buf = np.zeros(512, np.float32)
    mags, phases = [], []
    for k in range(blocks):
        buf = np.concatenate([buf[128:], speech[k * 128:(k + 1) * 128]])
        spec = np.fft.rfft(buf)
        mags.append(np.abs(spec).astype(np.float32))
        phases.append(np.angle(spec))
    return np.stack(mags), np.stack(phases)


def package_file(package: str, name: str, why: str) -> Path:
    """A model file shipped inside a pip package of the dev extra (required)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    require(spec is not None and spec.origin is not None, why)
    hits = sorted(Path(spec.origin).parent.rglob(name))
    require(bool(hits), f"{name} inside the package {package} ({why})")
    return hits[0]


def speech(rate: int) -> np.ndarray:
    """ALSA's recorded voices (all but Noise.wav) at ``rate`` (48000: as recorded)."""
    if rate == 16000:
        return speech_16k()
    files = sorted(p for p in ALSA.glob("*.wav") if p.stem != "Noise") if ALSA.is_dir() else []
    require(bool(files), f"recorded speech in {ALSA} (Debian package alsa-utils)")
    sf = need_module("soundfile", "soundfile (the audio extra)")
    parts = []
    for p in files:
        x, r = sf.read(p, dtype="float32", always_2d=True)
        require(r == rate, f"{p} recorded at {rate} Hz (it is {r} Hz)")
        parts.append(x.mean(axis=1))
    return np.concatenate(parts)


def log_power_frames(x: np.ndarray, win: np.ndarray, hop: int, nfft: int) -> np.ndarray:
    """NSNet2's features: ``log10(max(|rfft(win * frame, nfft)|**2, 1e-12))`` per hop."""
    n = len(win)
    frames = [x[i:i + n] for i in range(0, len(x) - n + 1, hop)]
    spec = np.fft.rfft(np.stack(frames) * win, nfft)
    return np.log10(np.maximum(np.abs(spec) ** 2, 1e-12)).astype(np.float32)


def silero_vad_file(folder: Path) -> Path:
    """``edgernn convert silero_vad.onnx --audio silero-vad`` into ``folder``."""
    from edgernn.cli import main

    path = package_file("silero_vad", "silero_vad.onnx", "silero-vad (the dev extra)")
    out = folder / "vad.ernn"
    assert main(["convert", str(path), "--audio", "silero-vad", "-o", str(out)]) == 0
    return out
