"""Where int8 starts to pay: ``run`` per step, int8-weights over float32, by layer size.

    taskset -c 1 .venv/bin/python bench/int8_small.py [--repeats 5]

For Dense, GRU and LSTM layers from 3 k to 160 k multiply-accumulates per step, times
``Stream.run`` per step of the float layer and of its ``int8-weights`` quantisation
(``converters.quantize(..., min_macs=0)``: every product int8), in passes interleaved
between the two, and prints the median ratio per size. This is the measurement behind
``converters.quantize.modes.MIN_MACS``: under it a blanket int8 request keeps a product
float32, because each step's input quantisation, accumulator clearing and
dequantisation cost more than the integer products save. The ratio depends on the
CPU's int8 path (``edgernn.kernels.tile_i8.path()``, printed): the JSON names the CPU
and its flags. Writes ``bench/out/int8_small.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import timing  # noqa: E402

import edgernn  # noqa: E402
from converters import quantize  # noqa: E402
from edgernn.kernels import tile_i8  # noqa: E402

SIZES = {  # kind: (input, hidden or output) pairs
    "Dense": [(64, 48), (96, 64), (128, 64), (128, 128), (128, 192), (256, 288)],
    "GRU": [(16, 32), (24, 48), (32, 64), (42, 96), (64, 128)],
    "LSTM": [(16, 32), (24, 48), (32, 64), (42, 96), (64, 128)],
}


def layer(kind: str, n_in: int, n: int, rng) -> edgernn.Model:
    def w(*shape):
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    if kind == "Dense":
        return edgernn.Model([edgernn.Dense(w(n, n_in), w(n), "tanh")])
    g = 3 if kind == "GRU" else 4
    return edgernn.Model([getattr(edgernn, kind)(w(g * n, n_in), w(g * n, n), w(g * n),
                                                  w(g * n))])


def per_step(stream, xs, seconds=0.05) -> float:
    """Seconds per step of ``stream.run(xs)``, the best of a few calls in ``seconds``."""
    best, end = np.inf, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        stream.run(xs)
        best = min(best, (time.perf_counter() - t) / len(xs))
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="interleaved passes per size")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "int8_small.json")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    meta = timing.cpu_meta()
    print(f"{meta['cpu']} ({' '.join(meta['flags'])}); int8 path: {tile_i8.path()}")
    print(f"{'layer':>16} {'MACs':>7} {'f32 ns':>8} {'int8 ns':>8} {'ratio':>6}")
    for kind, sizes in SIZES.items():
        for n_in, n in sizes:
            model = layer(kind, n_in, n, rng)
            q = quantize(model, mode="int8-weights", progress=False, min_macs=0)
            xs = rng.standard_normal((256, n_in)).astype(np.float32)
            f32, i8 = [], []
            for _ in range(args.repeats):
                f32.append(per_step(model.stream(), xs))
                i8.append(per_step(q.stream(), xs))
            ratio = float(np.median(np.array(i8) / np.array(f32)))
            macs = model.layers[0].macs()
            rows.append(dict(kind=kind, input=n_in, size=n, macs=macs,
                             f32_ns=float(np.median(f32)) * 1e9,
                             int8_ns=float(np.median(i8)) * 1e9, ratio=ratio))
            r = rows[-1]
            print(f"{kind + f' {n_in}->{n}':>16} {macs:>7} {r['f32_ns']:>8.0f} "
                  f"{r['int8_ns']:>8.0f} {ratio:>6.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": meta, "int8_path": tile_i8.path(),
                                    "command": "bench/int8_small.py", "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
