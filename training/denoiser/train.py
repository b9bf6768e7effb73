"""Train the bundled denoiser: corpus -> features -> GainNet -> .pt -> (.onnx -> .ernn int8).

One command reproduces the bundled model from scratch, all fifteen runs in a row
(each reads the last one's checkpoint unless it names another, ``@N``; run 10
is the mean of runs 8 and 9), and the conversion (about 3 h on an idle core)::

    taskset -c 0 nice -n 19 .venv/bin/python training/denoiser/train.py --recipe

The runs (`RECIPE`; ``--recipe`` passes each ``--init-from`` the previous
run's checkpoint in ``.cache/`` and ``--no-convert``, and converts at the end)::

    1  (defaults) --threads 2                         from scratch, synthetic voices
    2  --examples 1600 --data-seed 7 --epochs 4 --lr 1e-3 --threads 2
    3  --examples 4000 --data-seed 7 --snr-focus 0.5 --epochs 2 --lr 5e-4 --threads 2
    4  --mix --examples 4000 --data-seed 8 --epochs 8 --lr 1e-3
    5  --mix --examples 6000 --data-seed 9 --epochs 4 --lr 5e-4 --loss rnnoise2
    6  --mix --examples 4000 --data-seed 10 --snr-focus 0.5 --epochs 6 --lr 3e-4 \
       --loss rnnoise2
    7  --mix --examples 6000 --data-seed 9 --epochs 3 --lr 5e-4 --loss rnnoise2 \
       --widths 48,48,64,128                          run 6 widened (gain GRU 96 -> 128)
    8  --mix --examples 4000 --data-seed 11 --snr-focus 0.5 --epochs 3 --lr 3e-4 \
       --loss rnnoise2 --widths 48,48,64,128          from 7
    9  as 8 with --loss rnnoise2a --under-weight 1.5  from 7
    10 train.py --soup run8.pt run9.pt --out run10.pt  the mean of runs 8 and 9
    11 --mix --examples 3000 --data-seed 12 --snr-focus 0.5 --epochs 4 --lr 3e-4 \
       --loss rnnoise2 --widths 48,48,64,128 --teacher 0.5   from 10: half the loss on
                                                      DTLN's band gains (teacher.py)
    12 --mix --examples 3000 --data-seed 12 --also 1500:13 --snr-focus 0.5 --epochs 3 \
       --lr 3e-4 --loss rnnoise2 --widths 48,48,64,144 --teacher 0.5   from 11, its gain
                                                      GRU widened 128 -> 144
    13 --mix --examples 3000 --data-seed 14 --snr-focus 0.5 --epochs 2 --lr 2e-4 \
       --loss rnnoise2 --widths 48,48,64,144 --teacher 0.5   from 12, fresh mixtures
    14 --mix --examples 3000 --data-seed 14 --also 3000:12 --also 1500:13 \
       --also 2000:15 --snr-focus 0.5 --epochs 4 --lr 3e-4 --loss rnnoise2 \
       --widths 48,48,64,152 --teacher 0.5            from 13, its gain GRU widened
                                                      144 -> 152, every DTLN set
    15 as 14 with --epochs 2 --lr 1.5e-4                from 14, 2 more epochs
    .venv/bin/python training/denoiser/train.py --convert-only   # gainnet.pt -> model file

Runs 1-3 (issue 10) train on synthetic voices only; runs 4-6 (issue 20) add
recorded voices (``--mix``, `real_speech.py`), level spread and reverberation,
and RNNoise 0.2's loss; runs 7-10 widen the gain GRU and average two runs;
run 11 distils DTLN (`teacher.py`, ``--teacher``); runs 12-15 widen the gain
GRU again (144, then 152: the widest that keeps the int8 file under 250,000
bytes) and train on more DTLN-labelled mixtures (``--also``). How long each
run took and on what load: README.md here; figures per run: docs/audio.md.
The shipped weights come from runs 4-15 started from the committed run-3
checkpoint (``--init-from``, outputs in /tmp; run 11 from the committed mean of
runs 8 and 9, runs 12 and 14 from the committed runs 11 and 13); ``--recipe``
chains the same arguments but has not been run end to end.

Reproducible: fixed seeds for the corpus, the mixtures and torch; the thread
counts above (float sums differ with the thread count). The checkpoint keeps
each run's arguments and loss log (``args``, ``log``, ``init_log``). The
generated corpus and features stay in ``.cache/`` beside this file (not
committed); the trained weights (``gainnet.pt``) and the converted model
(``edgernn/data/denoiser.ernn``) are committed.

apt deps: see ``speech.py`` (espeak-ng, flite, festival and festvox voices) and
``real_speech.py`` (hedgewars-data, flight-of-the-amazon-queen); README.md here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from corpus import (  # noqa: E402  (speech_corpus: also bench/denoise.py's)
    CACHE,
    FRAMES,
    MIX,
    cached_examples,
    cached_mixed,
    mixed_sources,
    speech_corpus,
)
from losses import loss_fn  # noqa: E402
from model import GainNet, SeqNet, narrowed, widened  # noqa: E402

from edgernn.audio import FrontEndConfig  # noqa: E402

ARCHS = {"graph": GainNet, "seq": SeqNet}


def train(args):
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cfg = FrontEndConfig()
    sp, off = speech_corpus("train", args.utterances, seed=1)
    t0 = time.time()
    T = None
    if args.mix:
        X, G, V, T = mixed_sets(args, cfg)
    else:
        X, G, V = cached_examples(args.examples, args.data_seed, sp, off, cfg, args.snr_focus)
    Xv, Gv, Vv = cached_examples(80, 3, sp, off, cfg)           # the same validation set always
    Xm, Gm, Vm = cached_mixed(80, 3, MIX, cfg)                  # and one with real voices
    print(f"features: {X.shape[0]} x {FRAMES} frames in {time.time() - t0:.0f} s", flush=True)
    widths = dict(zip(("dense", "vad", "noise", "gain"), args.widths, strict=True)) \
        if args.widths else {}
    net = ARCHS[args.arch](cfg.num_features, cfg.num_bands, **widths)
    flat = X.reshape(-1, X.shape[-1]).astype(np.float64)
    net.mean.copy_(torch.from_numpy(flat.mean(0)).float())
    net.std.copy_(torch.from_numpy(flat.std(0) + 1e-3).float())
    init_log = []
    if args.init_from:                      # continue from a checkpoint with a new schedule
        ck = torch.load(args.init_from, weights_only=True)
        prev = load_checkpoint(path=args.init_from)
        if widths.get("noise", 0) and widths["noise"] < prev.widths["noise"]:   # pruned
            prev = narrowed(prev, torch.from_numpy(X[:64]), widths["noise"])
        net = widened(prev, **{k: w for k, w in widths.items() if k in ("noise", "gain")}) \
            if widths and widths != getattr(prev, "widths", None) else prev
        net.train()
        init_log = ck.get("init_log", []) + [{"args": ck.get("args"), "log": ck.get("log")}]
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * math.ceil(len(X) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps, pct_start=0.05)
    Xt, Gt, Vt = map(torch.from_numpy, (X, G, V))
    gen = torch.Generator().manual_seed(4)
    log = []
    for epoch in range(args.epochs):
        net.train()
        t1, tot, nb = time.time(), 0.0, 0
        for idx in torch.randperm(len(X), generator=gen).split(args.batch):
            gains, vad, _ = net(Xt[idx])
            loss, _ = loss_fn(gains, vad, Gt[idx], Vt[idx], args.loss, Xt[idx],
                              args.under_weight, args.pause_weight)
            if T is not None:               # distillation: DTLN's gains as the targets
                loss = (1 - args.teacher) * loss + args.teacher * loss_fn(
                    gains, vad, T[idx], Vt[idx], "distill")[0]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            tot, nb = tot + loss.item(), nb + 1
        net.eval()
        with torch.no_grad():
            gv, vv, _ = net(torch.from_numpy(Xv))
            _, val = loss_fn(gv, vv, torch.from_numpy(Gv), torch.from_numpy(Vv))
            _, val2 = loss_fn(gv, vv, torch.from_numpy(Gv), torch.from_numpy(Vv), "rnnoise2")
            gm, vm, _ = net(torch.from_numpy(Xm))
            _, valm = loss_fn(gm, vm, torch.from_numpy(Gm), torch.from_numpy(Vm))
        log.append({"epoch": epoch, "train": tot / nb, "val_gain": val.item(),
                    "val_gain2": val2.item(), "val_real": valm.item(),
                    "s": time.time() - t1})
        print(json.dumps(log[-1]), flush=True)
        torch.save({"state_dict": net.state_dict(), "num_features": cfg.num_features,
                    "num_bands": cfg.num_bands, "frontend": cfg.tag, "arch": args.arch,
                    "widths": getattr(net, "widths", None),
                    "log": log, "args": vars(args), "init_log": init_log},
                   args.out or checkpoint_path(args.arch))
    return net


def mixed_sets(args, cfg):
    """X, G, V and the teacher's gains (or None) of ``--examples``/``--data-seed`` and every
    ``--also N:SEED`` set, concatenated; with ``--teacher-voices real`` the examples of
    synthetic voices get the ideal gains, sharpened as `loss_fn`'s ``rnnoise2`` does, as
    their teacher target (their whole loss is then RNNoise 0.2's on the ideal gains)."""
    sets = [(args.examples, args.data_seed)] + args.also
    got = [cached_mixed(n, seed, args.mix, cfg, args.snr_focus, teacher=args.teacher > 0)
           for n, seed in sets]
    X, G, V = (np.concatenate([g[k] for g in got]) for k in range(3))
    if args.teacher <= 0:
        return X, G, V, None
    T = np.concatenate([g[3] for g in got])
    if args.teacher_voices == "real":
        synth = [i for i, item in enumerate(args.mix.split(",")) if item.startswith("synth:")]
        src = np.concatenate([mixed_sources(n, seed, args.mix, args.snr_focus, g[0][0])
                              for (n, seed), g in zip(sets, got, strict=True)])
        own = np.isin(src, synth)
        t = np.clip(G[own], 0, 1)
        T[own] = np.where(G[own] < 0, -1.0, t * np.tanh(8 * t) ** 2)
        print(f"teacher on real voices only: {own.sum()} of {len(own)} examples synthetic",
              flush=True)
    return X, G, V, torch.from_numpy(T)


def checkpoint_path(arch: str) -> Path:
    return HERE / ("gainnet.pt" if arch == "graph" else f"gainnet_{arch}.pt")


def load_checkpoint(arch="graph", path=None):
    ck = torch.load(path or checkpoint_path(arch), weights_only=True)
    net = ARCHS[ck.get("arch", "graph")](ck["num_features"], ck["num_bands"],
                                         **(ck.get("widths") or {}))
    net.load_state_dict(ck["state_dict"])
    return net.eval()


def convert(net, mode: str = "int8", out=None) -> Path:
    """.pt -> ONNX -> edgernn (float) -> int8 with its report -> edgernn/data/denoiser.ernn.

    ``out``: write the model file here instead (experiments).

    The converted float model is checked against torch on held-out features
    before quantising; the quantiser's error report (float vs int8, on
    calibration and held-out sequences) is stored in the model file.
    """
    from model import export_onnx

    from converters import from_onnx, quantize

    cfg = FrontEndConfig()
    CACHE.mkdir(exist_ok=True)
    onnx_path = CACHE / "gainnet.onnx"
    export_onnx(net, onnx_path)
    model = from_onnx(onnx_path)
    calib, held = calibration_features(cfg)
    with torch.no_grad():
        ref = net(torch.from_numpy(held[:1, :2000]))[0][0].numpy()
    got = model.split(model.stream().run(held[0, :2000]))["gains"]
    err = float(np.abs(got - ref).max())
    print(f"converted float model vs torch on 2000 frames: max |diff| {err:.2e}")
    if err > 1e-4:
        raise SystemExit("the converted model does not match torch")
    model = quantize(model, calib, mode=mode, held_out=held, min_macs=0)   # every layer:
    # the bundled file must stay under 250 KB (issue 20); int8 on the small ones costs ~1 us
    model.provenance.update({"audio.sample_rate": cfg.sample_rate, "audio.frontend": cfg.tag,
                             "training": "training/denoiser/train.py",
                             "architecture": type(net).__name__})
    q = model.quantization["end_to_end"]
    print(f"quantised ({model.quantization.get('mode', mode)}): vs float {json.dumps(q)}")
    out = Path(out) if out else ROOT / "edgernn" / "data" / "denoiser.ernn"
    model.save(out)
    print(f"wrote {out}")
    return out


def calibration_features(cfg, n=48, per_stream=16):
    """Features [N, T, F] of fresh training-style mixtures: calibration (seed 5), held out (6).

    Examples are chained into streams of ``per_stream`` x 5 s (8000 frames) so that
    the recurrent state settles: `converters.quantize` wants sequences of at least
    twice the settling time (about 2900 frames for this model).
    """
    sp, off = speech_corpus("train", 1600, seed=1)
    calib = cached_examples(n, 5, sp, off, cfg)[0]
    held = cached_examples(per_stream, 6, sp, off, cfg)[0]
    return (calib.reshape(n // per_stream, per_stream * FRAMES, -1),
            held.reshape(1, per_stream * FRAMES, -1))


RECIPE = [
    "--threads 2",
    "--examples 1600 --data-seed 7 --epochs 4 --lr 1e-3 --threads 2",
    "--examples 4000 --data-seed 7 --snr-focus 0.5 --epochs 2 --lr 5e-4 --threads 2",
    "--mix --examples 4000 --data-seed 8 --epochs 8 --lr 1e-3",
    "--mix --examples 6000 --data-seed 9 --epochs 4 --lr 5e-4 --loss rnnoise2",
    "--mix --examples 4000 --data-seed 10 --snr-focus 0.5 --epochs 6 --lr 3e-4 --loss rnnoise2",
    "--mix --examples 6000 --data-seed 9 --epochs 3 --lr 5e-4 --loss rnnoise2 "
    "--widths 48,48,64,128",
    "--mix --examples 4000 --data-seed 11 --snr-focus 0.5 --epochs 3 --lr 3e-4 --loss rnnoise2 "
    "--widths 48,48,64,128",
    "@7 --mix --examples 4000 --data-seed 11 --snr-focus 0.5 --epochs 3 --lr 3e-4 "
    "--loss rnnoise2a --under-weight 1.5 --widths 48,48,64,128",
    "soup 8 9",                     # run 10: the mean of runs 8 and 9 (shipped until issue 20's
    # third round); run 11: distilled from DTLN (teacher.py) on fresh mixtures, from run 10
    "--mix --examples 3000 --data-seed 12 --snr-focus 0.5 --epochs 4 --lr 3e-4 --loss rnnoise2 "
    "--widths 48,48,64,128 --teacher 0.5",
    # runs 12 and 13 (fourth round): the gain GRU widened to 144, more of DTLN's mixtures
    "--mix --examples 3000 --data-seed 12 --also 1500:13 --snr-focus 0.5 --epochs 3 --lr 3e-4 "
    "--loss rnnoise2 --widths 48,48,64,144 --teacher 0.5",
    "--mix --examples 3000 --data-seed 14 --snr-focus 0.5 --epochs 2 --lr 2e-4 --loss rnnoise2 "
    "--widths 48,48,64,144 --teacher 0.5",
    # runs 14, 15 (fifth round): the gain GRU widened to 152 (the 250 KB budget), all DTLN sets
    "--mix --examples 3000 --data-seed 14 --also 3000:12 --also 1500:13 --also 2000:15 "
    "--snr-focus 0.5 --epochs 4 --lr 3e-4 --loss rnnoise2 --widths 48,48,64,152 --teacher 0.5",
    "--mix --examples 3000 --data-seed 14 --also 3000:12 --also 1500:13 --also 2000:15 "
    "--snr-focus 0.5 --epochs 2 --lr 1.5e-4 --loss rnnoise2 --widths 48,48,64,152 --teacher 0.5",
]


def soup(paths, out) -> None:
    """The mean of the weights of checkpoints fine-tuned from one start ("model soup")."""
    cks = [torch.load(p, weights_only=True) for p in paths]
    ck = dict(cks[0])
    ck["state_dict"] = {k: sum(c["state_dict"][k] * (1.0 / len(cks)) for c in cks)
                        if v.is_floating_point() else v for k, v in cks[0]["state_dict"].items()}
    ck["soup"] = [{"path": str(p), "args": c.get("args"), "log": c.get("log")}
                  for p, c in zip(paths, cks, strict=True)]
    torch.save(ck, out)


def recipe() -> None:
    """Every run of `RECIPE` in turn, each from the last checkpoint (``@N``: from run N's;
    ``soup N M``: the mean of those runs' weights), then convert the last one."""
    prev = None
    for i, run in enumerate(RECIPE, 1):
        out = CACHE / f"recipe_run{i}.pt"
        argv = run.split()
        if argv[0] == "soup":
            soup([CACHE / f"recipe_run{n}.pt" for n in argv[1:]], out)
            prev = out
            continue
        if argv[0].startswith("@"):
            prev = CACHE / f"recipe_run{argv.pop(0)[1:]}.pt"
        argv += ["--no-convert", "--out", str(out)]
        if prev:
            argv += ["--init-from", str(prev)]
        print(f"run {i}: {' '.join(argv)}", flush=True)
        main(argv)
        prev = out
    torch.save(torch.load(prev, weights_only=True), checkpoint_path("graph"))
    convert(load_checkpoint())


def _n_seed(text):
    """``N:SEED`` -> (N, SEED), for ``--also``."""
    try:
        n, seed = (int(t) for t in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N:SEED (e.g. 1500:13), got {text!r}") \
            from None
    return n, seed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--utterances", type=int, default=1600)
    p.add_argument("--examples", type=int, default=1600)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--arch", choices=sorted(ARCHS), default="graph",
                   help="graph: RNNoise-like with concatenations and a VAD head (needs "
                        "engine v2); seq: a plain Dense/GRU/GRU/Dense stack")
    p.add_argument("--widths", type=lambda t: [int(w) for w in t.split(",")],
                   help="graph: dense,vad,noise,gain sizes (default 48,48,64,96); with "
                        "--init-from a narrower checkpoint, widened keeping its function "
                        "(a smaller noise width: its least used units pruned, narrowed)")
    p.add_argument("--data-seed", type=int, default=2, help="seed of the training mixtures")
    p.add_argument("--mix", nargs="?", const=MIX, default=None,
                   help=f"speech from several corpora by weight (default {MIX}; "
                        f"see corpus.corpora), levels spread 12 dB, half reverberant")
    p.add_argument("--loss", choices=["rnnoise", "rnnoise2", "rnnoise2a", "blend", "spectral",
                            "spectral2"],
                   default="rnnoise", help="gain loss: RNNoise 0.1's, 0.2's, their mean, "
                                           "0.1's plus a compressed spectral term (loss_fn)")
    p.add_argument("--under-weight", type=float, default=3.0,
                   help="rnnoise2a: weight of gains below the target on speech bands")
    p.add_argument("--pause-weight", type=float, default=1.0,
                   help="rnnoise2/2a: weight of gains above the target in frames "
                        "without speech")
    p.add_argument("--teacher", type=float, default=0.0,
                   help="with --mix: share of the loss on DTLN's band gains (teacher.py, "
                        "loss 'distill') instead of the ideal gains")
    p.add_argument("--teacher-voices", choices=["all", "real"], default="all",
                   help="real: DTLN's gains as targets for the examples of recorded voices "
                        "only, the ideal ones for synthetic voices (corpus.mixed_sources)")
    p.add_argument("--also", action="append", default=[], metavar="N:SEED", type=_n_seed,
                   help="with --mix: train on this cached mixture set too (same mix and "
                        "--snr-focus); repeatable")
    p.add_argument("--snr-focus", type=float, default=0.0,
                   help="share of noisy mixtures drawn at 0-10 dB instead of -5-20 dB")
    p.add_argument("--init-from", help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--out", help="write the checkpoint here instead of gainnet.pt")
    p.add_argument("--convert-only", action="store_true")
    p.add_argument("--recipe", action="store_true",
                   help="reproduce the bundled model: every run of RECIPE, then convert")
    p.add_argument("--soup", nargs="+", metavar="PT",
                   help="write the mean of these checkpoints' weights to --out, then stop")
    p.add_argument("--no-convert", action="store_true", help="train only (experiments)")
    p.add_argument("--checkpoint", help="with --convert-only: this .pt instead of gainnet.pt")
    p.add_argument("--model-out", help="write the .ernn here instead of edgernn/data/")
    p.add_argument("--quant-mode", default="int8", choices=["int8", "int8-weights"])
    args = p.parse_args(argv)
    if args.recipe:
        recipe()
        return
    if args.soup:
        soup(args.soup, args.out or checkpoint_path(args.arch))
        return
    t0 = time.time()
    net = load_checkpoint(args.arch, args.checkpoint) if args.convert_only else train(args)
    if not args.no_convert:
        convert(net, args.quant_mode, args.model_out)
    print(f"done in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
