"""Streaming STFT analysis/synthesis and band features (the denoiser's front end).

At the default 16 kHz: hop 160 samples (10 ms), window 320 samples (20 ms),
zero-padded to a 512-point real FFT (257 bins, 31.25 Hz apart).

Window pair: the Vorbis window ``w[n] = sin(pi/2 sin^2(pi (n + 1/2) / N))`` for
both analysis and synthesis. With hop ``N/2`` it is power-complementary,
``w[n]^2 + w[n + N/2]^2 = 1``, so analysis -> unity gains -> synthesis ->
overlap-add reconstructs the input exactly (zero padding changes nothing when
the gains are one: the inverse FFT returns the windowed frame in its first N
samples).

Latency: a frame can be synthesised only when its last sample has arrived, and
`process` must return as many samples as it got for any block size, so the
output is the input delayed by ``N - 1`` samples (319 samples = 19.94 ms at
16 kHz): ``N - H`` of overlap-add plus ``H - 1`` of hop buffering.

Bands: ``num_bands`` triangular bands whose peaks are equally spaced on the
ERB-rate scale (at least 2 bins apart), from 0 Hz to Nyquist. The triangles sum
to one at every bin, so band gains are linearly interpolated back to bins with
the same weights (as RNNoise does).

Features per frame (float32[2 B + 1]): ``log10(E_b + 1e-9)`` of the band
energies (B), their change since the previous frame (B), and a voicing value:
the largest normalised autocorrelation of the windowed frame at lags of a
pitch between 83 and 500 Hz (from the inverse FFT of the power spectrum; lags
above ``n_fft - N`` would wrap around).

The compiled code (:mod:`edgernn.audio.stft`, numba) is loaded from the native
image (:mod:`edgernn.kernels.native`) where it holds it, and called through the
engine's Python wrapper (:func:`edgernn.engine.entry.wrap`): no numba in the
process. Elsewhere (the image off, missing, stale or damaged; an input that is
not contiguous float32) numba's own functions run, with the same bits.
"""

from __future__ import annotations

import numpy as np

from .layout import ANALYZE, CTX, SYNTHESIZE, make_tables

LOG_EPS = 1e-9
_state: dict = {}


def vorbis_window(n: int) -> np.ndarray:
    """Power-complementary window of length n (even): w[k]^2 + w[k + n/2]^2 = 1."""
    k = np.arange(n)
    return np.sin(0.5 * np.pi * np.sin(np.pi * (k + 0.5) / n) ** 2)


def erb_rate(f):
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f, dtype=np.float64))


def band_peaks(num_bands: int, n_bins: int, sample_rate: int, min_gap: int = 2) -> np.ndarray:
    """Bin index of each band's peak: ERB-spaced, first at bin 0, last at Nyquist."""
    hz = np.linspace(0.0, sample_rate / 2, 20001)
    targets = np.linspace(0.0, erb_rate(sample_rate / 2), num_bands)
    peaks = np.rint(np.interp(targets, erb_rate(hz), hz) / (sample_rate / 2) * (n_bins - 1))
    peaks = peaks.astype(np.int64)
    for b in range(1, num_bands):               # enforce a minimum width from the bottom ...
        peaks[b] = max(peaks[b], peaks[b - 1] + min_gap)
    if peaks[-1] > n_bins - 1:
        raise ValueError(f"{num_bands} bands at least {min_gap} bins apart do not fit in "
                         f"{n_bins} bins")
    peaks[-1] = n_bins - 1                      # ... and end exactly at Nyquist
    return peaks


def band_weights(peaks: np.ndarray, n_bins: int) -> np.ndarray:
    """Triangular band weights float32[B, n_bins]; columns sum to 1."""
    w = np.zeros((len(peaks), n_bins))
    k = np.arange(n_bins)
    for b, p in enumerate(peaks):
        if b > 0:
            lo = peaks[b - 1]
            sel = (k >= lo) & (k <= p)
            w[b, sel] = (k[sel] - lo) / (p - lo)
        if b < len(peaks) - 1:
            hi = peaks[b + 1]
            sel = (k >= p) & (k <= hi)
            w[b, sel] = (hi - k[sel]) / (hi - p)
        w[b, p] = 1.0
    return w.astype(np.float32)


