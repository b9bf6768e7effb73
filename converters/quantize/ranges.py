"""Activation ranges for static int8: estimators and the affine parameters of a range.

Every estimator returns ``(lo, hi)`` with ``lo <= 0 <= hi`` (zero must be exactly
representable: a zero state and zero padding stay zero):

==========  ==================================================================
minmax      the smallest and largest value seen
percentile  the ``p``-th and ``(100 - p)``-th percentiles (``p`` = 99.9, 99.99)
mse         the minmax range shrunk by the factor that minimises the mean squared
            quantisation error of the values seen
bound       the range the producing activation cannot leave (e.g. [-1, 1] for h of
            tanh cells), when there is one
==========  ==================================================================

Which one a tensor gets is decided by measuring the layer's output error with
each (``converters.quantize.core``).
"""

from __future__ import annotations

import numpy as np

PERCENTILES = (99.99, 99.9)
MAX_SAMPLE = 1 << 20


def _sample(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32).ravel()
    if v.size > MAX_SAMPLE:
        v = v[np.random.default_rng(0).choice(v.size, MAX_SAMPLE, replace=False)]
    return v


def minmax(v) -> tuple[float, float]:
    v = np.asarray(v)
    return min(float(v.min()), 0.0), max(float(v.max()), 0.0)


def percentile(v, p: float) -> tuple[float, float]:
    lo, hi = np.percentile(np.asarray(v, np.float64).ravel(), [100 - p, p])
    return min(float(lo), 0.0), max(float(hi), 0.0)


def affine(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero_point) covering [lo, hi] on int8 [-128, 127], the finer of the
    symmetric (zp 0) and the asymmetric grid; (1.0, 0) for an all-zero range."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo <= 1e-30:
        return 1.0, 0
    sym = np.float32(max(-lo / 128, hi / 127))
    s = (hi - lo) / 255
    zp = int(np.clip(np.rint(-128 - lo / s), -128, 127))
    need = [hi / (127 - zp) if 127 - zp > 0 else 0.0, lo / (-128 - zp) if -128 - zp < 0 else 0.0]
    if hi > 0 and 127 - zp <= 0 or lo < 0 and -128 - zp >= 0:
        return float(sym), 0
    asym = np.float32(max(need))
    if asym < sym * (1 - 1e-6):
        while (127 - zp) * asym < hi or (-128 - zp) * asym > lo:  # float32 rounding
            asym = np.nextafter(asym, np.float32(np.inf))
        return float(asym), zp
    return float(sym), 0


def fake_quant(v: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """Quantise and dequantise ``v`` as the static input side of an int8 product does
    (:mod:`edgernn.ir.quant`)."""
    q = np.clip(np.rint(np.asarray(v, np.float32) / np.float32(scale)) + zp, -128, 127)
    return (q - zp) * np.float32(scale)


def mse(v, grid: int = 48) -> tuple[float, float]:
    """The minmax range scaled by the factor in (0, 1] with the least squared error."""
    s = _sample(v)
    lo, hi = minmax(s)
    if hi - lo <= 1e-30:
        return lo, hi
    best, arg = np.inf, 1.0
    for a in np.linspace(1.0, 0.1, grid):
        sc, zp = affine(lo * a, hi * a)
        e = float(np.mean((fake_quant(s, sc, zp) - s) ** 2))
        if e < best:
            best, arg = e, a
    return lo * arg, hi * arg


def candidates(v, bound: tuple[float, float] | None = None, methods=None) -> dict:
    """name -> (lo, hi) for the tensor values ``v`` (any shape)."""
    v = np.asarray(v, np.float32)
    out = {"minmax": minmax(v)}
    for p in PERCENTILES:
        out[f"percentile_{p:g}"] = percentile(v, p)
    out["mse"] = mse(v)
    if bound is not None:
        out["bound"] = (min(bound[0], 0.0), max(bound[1], 0.0))
    if methods is not None:
        out = {k: r for k, r in out.items() if k.split("_")[0] in methods}
    return out
