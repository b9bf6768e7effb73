"""``make demo``: stream the bundled model over the bundled input, print latency.

Runs reference net M (GRU 42->96 -> Dense 96->22 sigmoid, BENCH.md) from
``edgernn/data/demo_m.ernn`` one 10 ms frame at a time over 1000 frames of
band-energy features, checks ``step`` against ``run``, and prints per-step
latency percentiles. When the serial bridge is installed, also runs the
simulated sensor device through it for a few seconds.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

import edgernn
from edgernn import benchmark

DATA = Path(__file__).resolve().parent / "data"


def main() -> int:
    t0 = time.perf_counter()
    model = edgernn.load(DATA / "demo_m.ernn")
    feats = np.load(DATA / "demo_features.npy")
    stream = model.stream()
    out = np.empty(model.output_size, np.float32)
    gains = np.empty((len(feats), model.output_size), np.float32)
    for t, x in enumerate(feats):
        gains[t] = stream.step(x, out=out)
    ready = time.perf_counter() - t0
    print(model.describe())
    print(f"\nloaded + compiled/cached + streamed {len(feats)} frames in {ready:.2f} s")
    same = np.array_equal(gains, model.stream().run(feats))
    print(f"step() over the stream equals run() over the sequence bit for bit: {same}")
    print(f"gain per band, frame 500: {np.array2string(gains[500], precision=2)}")
    st = benchmark.step_stats(model.stream(), list(feats), 50_000)
    run_us = benchmark.run_per_step_us(model.stream(), feats)
    print(f"\nstep latency over {st['n']} steps: p50 {st['p50_us']:.2f} us, "
          f"p99 {st['p99_us']:.2f} us, p99.9 {st['p99.9_us']:.2f} us")
    print(f"run() per step (time loop in native code): {run_us:.2f} us")
    print("frame budget at 10 ms hops: 10000 us")
    if importlib.util.find_spec("firmware_bridge.demo") is not None:
        from firmware_bridge.demo import main as bridge_demo

        print()
        bridge_demo()
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
