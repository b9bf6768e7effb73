"""Synthetic noises for the denoiser corpus (16 kHz, float32, unit RMS).

Training kinds: white, pink, brown, mains hum with harmonics, babble of other
synthetic speakers, clicks and impulses, fan and engine band noise, slowly
varying rumble, music-like tones. The bench draws held-out noises with other
seeds, babble of held-out voices, and two kinds never seen in training
(``vacuum``: a whining high-passed motor; ``rain``: dense crackle).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

RATE = 16000


def _unit(x):
    x = x - x.mean()
    return (x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32)


def _colored(n, rng, exponent):
    """Noise with power spectrum ~ 1 / f^exponent."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    f[0] = f[1]
    return np.fft.irfft(spec / f ** (exponent / 2), n)


def white(n, rng):
    return _unit(rng.standard_normal(n))


def pink(n, rng):
    return _unit(_colored(n, rng, 1.0))


def brown(n, rng):
    return _unit(_colored(n, rng, 2.0))


def _slow(n, rng, rate_hz, depth):
    """A slowly varying positive envelope around 1."""
    k = max(int(n / RATE * rate_hz) + 2, 2)
    pts = 1.0 + depth * rng.uniform(-1, 1, k)
    return np.interp(np.arange(n), np.linspace(0, n - 1, k), pts)


def hum(n, rng):
    f0 = rng.choice([50.0, 60.0]) * rng.uniform(0.99, 1.01)
    t = np.arange(n) / RATE
    x = np.zeros(n)
    tilt = rng.uniform(0.3, 1.5)
    for h in range(1, int(min(40, 7900 / f0))):
        amp = h ** -tilt * (2.0 if h % 2 else rng.uniform(0.2, 1.0))
        x += amp * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:                       # buzz: a clipped hum
        x = np.clip(x, -0.3 * np.abs(x).max(), 0.3 * np.abs(x).max())
    return _unit(x + 0.02 * np.std(x) * rng.standard_normal(n))


def babble(n, rng, speech, offsets):
    """3-8 speakers from (int16 speech, offsets) talking at once."""
    x = np.zeros(n)
    for _ in range(rng.integers(3, 9)):
        pos = 0
        while pos < n:
            u = rng.integers(len(offsets) - 1)
            s = speech[offsets[u]:offsets[u + 1]].astype(np.float64)
            s = s * rng.uniform(0.5, 1.0) / (np.abs(s).max() + 1)
            m = min(len(s), n - pos)
            x[pos:pos + m] += s[:m]
            pos += m + rng.integers(0, RATE // 2)
    return _unit(x)


def clicks(n, rng):
    rate = rng.uniform(0.5, 25.0)
    x = np.zeros(n)
    k = rng.poisson(rate * n / RATE) + 1
    pos = rng.integers(0, n, k)
    x[pos] = rng.uniform(0.2, 1.0, k) * rng.choice([-1, 1], k)
    decay = np.exp(-np.arange(int(RATE * rng.uniform(0.001, 0.02))) / (RATE * 0.002))
    x = np.convolve(x, decay * rng.standard_normal(decay.size))[:n]
    lo = rng.uniform(100, 2000)
    x = sosfilt(butter(2, [lo, min(lo * rng.uniform(2, 8), 7900)], "bandpass", fs=RATE,
                       output="sos"), x)
    return _unit(x + 1e-3 * rng.standard_normal(n))


def fan(n, rng):
    fc = rng.uniform(150, 3000)
    q = rng.uniform(0.7, 4.0)
    lo, hi = fc / (1 + 1 / q), min(fc * (1 + 1 / q), 7900)
    x = sosfilt(butter(2, [lo, hi], "bandpass", fs=RATE, output="sos"), rng.standard_normal(n))
    x = x / np.std(x) + 0.3 * _colored(n, rng, 1.0) / np.std(_colored(n, rng, 1.0))
    blade = rng.uniform(40, 400)
    t = np.arange(n) / RATE
    x += rng.uniform(0, 1.0) * np.sin(2 * np.pi * blade * t) * np.std(x)
    return _unit(x * _slow(n, rng, 0.5, 0.2))


def engine(n, rng):
    rpm = _slow(n, rng, rng.uniform(0.1, 1.0), 0.3) * rng.uniform(20, 120)
    phase = 2 * np.pi * np.cumsum(rpm) / RATE
    x = np.zeros(n)
    for h in range(1, 25):
        x += rng.uniform(0, 1) / h * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    b, a = butter(2, rng.uniform(300, 2000), fs=RATE)
    x = x / np.std(x) + rng.uniform(0.3, 1.5) * _unit(lfilter(b, a, rng.standard_normal(n)))
    return _unit(x)


def rumble(n, rng):
    b, a = butter(2, rng.uniform(40, 200), fs=RATE)
    x = lfilter(b, a, rng.standard_normal(n))
    return _unit(x * _slow(n, rng, rng.uniform(0.1, 2.0), 0.8))


def music(n, rng):
    t_note = rng.uniform(0.1, 0.6)
    base = rng.uniform(80, 400)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    x = np.zeros(n)
    step = int(t_note * RATE)
    bright = rng.uniform(0.5, 3.0)
    for start in range(0, n, step):
        for _ in range(rng.integers(1, 4)):          # chords
            f = base * 2 ** (rng.choice(scale) / 12)
            m = min(int(step * rng.uniform(1, 3)), n - start)
            tt = np.arange(m) / RATE
            env = np.exp(-tt / rng.uniform(0.05, 0.8)) * (1 - np.exp(-tt / 0.005))
            tone = sum(np.sin(2 * np.pi * f * h * tt) / h ** bright
                       for h in range(1, int(min(12, 7900 / f)) + 1))
            x[start:start + m] += env * tone
    return _unit(x + 1e-3 * rng.standard_normal(n))


def vacuum(n, rng):
    x = sosfilt(butter(4, rng.uniform(500, 1500), "highpass", fs=RATE, output="sos"),
                rng.standard_normal(n))
    t = np.arange(n) / RATE
    whine = sum(np.sin(2 * np.pi * rng.uniform(800, 2500) * k * t) / k for k in (1, 2, 3))
    return _unit(x / np.std(x) + 0.5 * whine)


def rain(n, rng):
    x = np.zeros(n)
    k = rng.poisson(rng.uniform(200, 1500) * n / RATE)
    x[rng.integers(0, n, k)] = rng.exponential(1.0, k)
    x = np.convolve(x, np.exp(-np.arange(40) / 6.0) * rng.standard_normal(40))[:n]
    x = sosfilt(butter(2, 1000, "highpass", fs=RATE, output="sos"), x)
    return _unit(x + 0.2 * pink(n, rng))


TRAIN_KINDS = ["white", "pink", "brown", "hum", "babble", "clicks", "fan", "engine", "rumble",
               "music"]
HELDOUT_KINDS = TRAIN_KINDS + ["vacuum", "rain"]
_FUNCS = {k: globals()[k] for k in HELDOUT_KINDS}


def make(n, rng, speech, offsets, kinds=TRAIN_KINDS) -> tuple[np.ndarray, list]:
    """A mix of 1-3 noise kinds (unit RMS) and the kinds used."""
    chosen = list(rng.choice(kinds, size=rng.integers(1, 4), replace=False))
    x = np.zeros(n)
    for k in chosen:
        part = babble(n, rng, speech, offsets) if k == "babble" else _FUNCS[k](n, rng)
        x += rng.uniform(0.3, 1.0) * part
    return _unit(x), chosen
