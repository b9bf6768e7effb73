"""Noisy/clean training examples and their features and targets (RNNoise's recipe).

One example is ``frames`` 10 ms frames: utterances with pauses, augmented
(formant/pitch shift by resampling, random second-order EQ, band-limiting,
synthetic room reverberation), mixed with `noise.make` at an SNR in
[-5, 20] dB (or no noise), at a random level, sometimes clipped or quantised.
Features come from `edgernn.audio.FrontEnd`, the runtime's own front end, so
training sees exactly what the device computes.

Targets: ideal band gains ``sqrt(E_speech / E_mix)`` clipped to [0, 1] (-1 =
don't care where both are silent), speech = the utterance convolved with the
first 50 ms of the room response (late reverberation counts as noise), and a
voice-activity label from the dry speech energy.
"""

from __future__ import annotations

import noise as noises
import numpy as np
import soxr
from scipy.signal import butter, fftconvolve, lfilter, sosfilt

from edgernn.audio import FrontEnd, FrontEndConfig

RATE = 16000
HOP = 160


def _speech_track(n, rng, speech, offsets, spread=6.0):
    """Utterances separated by random pauses, with a per-utterance formant/pitch shift.

    Each utterance's level is drawn from ``[-spread, 0]`` dB.
    """
    x = np.zeros(n, np.float64)
    pos = int(rng.integers(0, RATE))
    while pos < n:
        u = rng.integers(len(offsets) - 1)
        s = speech[offsets[u]:offsets[u + 1]].astype(np.float64) / 32000.0
        r = rng.uniform(0.85, 1.2)                      # vocal-tract length and pitch
        if abs(r - 1.0) > 0.02:
            s = soxr.resample(s, RATE, RATE / r, quality="MQ")
        s *= 10 ** (rng.uniform(-spread, 0) / 20)
        m = min(len(s), n - pos)
        x[pos:pos + m] += s[:m]
        pos += m + int(rng.exponential(0.4 * RATE))
    return x


def _random_eq(x, rng):
    """RNNoise's random second-order filter (coefficients in [-3/8, 3/8])."""
    a = np.r_[1.0, rng.uniform(-0.375, 0.375, 2)]
    b = np.r_[1.0, rng.uniform(-0.375, 0.375, 2)]
    return lfilter(b, a, x)


def _rir(rng):
    rt60 = rng.uniform(0.15, 0.9)
    n = int(rt60 * RATE)
    t = np.arange(n) / RATE
    h = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    h = sosfilt(butter(1, rng.uniform(2000, 7000), fs=RATE, output="sos"), h)
    delay = int(rng.uniform(0.001, 0.01) * RATE)
    h[:delay] = 0.0
    h[0] = rng.uniform(0.5, 2.0) * np.abs(h).max()          # direct path
    return h


def example(frames, rng, speech, offsets, kinds=noises.TRAIN_KINDS, snr_focus=0.0,
            babble=None, spread=6.0, p_reverb=0.4):
    """(mixture, target speech, noise kinds, snr_db or None) as float32 at 16 kHz.

    The SNR is uniform in [-5, 20] dB, or with probability ``snr_focus`` uniform
    in [0, 10] dB (more of the hard, common range; 0 draws as before). Babble
    noise is drawn from ``babble`` (speech, offsets), default the same speech;
    ``spread``: range of utterance levels in dB; ``p_reverb``: share of
    reverberant examples.
    """
    n = frames * HOP
    dry = _speech_track(n, rng, speech, offsets, spread)
    if rng.random() < 0.7:
        dry = _random_eq(dry, rng)
    target = dry
    wet = dry
    if rng.random() < p_reverb:
        h = _rir(rng)
        wet = fftconvolve(dry, h)[:n]
        target = fftconvolve(dry, h[:int(0.05 * RATE)])[:n]
    nz, kinds_used = noises.make(n, rng, *(babble or (speech, offsets)), kinds)
    if rng.random() < 0.5:
        nz = _random_eq(nz, rng)
    active = np.abs(dry) > 1e-4
    p_speech = np.mean(wet[active] ** 2) if active.any() else 1e-6
    if rng.random() < 0.08:
        snr, nz = None, np.zeros(n)
    else:
        snr = rng.uniform(-5, 20)
        if snr_focus > 0 and rng.random() < snr_focus:
            snr = rng.uniform(0, 10)
        nz = nz * np.sqrt(p_speech / (np.mean(nz ** 2) + 1e-12) * 10 ** (-snr / 10))
    mix = wet + nz
    if rng.random() < 0.3:                               # band-limited channel
        sos = butter(6, rng.uniform(3000, 7500), fs=RATE, output="sos")
        mix, target = sosfilt(sos, mix), sosfilt(sos, target)
    gain = 10 ** (rng.uniform(-40, -6) / 20) / (np.sqrt(np.mean(mix ** 2)) + 1e-9)
    mix, target = mix * gain, target * gain
    r = rng.random()
    if r < 0.08:
        c = np.abs(mix).max() * rng.uniform(0.2, 0.7)
        mix = np.clip(mix, -c, c)
    elif r < 0.16:
        q = 2.0 ** -rng.integers(7, 12)
        mix = np.round(mix / q) * q
    if np.abs(mix).max() > 1.0:
        s = 0.99 / np.abs(mix).max()
        mix, target = mix * s, target * s
    return mix.astype(np.float32), target.astype(np.float32), kinds_used, snr, dry


