"""A teacher for the band gains: DTLN (Westhausen & Meyer 2020, MIT), converted by edgernn.

DTLN's published weights (``../shared/models/dtln/``, MIT licence; 16 kHz, 32 ms
blocks, 8 ms hop, two LSTM stages) denoise each training mixture; the band
gains that turn the mixture's band energies into those of DTLN's output,
``sqrt(E_dtln / E_mix)`` clipped to [0, 1], are the teacher's targets. They are
what a causal model can predict from the same past, unlike the ideal gains
computed from the clean speech, and through this front end they score +7.0 dB
SI-SDR / +0.40 PESQ-wb on the bench's real voices (the ideal gains +10.4 /
+1.34; DTLN itself +7.75 / +0.46). DTLN runs on training mixtures only: the
bench's recordings (ALSA's and KTuberling's voices) never reach it here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DTLN_DIR = ROOT.parent / "shared" / "models" / "dtln"


def dtln_model(cache: Path) -> Path:
    """``cache/dtln.ernn``, converted from the published ONNX stages if missing."""
    out = cache / "dtln.ernn"
    if not out.exists():
        cache.mkdir(exist_ok=True)
        src = [str(DTLN_DIR / "model_1.onnx"), str(DTLN_DIR / "model_2.onnx")]
        subprocess.run([str(Path(sys.executable).parent / "edgernn"), "convert", *src,
                        "--state", "input_5=tf_op_layer_stack_5", "--audio", "dtln",
                        "-o", str(out), "--no-progress"], check=True)
    return out


class Teacher:
    """``teacher(mix)`` -> DTLN's output, float32, time-aligned with ``mix`` (16 kHz)."""

    def __init__(self, cache: Path):
        from edgernn.audio import open_denoiser

        self.den = open_denoiser(dtln_model(cache))

    def __call__(self, mix: np.ndarray) -> np.ndarray:
        from edgernn.audio.io import denoise_array

        return denoise_array(self.den, mix.astype(np.float32)[:, None], 16000)[:, 0]


def band_gains(y, e_mix, cfg, analyze) -> np.ndarray:
    """Gains float32[T, B] taking the mixture's band energies to those of ``y``."""
    _, e_y = analyze(y.astype(np.float32), cfg)
    return np.clip(np.sqrt(e_y / (e_mix + 1e-12)), 0.0, 1.0).astype(np.float32)