class FrontEndConfig:
    """Sizes of the front end; everything else is derived."""

    def __init__(self, sample_rate=16000, num_bands=32, win_ms=20, hop_ms=10, n_fft=None):
        self.sample_rate = int(sample_rate)
        self.hop = self.sample_rate * hop_ms // 1000
        self.win = self.sample_rate * win_ms // 1000
        if self.win != 2 * self.hop:
            raise ValueError("the window pair needs window = 2 x hop")
        # room for pitch lags up to half a window without wrap-around: 512 at 16 kHz
        self.n_fft = int(n_fft or 1 << int(np.ceil(np.log2(1.5 * self.win))))
        if self.n_fft < self.win:
            raise ValueError(f"n_fft {n_fft} is shorter than the window {self.win}")
        self.n_bins = self.n_fft // 2 + 1
        self.num_bands = int(num_bands)
        self.num_features = 2 * self.num_bands + 1
        self.latency = self.win - 1
        self.peaks = band_peaks(self.num_bands, self.n_bins, self.sample_rate)
        self.weights = band_weights(self.peaks, self.n_bins)
        self.window = vorbis_window(self.win)
        # the same triangles, sparse: bin k lies between band lo[k] and lo[k] + 1
        self.band_lo = np.minimum(np.searchsorted(self.peaks, np.arange(self.n_bins),
                                                  side="right") - 1, self.num_bands - 2)
        self.band_frac = self.weights[self.band_lo + 1, np.arange(self.n_bins)].astype(np.float64)
        self.min_lag = self.sample_rate // 500
        self.max_lag = min(self.sample_rate * 16 // 1000, self.n_fft - self.win)  # no wrap-around
        self.tag = f"edgernn.audio/v1 sr={self.sample_rate} bands={self.num_bands} " \
                   f"win={self.win} hop={self.hop} fft={self.n_fft}"


class FrontEnd:
    """Per-stream state and preallocated buffers of the front end.

    ``analyze(hop)`` (float32[H]) -> features float32[F] (``self.features``);
    ``synthesize(gains)`` (float32[B]) -> float32[H] of output (``self.out``).
    The two must alternate: synthesis uses the spectrum of the last analysis.
    ``self.energy`` holds the band energies of the last analysed frame.

    All state lives in one float64 workspace and all tables in one int64 and one
    float64 array, whose addresses a context array holds (:data:`CTX`), so each
    native call takes the context, its input and its output.
    """

    def __init__(self, cfg: FrontEndConfig):
        self.cfg = cfg
        rev, cos_t, sin_t = make_tables(cfg.n_fft)
        n, f, k, m, b = cfg.win, cfg.n_fft, cfg.n_bins, cfg.n_fft // 2, cfg.num_bands
        self._dims = np.array([n, f, k, m, b, cfg.min_lag, cfg.max_lag], np.int64)
        self._itab = np.concatenate([rev, cfg.band_lo]).astype(np.int64)
        self._ftab = np.concatenate([cos_t, sin_t, cfg.band_frac, cfg.window]).astype(np.float64)
        # workspace: frame[n] ola[n] buf[f] re,im,pre,pim[k] zr,zi[m] gb,energy,prev_log[b]
        self._ws = np.zeros(2 * n + f + 4 * k + 2 * m + 3 * b, np.float64)
        off = 2 * n + f + 4 * k + 2 * m
        self.energy = self._ws[off + b:off + 2 * b]
        self._prev_log = self._ws[off + 2 * b:]
        self.features = np.zeros(cfg.num_features, np.float32)
        self.out = np.zeros(cfg.hop, np.float32)
        self._ctx = np.zeros(CTX, np.int64)
        self._ctx[:CTX - 1] = [a.ctypes.data for a in (self._ws, self._itab, self._ftab,
                                                       self._dims)]
        self._floor = self._ctx[CTX - 1:].view(np.float64)
        self._addr = int(self._ctx.ctypes.data)
        self._analyze_c, self._synthesize_c = _entries() or (None, None)
        self.reset()

    def reset(self) -> None:
        self._ws[:] = 0.0
        self._prev_log[:] = np.log10(LOG_EPS)

    def analyze(self, hop: np.ndarray) -> np.ndarray:
        if self._analyze_c is None or self._analyze_c(self._addr, hop, self.features, 0):
            _jitted()._analyze(hop, self._ws, self._itab, self._ftab, self._dims,
                               self.features)
        return self.features

    def synthesize(self, gains: np.ndarray, floor: float = 0.0) -> np.ndarray:
        self._floor[0] = floor
        if self._synthesize_c is None or self._synthesize_c(self._addr, gains, self.out, 0):
            _jitted()._synthesize(gains, floor, self._ws, self._itab, self._ftab, self._dims,
                                  self.out)
        return self.out


def _jitted():
    """:mod:`edgernn.audio.stft`, numba's code (imported only when it must run)."""
    from . import stft

    return stft


def _entries():
    """``(analyze, synthesize)``: the C entries through the engine's Python wrapper, from
    the image, else compiled (or loaded) by numba and written into it; None where the
    image is off (numba's functions run)."""
    if "entries" not in _state:
        from ..engine import entry
        from ..kernels import native

        fns = None
        if native.enabled():
            addrs = [native.lookup(name) for name in (ANALYZE, SYNTHESIZE)]
            if None in addrs:
                addrs = [_jitted().compiled(name).address for name in (ANALYZE, SYNTHESIZE)]
            fns = tuple(entry.wrap(a, name)
                        for a, name in zip(addrs, (ANALYZE, SYNTHESIZE), strict=True))
            fns = None if None in fns else fns
        _state["entries"] = fns
    return _state["entries"]
