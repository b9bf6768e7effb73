"""Denoiser quality and speed vs RNNoise (pyrnnoise), on held-out and real speech.

    nice -n 15 .venv/bin/python bench/denoise.py            # writes bench/out/denoise.{json,png}
    .venv/bin/python bench/denoise.py --model M.ernn         # another edgernn gain model
    .venv/bin/python bench/denoise.py --torch training/denoiser/gainnet.pt   # a checkpoint
    .venv/bin/python bench/denoise.py --compare old=OLD.ernn --compare r1=run1.pt   # more, same run
    taskset -c 0 .venv/bin/python bench/denoise.py --timing-only --runs 3   # medians of 3 runs

Sets (all 16 kHz, noise at 0, 5 or 10 dB SNR, speech at -25 dBFS):
- ``heldout``: voices never used in training (training/denoiser/speech.py's held-out
  espeak-ng variants, flite rms, festival ked and suo_fi_lj) with held-out noises
  (other seeds, babble of held-out voices, and the kinds ``vacuum`` and ``rain``
  that training never saw).
- ``real``: real recorded human voices, used for evaluation only: ALSA's speaker
  test recordings (/usr/share/sounds/alsa, Debian package alsa-utils) and the
  recorded words of KTuberling in ~25 languages (/usr/share/ktuberling/sounds,
  package ktuberling-data), with the same held-out noises.

For each file: SI-SDR, PESQ-wb and STOI of the noisy input and of each
denoiser's output against the clean speech. RNNoise runs at 48 kHz (input
resampled with soxr and back); its delay (960 samples with pyrnnoise 0.4,
measured by cross-correlation on clean speech in each run) is removed before scoring.
Time per 10 ms frame: edgernn through ``Denoiser.process`` with 160-sample
blocks (front end + model + synthesis); RNNoise through pyrnnoise's per-frame
call (and the bare ctypes call).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training" / "denoiser"))
sys.path.insert(0, str(ROOT))

import noise as noises  # noqa: E402

from edgernn.audio import Denoiser, open_denoiser  # noqa: E402
from edgernn.audio.io import denoise_array  # noqa: E402

RATE = 16000
OUT = ROOT / "bench" / "out"


def si_sdr(ref, est):
    ref, est = ref - ref.mean(), est - est.mean()
    a = np.dot(est, ref) / (np.dot(ref, ref) + 1e-12)
    e = est - a * ref
    return 10 * np.log10(np.sum((a * ref) ** 2) / (np.sum(e ** 2) + 1e-12) + 1e-12)


def scores(ref, est):
    from pesq import pesq
    from pystoi import stoi

    try:
        p = float(pesq(RATE, ref, est, "wb"))
    except Exception:                       # pesq refuses clips it finds no speech in
        p = float("nan")
    return {"si_sdr": float(si_sdr(ref, est)), "pesq": p,
            "stoi": float(stoi(ref, est, RATE, extended=False))}


def _load(path):
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(1)
    return soxr.resample(x, sr, RATE, quality="HQ").astype(np.float32) if sr != RATE else x


def _join(clips, gap=0.25):
    parts = []
    for c in clips:
        parts += [c, np.zeros(int(gap * RATE), np.float32)]
    return np.concatenate([np.zeros(int(0.3 * RATE), np.float32)] + parts)


def real_speech(max_files=None):
    """(name, clean float32) clips of real recorded voices found on this machine."""
    out = []
    alsa = sorted(Path("/usr/share/sounds/alsa").glob("*.wav"))
    alsa = [p for p in alsa if p.stem != "Noise"]
    for i in range(0, len(alsa), 3):
        out.append((f"alsa:{'+'.join(p.stem for p in alsa[i:i + 3])}",
                    _join([_load(p) for p in alsa[i:i + 3]])))
    kt = Path("/usr/share/ktuberling/sounds")
    for lang in sorted(p for p in kt.glob("*") if p.is_dir() and not p.is_symlink()):
        words = sorted(lang.glob("*.ogg"))[:6]
        if len(words) >= 3:
            out.append((f"ktuberling:{lang.name}", _join([_load(p) for p in words])))
    return out[:max_files] if max_files else out


def heldout_speech(n):
    import train

    sp, off = train.speech_corpus("heldout", 120, seed=11)
    rng = np.random.default_rng(12)
    out = []
    for i in range(n):
        us = rng.choice(len(off) - 1, 2, replace=False)
        out.append((f"heldout:{i}", _join([sp[off[u]:off[u + 1]] / 32000.0 for u in us])
                    .astype(np.float32)))
    return out, (sp, off)


def mixtures(clean_list, babble_src, seed, every_snr=False):
    """Each clean clip with a held-out noise at 0, 5 or 10 dB SNR (all three if every_snr)."""
    rng = np.random.default_rng(seed)
    res = []
    if every_snr:
        clean_list = [c for c in clean_list for _ in range(3)]
    for i, (name, s) in enumerate(clean_list):
        s = s * 10 ** (-25 / 20) / (np.sqrt(np.mean(s[np.abs(s) > 1e-4] ** 2)) + 1e-9)
        nz, kinds = noises.make(len(s), rng, *babble_src, noises.HELDOUT_KINDS)
        snr = [0.0, 5.0, 10.0][i % 3]
        active = np.abs(s) > 1e-4
        p = np.mean(s[active] ** 2)
        nz = nz * np.sqrt(p * 10 ** (-snr / 10) / np.mean(nz ** 2))
        res.append({"name": name, "snr": snr, "noise": [str(k) for k in kinds],
                    "clean": s.astype(np.float32), "noisy": (s + nz).astype(np.float32)})
    return res


def _rnnoise_48k(x48):
    """RNNoise over float32 samples at 48 kHz, one 480-sample frame per call."""
    from pyrnnoise import rnnoise

    st = rnnoise.create()
    q = np.round(np.clip(x48, -1, 1) * 32767).astype(np.int16)
    q = np.concatenate([q, np.zeros(-len(q) % 480, np.int16)])
    out = np.concatenate([rnnoise.process_mono_frame(st, q[i:i + 480])[0]
                          for i in range(0, len(q), 480)]).astype(np.float32) / 32767
    rnnoise.destroy(st)
    return out


def rnnoise_delay(clean):
    """RNNoise's delay in 48 kHz samples, measured on clean speech by cross-correlation."""
    x = soxr.resample(clean, RATE, 48000).astype(np.float32)
    y = _rnnoise_48k(np.concatenate([x, x]))[:2 * len(x)]
    x2 = np.concatenate([x, x])
    c = [np.dot(y[lag:], x2[:len(x2) - lag]) for lag in range(2000)]
    return int(np.argmax(c))


