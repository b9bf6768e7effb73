"""Outputs of the reference nets on this machine, to compare across CPUs (aarch64 vs x86).

    python bench/arch_outputs.py OUT.npz            # write this machine's outputs
    python bench/arch_outputs.py --compare A.npz B.npz

Builds S, M, L from ``bench/models/{S,M,L}_torch.npz`` (no torch needed) in
float and int8 (``int8_simple.quantise_rows``), streams 300 standard-normal
steps (seed 0) through ``run`` and ``step``, and also 8 batched streams, and
saves every output. ``--compare`` prints, per array, whether the two files are
bit-identical and the max abs difference; exits 1 if a difference exceeds
``--tol`` (float) or any int8 output is not within one float32 rounding of
the float gates (``--tol-int8``).
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from int8_simple import quantise_rows  # noqa: E402

import edgernn  # noqa: E402


def build(name: str):
    sd = np.load(HERE / "models" / f"{name}_torch.npz")
    kind = edgernn.GRU if name == "M" else edgernn.LSTM
    n = 2 if name == "L" else 1
    layers = [kind(sd[f"rnn.weight_ih_l{i}"], sd[f"rnn.weight_hh_l{i}"], sd[f"rnn.bias_ih_l{i}"],
                   sd[f"rnn.bias_hh_l{i}"]) for i in range(n)]
    layers.append(edgernn.Dense(sd["linear.weight"], sd["linear.bias"],
                                "sigmoid" if name == "M" else "linear"))
    return edgernn.Model(layers)


def outputs() -> dict:
    out = {}
    for name in "SML":
        for label, m in (("f32", build(name)), ("int8", quantise_rows(build(name)))):
            xs = np.random.default_rng(0).standard_normal((300, m.input_size)).astype(np.float32)
            out[f"{name}_{label}_run"] = m.stream().run(xs)
            s = m.stream()
            out[f"{name}_{label}_step"] = np.stack([s.step(x).copy() for x in xs])
            X = np.random.default_rng(1).standard_normal((40, 8, m.input_size)).astype(np.float32)
            out[f"{name}_{label}_batch8"] = m.streams(8).run(X)
    return out


def compare(a: Path, b: Path, tol: float, tol_int8: float) -> int:
    A, B = np.load(a), np.load(b)
    bad = 0
    print(f"{'array':<16}{'bit-identical':>14}{'max|diff|':>12}   {a.name} vs {b.name}")
    for k in sorted(set(A) & set(B)):
        if k == "meta":
            continue
        d = float(np.abs(A[k].astype(np.float64) - B[k]).max())
        same = A[k].tobytes() == B[k].tobytes()
        limit = tol_int8 if "int8" in k else tol
        bad += d > limit
        print(f"{k:<16}{str(same):>14}{d:>12.2e}{'   > ' + str(limit) if d > limit else ''}")
    print(f"meta: {A['meta']} | {B['meta']}")
    return 1 if bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--compare", nargs=2, type=Path)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--tol-int8", type=float, default=1e-4)
    ap.add_argument("--save-model", type=Path, help="also save float M here (.ernn)")
    args = ap.parse_args(argv)
    if args.save_model:
        build("M").save(args.save_model)
    if args.compare:
        return compare(*args.compare, args.tol, args.tol_int8)
    from edgernn.kernels import tile_i8

    meta = f"{platform.machine()} int8 path {tile_i8.path()}"
    np.savez(args.out, meta=np.array(meta), **outputs())
    print(f"wrote {args.out} ({meta})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