def analyze(x, cfg):
    """Front-end features float32[T, F] and band energies float64[T, B] of a signal."""
    fe = FrontEnd(cfg)
    t = len(x) // cfg.hop
    feats = np.empty((t, cfg.num_features), np.float32)
    energy = np.empty((t, cfg.num_bands), np.float64)
    for i in range(t):
        feats[i] = fe.analyze(x[i * cfg.hop:(i + 1) * cfg.hop])
        energy[i] = fe.energy
    return feats, energy


def targets(mix, target, dry, cfg, cutoff_hz=None, teacher=None):
    """Features, band gain targets (-1: none) and VAD labels of one example.

    ``cutoff_hz``: the speech holds nothing above this (a band-limited
    recording); bands reaching above it get no target. ``teacher``: also the
    teacher's gains (`teacher.band_gains` of ``teacher(mix)``, -1 where the
    ideal gains have no target), returned fourth.
    """
    feats, e_mix = analyze(mix, cfg)
    _, e_sp = analyze(target, cfg)
    g = np.sqrt(e_sp / (e_mix + 1e-12))
    g = np.clip(g, 0.0, 1.0)
    g[(e_mix < 1e-9) & (e_sp < 1e-9)] = -1.0             # silent band: no target
    if cutoff_hz is not None:
        top = np.r_[cfg.peaks[1:], cfg.peaks[-1]] * cfg.sample_rate / cfg.n_fft
        g[:, top > cutoff_hz] = -1.0
    _, e_dry = analyze(dry.astype(np.float32), cfg)
    level = 10 * np.log10(e_dry.sum(1) + 1e-12)
    vad = (level > level.max() - 40).astype(np.float32)
    if teacher is None:
        return feats, g.astype(np.float32), vad
    import teacher as teachers

    t = teachers.band_gains(teacher(mix), e_mix, cfg, analyze)
    t[g < 0] = -1.0
    return feats, g.astype(np.float32), vad, t


def batch_examples(n_examples, frames, seed, speech, offsets, cfg=None, snr_focus=0.0):
    """Arrays for training: features [N, T, F], gains [N, T, B], vad [N, T]."""
    cfg = cfg or FrontEndConfig()
    rng = np.random.default_rng(seed)
    X = np.empty((n_examples, frames, cfg.num_features), np.float32)
    G = np.empty((n_examples, frames, cfg.num_bands), np.float32)
    V = np.empty((n_examples, frames), np.float32)
    for i in range(n_examples):
        mix, target, _, _, dry = example(frames, rng, speech, offsets, snr_focus=snr_focus)
        X[i], G[i], V[i] = targets(mix, target, dry, cfg)
    return X, G, V


def mixed_examples(n_examples, frames, seed, corpora, cfg=None, snr_focus=0.0, spread=12.0,
                   p_reverb=0.5, teacher=None):
    """As `batch_examples`, each example's speech from one of several corpora.

    ``corpora``: list of (speech int16, offsets, cutoff_hz or None, weight). An
    example draws its corpus by weight, and its babble (if any) from another
    draw, so real and synthetic voices babble behind both. ``teacher``: also
    the teacher's gains [N, T, B] (see `targets`), returned fourth.
    """
    cfg = cfg or FrontEndConfig()
    rng = np.random.default_rng(seed)
    w = np.array([c[3] for c in corpora], np.float64)
    w /= w.sum()
    X = np.empty((n_examples, frames, cfg.num_features), np.float32)
    G = np.empty((n_examples, frames, cfg.num_bands), np.float32)
    V = np.empty((n_examples, frames), np.float32)
    T = np.empty_like(G) if teacher else None
    for i in range(n_examples):
        sp, off, cutoff, _ = corpora[rng.choice(len(corpora), p=w)]
        bsp, boff, _, _ = corpora[rng.choice(len(corpora), p=w)]
        mix, target, _, _, dry = example(frames, rng, sp, off, snr_focus=snr_focus,
                                         babble=(bsp, boff), spread=spread, p_reverb=p_reverb)
        got = targets(mix, target, dry, cfg, cutoff, teacher)
        X[i], G[i], V[i] = got[:3]
        if teacher:
            T[i] = got[3]
    return (X, G, V, T) if teacher else (X, G, V)