def rnnoise_file(x, delay):
    x48 = soxr.resample(x, RATE, 48000, quality="HQ").astype(np.float32)
    y = _rnnoise_48k(np.concatenate([x48, np.zeros(delay, np.float32)]))[delay:]
    return soxr.resample(y, 48000, RATE, quality="HQ")[:len(x)].astype(np.float32)


def time_rnnoise(x, reps=3):
    import ctypes

    from pyrnnoise import rnnoise

    y48 = soxr.resample(x, RATE, 48000).astype(np.float32)[:480 * 500]
    frames = [y48[i:i + 480] for i in range(0, len(y48) - 479, 480)]
    st = rnnoise.create()
    per_py, per_c = [], []
    buf = np.zeros(480, np.float32)
    ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    for _ in range(reps):
        for f in frames:
            t0 = time.perf_counter_ns()
            rnnoise.process_mono_frame(st, f)
            per_py.append(time.perf_counter_ns() - t0)
        for f in frames:
            buf[:] = f * 32767
            t0 = time.perf_counter_ns()
            rnnoise.lib.rnnoise_process_frame(st, ptr, ptr)
            per_c.append(time.perf_counter_ns() - t0)
    rnnoise.destroy(st)
    return _pct(per_py), _pct(per_c)


def time_denoiser(den, x, reps=3):
    """Time per hop of ``den.process``, scaled to 10 ms (a DTLN hop is 8 ms)."""
    den.reset()
    blocks = [x[i:i + den.hop] for i in range(0, len(x) - den.hop + 1, den.hop)][:1000]
    per = []
    for _ in range(reps):
        for b in blocks:
            t0 = time.perf_counter_ns()
            den.process(b)
            per.append((time.perf_counter_ns() - t0) * den.sample_rate / 100 / den.hop)
    return _pct(per)


