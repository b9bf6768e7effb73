"""edgernn.audio front end against plain numpy written from the equations."""

import numpy as np
import pytest

from edgernn.audio import FrontEnd, FrontEndConfig, fft
from edgernn.audio.frontend import band_weights, vorbis_window


@pytest.mark.parametrize("n", [8, 64, 512, 1024])
def test_rfft_matches_numpy(rng, n):
    x = rng.standard_normal(n)
    tabs = fft.make_tables(n)
    re, im = np.zeros(n // 2 + 1), np.zeros(n // 2 + 1)
    zr, zi = np.zeros(n // 2), np.zeros(n // 2)
    fft.rfft(x, re, im, zr, zi, *tabs)
    ref = np.fft.rfft(x)
    np.testing.assert_allclose(re + 1j * im, ref, atol=1e-12 * n)
    y = np.zeros(n)
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    spec[0], spec[-1] = spec[0].real, spec[-1].real
    fft.irfft(spec.real.copy(), spec.imag.copy(), y, zr, zi, *tabs)
    np.testing.assert_allclose(y, np.fft.irfft(spec, n), atol=1e-14 * n)


def test_fft_rejects_sizes_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="power of two"):
        fft.make_tables(320)


def test_vorbis_window_is_power_complementary():
    w = vorbis_window(320)
    np.testing.assert_allclose(w[:160] ** 2 + w[160:] ** 2, 1.0, atol=1e-15)


def test_band_layout_sums_to_one_and_sparse_form_matches_dense():
    cfg = FrontEndConfig()
    assert cfg.peaks[0] == 0 and cfg.peaks[-1] == cfg.n_bins - 1
    assert np.all(np.diff(cfg.peaks) >= 2)
    np.testing.assert_allclose(cfg.weights.sum(0), 1.0, atol=1e-6)
    dense = np.zeros_like(cfg.weights, dtype=np.float64)
    k = np.arange(cfg.n_bins)
    dense[cfg.band_lo, k] += 1 - cfg.band_frac
    dense[cfg.band_lo + 1, k] += cfg.band_frac
    np.testing.assert_allclose(dense, band_weights(cfg.peaks, cfg.n_bins), atol=1e-6)


def _oracle(x, gains, cfg):
    """Features and output of the streaming front end, from the equations (float64)."""
    w = vorbis_window(cfg.win)
    W = band_weights(cfg.peaks, cfg.n_bins).astype(np.float64)
    hist = np.zeros(cfg.win)
    ola = np.zeros(cfg.win)
    prev = np.full(cfg.num_bands, np.log10(1e-9))
    feats, out = [], []
    for t in range(len(x) // cfg.hop):
        hist = np.r_[hist[cfg.hop:], x[t * cfg.hop:(t + 1) * cfg.hop]]
        spec = np.fft.rfft(hist * w, cfg.n_fft)
        p = np.abs(spec) ** 2
        lg = np.log10(W @ p + 1e-9)
        r = np.fft.irfft(p, cfg.n_fft)
        lags = np.arange(cfg.min_lag, cfg.max_lag + 1)
        voicing = 0.0 if r[0] <= 1e-12 else min(max(
            0.0, np.max(r[lags] / r[0] * cfg.win / (cfg.win - lags))), 1.0)
        feats.append(np.r_[lg, lg - prev, voicing])
        prev = lg
        g = W.T @ np.clip(gains[t], 0, 1)
        ola += np.fft.irfft(spec * g, cfg.n_fft)[:cfg.win] * w
        out.append(ola[:cfg.hop].copy())
        ola = np.r_[ola[cfg.hop:], np.zeros(cfg.hop)]
    return np.array(feats), np.concatenate(out)


def test_features_and_synthesis_match_numpy_oracle(rng):
    cfg = FrontEndConfig()
    t = np.arange(60 * cfg.hop) / cfg.sample_rate
    x = (0.3 * np.sin(2 * np.pi * 150 * t) * (t > 0.2) + 0.05 * rng.standard_normal(t.size))
    x = x.astype(np.float32)
    gains = rng.uniform(-0.2, 1.2, (60, cfg.num_bands)).astype(np.float32)
    fe = FrontEnd(cfg)
    feats, out = [], []
    for i in range(60):
        feats.append(fe.analyze(x[i * cfg.hop:(i + 1) * cfg.hop]).copy())
        out.append(fe.synthesize(gains[i]).copy())
    ref_f, ref_y = _oracle(x.astype(np.float64), gains, cfg)
    feats = np.array(feats)
    np.testing.assert_allclose(feats[:, :-1], ref_f[:, :-1], rtol=1e-6, atol=2e-6)
    np.testing.assert_allclose(feats[:, -1], ref_f[:, -1], atol=1e-5)
    assert feats[30, -1] > 0.6 > 0.4 > feats[5, -1]       # the 150 Hz tone is voiced, noise is not
    np.testing.assert_allclose(np.concatenate(out), ref_y, atol=1e-6)


def test_unity_gains_reconstruct_input_delayed_by_one_hop(rng):
    cfg = FrontEndConfig()
    x = rng.uniform(-1, 1, 50 * cfg.hop).astype(np.float32)
    fe = FrontEnd(cfg)
    one = np.ones(cfg.num_bands, np.float32)
    y = np.concatenate([fe.analyze(x[i * cfg.hop:(i + 1) * cfg.hop]) is not None and
                        fe.synthesize(one).copy() for i in range(50)])
    np.testing.assert_allclose(y[cfg.hop:], x[:-cfg.hop], atol=1e-6)
    assert np.abs(y[:cfg.hop]).max() < 1e-12
