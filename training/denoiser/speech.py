"""Synthetic speech for the denoiser corpus: espeak-ng, flite and festival.

Every utterance is a sentence of English prose (Debian's license texts in
/usr/share/common-licenses) read by one engine/voice with random pitch, rate
and level, resampled to 16 kHz. Voices are split into a training set and a
held-out set that the bench (`bench/denoise.py`) mixes for evaluation; no
held-out voice is ever used in training.

apt deps: espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k
festvox-us-slt-hts festvox-ca-ona-hts festvox-italp16k festvox-itapc16k
festvox-czech-dita festvox-czech-machac festvox-suopuhe-lj festvox-suopuhe-mv festvox-ru
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 16000
ESPEAK_LANGS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "de", "fr-fr",
                "es", "it", "nl", "pl", "pt", "sv", "cs", "hu", "fi", "ro", "da", "id", "sk"]
FLITE_TRAIN = ["kal16", "awb", "slt", "kal"]
FLITE_HELDOUT = ["rms"]
FESTIVAL_TRAIN = ["kal_diphone", "cmu_us_slt_arctic_hts", "upc_ca_ona_hts", "lp_diphone",
                  "pc_diphone", "czech_dita", "czech_machac", "czech_ph", "hy_fi_mv_diphone",
                  "msu_ru_nsh_clunits"]
FESTIVAL_HELDOUT = ["ked_diphone", "suo_fi_lj_diphone"]


def sentences(min_words=4, max_words=28) -> list[str]:
    """English sentences from the license texts every Debian system has."""
    text = []
    for p in sorted(Path("/usr/share/common-licenses").glob("*")):
        if p.is_file():
            text.append(p.read_text(errors="ignore"))
    words = re.sub(r"[^A-Za-z0-9,.;:!?' ]+", " ", " ".join(text))
    out = []
    for s in re.split(r"(?<=[.;:!?])\s+", words):
        s = " ".join(s.split())
        if min_words <= len(s.split()) <= max_words and sum(c.isalpha() for c in s) > 15:
            out.append(s)
    return sorted(set(out))


def espeak_variants() -> list[str]:
    res = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True,
                         check=True)
    names = [line.split()[4].split("/")[-1] for line in res.stdout.splitlines()[1:]
             if len(line.split()) >= 5]
    return sorted(set(names))


def voice_split():
    """(train, heldout) lists of (engine, voice) pairs; espeak variants split 4:1."""
    variants = espeak_variants()
    held_var = set(variants[2::5])
    train = [("flite", v) for v in FLITE_TRAIN] + [("festival", v) for v in FESTIVAL_TRAIN]
    held = [("flite", v) for v in FLITE_HELDOUT] + [("festival", v) for v in FESTIVAL_HELDOUT]
    train += [("espeak", v) for v in variants if v not in held_var]
    held += [("espeak", v) for v in sorted(held_var)]
    return train, held


def _read(path) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != RATE:
        x = soxr.resample(x, sr, RATE, quality="HQ").astype(np.float32)
    return x


def synth(engine: str, voice: str, text: str, rng: np.random.Generator) -> np.ndarray:
    """One utterance as float32 at 16 kHz (peak-normalised), or an empty array on failure."""
    fd, wav = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    try:
        if engine == "espeak":
            lang = ESPEAK_LANGS[rng.integers(len(ESPEAK_LANGS))]
            cmd = ["espeak-ng", "-v", f"{lang}+{voice}", "-p", str(rng.integers(5, 95)),
                   "-s", str(rng.integers(110, 240)), "-g", str(rng.integers(0, 6)),
                   "-w", wav, text]
            subprocess.run(cmd, capture_output=True, timeout=60, check=True)
        elif engine == "flite":
            cmd = ["flite", "-voice", voice,
                   "--setf", f"duration_stretch={rng.uniform(0.75, 1.35):.2f}",
                   "--setf", f"int_f0_target_mean={rng.uniform(70, 240):.0f}",
                   "--setf", f"int_f0_target_stddev={rng.uniform(5, 45):.0f}",
                   "-t", text, wav]
            subprocess.run(cmd, capture_output=True, timeout=60, check=True)
        else:
            stretch = rng.uniform(0.8, 1.3)
            scm = f"(voice_{voice}) (Parameter.set 'Duration_Stretch {stretch:.2f})"
            subprocess.run(["text2wave", "-eval", scm, "-o", wav], input=text.encode(),
                           capture_output=True, timeout=120, check=True)
        x = _read(wav)
    except (subprocess.SubprocessError, OSError, RuntimeError):
        return np.zeros(0, np.float32)
    finally:
        os.unlink(wav)
    return trim_active(x, RATE // 4)  # drop failures (silence, garbage)


def trim_active(x: np.ndarray, min_samples: int) -> np.ndarray:
    """``x`` (16 kHz) trimmed to its active part (where its 10 ms envelope passes 2% of
    its peak, +-50 ms), peak-normalised; empty when that part is shorter than
    ``min_samples``."""
    env = np.convolve(np.abs(x), np.ones(160) / 160, mode="same")
    active = np.flatnonzero(env > 0.02 * (env.max() + 1e-9))
    if len(active) < min_samples:
        return np.zeros(0, np.float32)
    x = x[max(active[0] - 800, 0):active[-1] + 800]
    return (x / (np.abs(x).max() + 1e-9)).astype(np.float32)


def build(voices, n_utts: int, seed: int, texts: list[str]):
    """n_utts utterances cycling over voices; returns (int16 samples, offsets, voice ids)."""
    rng = np.random.default_rng(seed)
    chunks, offsets, ids = [], [0], []
    order = rng.permutation(len(texts))
    for i in range(n_utts):
        v = i % len(voices)
        engine, voice = voices[v]
        x = synth(engine, voice, texts[order[i % len(texts)]], rng)
        if not x.size:
            continue
        chunks.append(np.round(x * 32000).astype(np.int16))
        offsets.append(offsets[-1] + x.size)
        ids.append(v)
    return np.concatenate(chunks), np.array(offsets, np.int64), np.array(ids, np.int64)
