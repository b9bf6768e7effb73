"""Before/after spectrograms of a denoised signal (matplotlib, imported only here)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EdgeRNNError


def _spectrogram_db(x, rate, n_fft=512, hop=128):
    x = np.asarray(x, np.float64)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    w = np.hanning(n_fft)
    n = 1 + (len(x) - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n] * w
    p = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return 10 * np.log10(p.T + 1e-12), n * hop / rate


def before_after(before, after, rate: int, path, title: str = "") -> None:
    """Write a PNG with two spectrograms (same colour scale) one above the other."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgeRNNError("--plot needs matplotlib (pip install matplotlib)") from None
    sb, dur = _spectrogram_db(before, rate)
    sa, _ = _spectrogram_db(after, rate)
    top = max(sb.max(), sa.max())
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, constrained_layout=True)
    for ax, s, name in ((axes[0], sb, "before (input)"), (axes[1], sa, "after (denoised)")):
        im = ax.imshow(s, origin="lower", aspect="auto", cmap="magma", vmin=top - 90, vmax=top,
                       extent=(0, dur, 0, rate / 2000))
        ax.set_ylabel("kHz")
        ax.set_title(f"{title} {name}".strip())
    axes[1].set_xlabel("seconds")
    fig.colorbar(im, ax=axes, label="dB")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent or ".")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
