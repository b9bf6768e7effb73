"""The bundled noisy sample for ``make demo`` and its clean reference for the tests.

    .venv/bin/python training/denoiser/make_demo_sample.py

Two sentences read by held-out voices (festival ked_diphone, flite rms; never
used in training), with a held-out noise mix (a vacuum-cleaner-like whine,
which training never saw, plus babble of held-out voices) at 5 dB SNR, 16 kHz
16-bit. Writes edgernn/data/denoise_demo.wav (noisy) and
tests/data/denoise_demo_clean.wav (the clean speech, same length).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import noise  # noqa: E402
import speech  # noqa: E402

RATE = 16000


def main():
    rng = np.random.default_rng(2026)
    texts = ["Noise reduction works one frame at a time.",
             "The network keeps the voice and drops the noise."]
    parts = [np.zeros(RATE // 2, np.float32)]
    for (engine, voice), text in zip([("festival", "ked_diphone"), ("flite", "rms")], texts,
                                     strict=True):
        x = speech.synth(engine, voice, text, rng)
        if not x.size:
            raise SystemExit(f"{engine} {voice} produced no speech: are the apt packages there?")
        parts += [x, np.zeros(RATE // 3, np.float32)]
    clean = np.concatenate(parts)
    clean *= 10 ** (-24 / 20) / np.sqrt(np.mean(clean[np.abs(clean) > 1e-3] ** 2))
    held = [v for v in speech.voice_split()[1] if v[0] == "espeak"][:6]
    babble_utts = [speech.synth(e, v, t, rng) for (e, v), t in
                   zip(held, speech.sentences()[100:106], strict=True)]
    bab = np.concatenate([u for u in babble_utts if u.size])
    offs = np.r_[0, np.cumsum([u.size for u in babble_utts if u.size])]
    n = clean.size
    nz = noise.vacuum(n, rng) + 0.7 * noise.babble(n, rng, (bab * 32000).astype(np.int16), offs)
    p = np.mean(clean[np.abs(clean) > 1e-3] ** 2)
    nz *= np.sqrt(p * 10 ** (-5 / 10) / np.mean(nz ** 2))
    noisy = clean + nz
    sf.write(ROOT / "edgernn" / "data" / "denoise_demo.wav", noisy, RATE, subtype="PCM_16")
    (ROOT / "tests" / "data").mkdir(exist_ok=True)
    sf.write(ROOT / "tests" / "data" / "denoise_demo_clean.wav", clean, RATE, subtype="PCM_16")
    print(f"wrote the demo sample: {n / RATE:.2f} s at 5 dB SNR")


if __name__ == "__main__":
    main()
