"""The cached corpora and training mixtures of `train.py` (in ``.cache/`` beside it)."""

from __future__ import annotations

import time
from pathlib import Path

import data
import numpy as np
import real_speech
import speech
from teacher import Teacher

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
MIX = "synth:0.3,fotaq:0.5,hedgewars:0.2"     # speech sources and their weights (--mix)
FRAMES = 500


def speech_corpus(split: str, n_utts: int, seed: int):
    """Cached (int16 speech, offsets) for the 'train' or 'heldout' voices."""
    path = CACHE / f"speech_{split}_{n_utts}_{seed}.npz"
    if path.exists():
        z = np.load(path)
        return z["speech"], z["offsets"]
    CACHE.mkdir(exist_ok=True)
    train, held = speech.voice_split()
    voices = train if split == "train" else held
    t0 = time.time()
    s, o, ids = speech.build(voices, n_utts, seed, speech.sentences())
    np.savez(path, speech=s, offsets=o, ids=ids)
    print(f"{split} speech: {len(o) - 1} utterances, {len(s) / 16000 / 60:.1f} min, "
          f"{len(voices)} voices, {time.time() - t0:.0f} s", flush=True)
    return s, o


def real_corpus(source: str):
    """Cached (int16 speech, offsets) of a real-speech source (see real_speech.py)."""
    path = CACHE / f"real_{source}.npz"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        t0 = time.time()
        s, o, names = real_speech.build(source)
        np.savez(path, speech=s, offsets=o, names=names)
        print(f"{source}: {len(o) - 1} utterances, {len(s) / 16000 / 60:.1f} min, "
              f"{time.time() - t0:.0f} s", flush=True)
    z = np.load(path)
    return z["speech"], z["offsets"]


def corpora(weights: str):
    """(speech, offsets, cutoff_hz, weight) per source from 'synth:0.3,fotaq:0.5,...'."""
    out = []
    for item in weights.split(","):
        name, w = item.split(":")
        if name == "synth":
            sp, off = speech_corpus("train", 1600, seed=1)
            out.append((sp, off, None, float(w)))
        else:
            out.append((*real_corpus(name), real_speech.CUTOFF_HZ[name], float(w)))
    return out


def cached_mixed(n, seed, mix: str, cfg, snr_focus=0.0, teacher=False):
    """data.mixed_examples over `corpora(mix)`, kept in .cache/ (with ``teacher``: and
    DTLN's band gains, `teacher.py`, a fourth array)."""
    tag = mix.replace(":", "").replace(",", "_") + (f"_f{snr_focus:g}" if snr_focus else "")
    path = CACHE / f"mixed_{n}_{seed}_{tag}{'_tdtln' if teacher else ''}.npz"
    if path.exists():
        z = np.load(path)
        return (z["X"], z["G"], z["V"]) + ((z["T"],) if teacher else ())
    t0 = time.time()
    got = data.mixed_examples(n, FRAMES, seed, corpora(mix), cfg, snr_focus,
                              teacher=Teacher(CACHE) if teacher else None)
    np.savez(path, **dict(zip("XGVT"[:len(got)], got, strict=True)))
    print(f"{n} mixtures ({mix}, seed {seed}{', teacher' if teacher else ''}) in "
          f"{time.time() - t0:.0f} s", flush=True)
    return got


def cached_examples(n, seed, sp, off, cfg, snr_focus=0.0):
    """data.batch_examples, kept in .cache/ so that another run reuses them."""
    tag = f"_f{snr_focus:g}" if snr_focus > 0 else ""
    path = CACHE / f"examples_{n}_{seed}_{len(off) - 1}{tag}.npz"
    if path.exists():
        z = np.load(path)
        return z["X"], z["G"], z["V"]
    X, G, V = data.batch_examples(n, FRAMES, seed, sp, off, cfg, snr_focus)
    np.savez(path, X=X, G=G, V=V)
    return X, G, V


def mixed_sources(n, seed, mix: str, snr_focus=0.0, first=None):
    """Index into `corpora(mix)` of each example's speech in ``cached_mixed(n, seed, mix,
    ..., snr_focus)``: `data.mixed_examples`'s draws replayed without the front end (the
    mixture files keep no source; the replay repeats its defaults, spread 12 dB and half
    reverberant), kept in .cache/ too. ``first``: the set's first features [T, F]; the
    replayed first mixture must give exactly these (else the replay has drifted)."""
    tag = mix.replace(":", "").replace(",", "_") + (f"_f{snr_focus:g}" if snr_focus else "")
    path = CACHE / f"sources_{n}_{seed}_{tag}.npy"
    if path.exists():
        return np.load(path)
    cs = corpora(mix)
    w = np.array([c[3] for c in cs], np.float64)
    w /= w.sum()
    rng = np.random.default_rng(seed)
    src = np.empty(n, np.int8)
    for i in range(n):
        src[i] = k = rng.choice(len(cs), p=w)
        b = cs[rng.choice(len(cs), p=w)]
        mix_i = data.example(FRAMES, rng, cs[k][0], cs[k][1], snr_focus=snr_focus,
                             babble=b[:2], spread=12.0, p_reverb=0.5)[0]
        if i == 0 and first is not None:
            from edgernn.audio import FrontEndConfig

            got = data.analyze(mix_i, FrontEndConfig())[0]
            if not np.array_equal(got, first):
                raise RuntimeError(f"mixed_sources: replaying seed {seed} does not give the "
                                   f"cached first mixture (max |diff| "
                                   f"{np.abs(got - first).max():.3g})")
    np.save(path, src)
    return src
