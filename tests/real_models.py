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