def _pct(ns):
    a = np.array(ns[len(ns) // 10:]) / 1000.0          # drop the first 10% (warm-up)
    return {"p50_us": float(np.percentile(a, 50)), "p90_us": float(np.percentile(a, 90)),
            "p99_us": float(np.percentile(a, 99)), "mean_us": float(a.mean()), "n": int(a.size)}


class TorchReplay:
    """A checkpoint through the same front end: a model object the Denoiser accepts."""

    def __init__(self, path):
        import torch
        import train

        ck = torch.load(path, weights_only=True)
        self.net = train.load_checkpoint(path=path)          # any widths (ck["widths"])
        self.input_size, self.num_tokens, self.provenance = ck["num_features"], 0, {}
        self.outputs = (("gains", ck["num_bands"]),)
        self.output_size = ck["num_bands"]

    def stream(self, math=None):
        return _TorchStream(self.net)


class _TorchStream:
    def __init__(self, net):
        self.net, self.state = net, None

    def reset(self):
        self.state = None

    def step(self, x, out=None):
        import torch

        with torch.no_grad():
            g, _, self.state = self.net(torch.from_numpy(x)[None, None], self.state)
        out[:] = g[0, 0].numpy()
        return out


def evaluate(sets, methods):
    res = {}
    for set_name, mixes in sets.items():
        rows = []
        for m in mixes:
            row = {"name": m["name"], "snr": m["snr"], "noise": m["noise"],
                   "noisy": scores(m["clean"], m["noisy"])}
            for meth, fn in methods.items():
                row[meth] = scores(m["clean"], fn(m["noisy"]))
            rows.append(row)
        summary = {}
        for meth in methods:
            d = {}
            for k in ("si_sdr", "pesq", "stoi"):
                diffs = np.array([r[meth][k] - r["noisy"][k] for r in rows])
                d[f"{k}_gain"] = float(np.nanmean(diffs))
                d[k] = float(np.nanmean([r[meth][k] for r in rows]))
            summary[meth] = d
        summary["noisy"] = {k: float(np.nanmean([r["noisy"][k] for r in rows]))
                            for k in ("si_sdr", "pesq", "stoi")}
        res[set_name] = {"files": len(rows), "summary": summary, "rows": rows}
        print(f"\n{set_name}: {len(rows)} files at 0/5/10 dB SNR; mean improvement "
              f"(noisy SI-SDR {summary['noisy']['si_sdr']:.2f} dB, PESQ "
              f"{summary['noisy']['pesq']:.2f}, STOI {summary['noisy']['stoi']:.3f})")
        for meth in methods:
            s = summary[meth]
            print(f"  {meth:10s} SI-SDR {s['si_sdr_gain']:+.2f} dB  PESQ-wb {s['pesq_gain']:+.3f}"
                  f"  STOI {s['stoi_gain']:+.4f}")
    return res


def plot(res, timing, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(res)
    meths = [m for m in res[sets[0]]["summary"] if m != "noisy"]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4), constrained_layout=True)
    for ax, key, unit in zip(axes[:3], ("si_sdr_gain", "pesq_gain", "stoi_gain"),
                             ("dB", "MOS", ""), strict=True):
        for j, m in enumerate(meths):
            vals = [res[s]["summary"][m][key] for s in sets]
            w = 0.8 / len(meths)
            ax.bar(np.arange(len(sets)) + w * j, vals, w, label=m)
        ax.set_xticks(np.arange(len(sets)) + 0.4 - 0.4 / len(meths), sets)
        ax.set_title(f"{key.replace('_gain', '')} improvement {unit}")
        ax.axhline(0, color="k", lw=0.5)
    axes[0].legend()
    names = list(timing)
    axes[3].bar(names, [timing[n]["p50_us"] for n in names])
    axes[3].set_title("time per 10 ms frame, p50 (us)")
    axes[3].tick_params(axis="x", rotation=20)
    fig.savefig(path, dpi=90)


def _model(path):
    """An .ernn path as it is, a torch checkpoint (.pt) as a `TorchReplay`."""
    return TorchReplay(path) if str(path).endswith(".pt") else path


def _other(path):
    """A compared model's denoiser: a checkpoint's band gains, or what ``edgernn denoise
    --model`` makes of an .ernn (a samples-in pipeline such as DTLN or NSNet2, or gains)."""
    return Denoiser(TorchReplay(path)) if str(path).endswith(".pt") else open_denoiser(path)


def timing_runs(model, runs):
    """Time per frame of edgernn and RNNoise over ``runs`` runs; per run and the medians."""
    x = (0.1 * np.random.default_rng(0).standard_normal(160_000)).astype(np.float32)
    per = {"edgernn Denoiser.process": [], "rnnoise (pyrnnoise frame)": [],
           "rnnoise (bare C call)": []}
    for r in range(runs):
        got = (time_denoiser(Denoiser(model), x), *time_rnnoise(x))
        for name, t in zip(per, got, strict=True):
            per[name].append(t)
            print(f"run {r + 1}: time per 10 ms frame, {name}: p50 {t['p50_us']:.1f} us, p90 "
                  f"{t['p90_us']:.1f} us, p99 {t['p99_us']:.1f} us", flush=True)
    for name, ts in per.items():
        print(f"median of {runs} runs, {name}: p50 "
              f"{np.median([t['p50_us'] for t in ts]):.1f} us, p99 "
              f"{np.median([t['p99_us'] for t in ts]):.1f} us")
    return per


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help=".ernn gain model (default: the bundled one)")
    p.add_argument("--torch", help="evaluate a training checkpoint (.pt) instead")
    p.add_argument("--compare", action="append", default=[], metavar="NAME=PATH",
                   help="another model scored in the same run: a gain model (.ernn or .pt) "
                        "or a pipeline .ernn (edgernn convert --audio dtln/nsnet2); "
                        "repeatable")
    p.add_argument("--runs", type=int, default=1, help="with --timing-only: timing runs")
    p.add_argument("--heldout", type=int, default=36, help="held-out synthetic mixtures")
    p.add_argument("--out", default=str(OUT / "denoise"))
    p.add_argument("--timing-only", action="store_true",
                   help="only the time per frame (e.g. pinned: taskset -c 1 ...)")
    args = p.parse_args(argv)
    if args.timing_only:
        timing_runs(args.model, args.runs)
        return
    held, babble_src = heldout_speech(args.heldout)
    real = real_speech()
    sets = {"heldout": mixtures(held, babble_src, 21),
            "real": mixtures(real, babble_src, 22, every_snr=True)}
    model = TorchReplay(args.torch) if args.torch else args.model
    den = Denoiser(model)
    ours = "edgernn" if not args.torch else "torch"
    delay = rnnoise_delay(real[0][1] if real else held[0][1])
    print(f"RNNoise delay measured on clean speech: {delay} samples at 48 kHz")
    methods = {ours: lambda x: denoise_array(den, x[:, None], RATE)[:, 0],
               "rnnoise": lambda x: rnnoise_file(x, delay)}
    for item in args.compare:
        name, _, path = item.partition("=")
        if not path:
            p.error(f"--compare expects NAME=PATH, got {item!r}")
        other = _other(path)
        methods[name] = lambda x, d=other: denoise_array(d, x[:, None], RATE)[:, 0]
    print(f"real recordings found: {len(real)} clips "
          f"({sum(n.startswith('alsa') for n, _ in real)} ALSA, "
          f"{sum(n.startswith('ktuberling') for n, _ in real)} KTuberling languages)")
    res = evaluate(sets, methods)
    x = sets["heldout"][0]["noisy"]
    x = np.tile(x, 1 + 160_000 // len(x))[:160_000]
    timing = {}
    if not args.torch:
        timing["edgernn Denoiser.process"] = time_denoiser(Denoiser(model), x)
    for item in args.compare:
        name, _, path = item.partition("=")
        if not path.endswith(".pt"):
            timing[name] = time_denoiser(_other(path), x)
    timing["rnnoise (pyrnnoise frame)"], timing["rnnoise (bare C call)"] = time_rnnoise(x)
    for k, v in timing.items():
        print(f"time per 10 ms frame, {k}: p50 {v['p50_us']:.1f} us, p90 {v['p90_us']:.1f} us, "
              f"p99 {v['p99_us']:.1f} us")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for s in res.values():
        for r in s["rows"]:
            r.pop("clean", None)
    with open(args.out + ".json", "w") as fh:
        json.dump({"sets": res, "timing": timing, "model": args.torch or args.model or
                   "bundled", "compare": args.compare}, fh, indent=1)
    plot(res, timing, args.out + ".png")
    print(f"wrote {args.out}.json and .png")


if __name__ == "__main__":
    main()
