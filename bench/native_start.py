"""Warm start and step latency with the native image, against numba's path and another tree.

    python bench/native_start.py [--model M.ernn] [--runs 5] [--cpu 1] [--before /work/main]

1. Warm start: one cold process fills a fresh ``EDGERNN_CACHE_DIR`` (numba compiles and
   writes the native image, :mod:`edgernn.kernels.native`), then ``--runs`` fresh
   processes pinned to ``--cpu`` import edgernn, load the model and step once: median
   wall time, its breakdown (import numpy, import edgernn, load, first step), peak RSS
   (VmHWM) and whether numba was imported. The same with ``EDGERNN_NATIVE=0`` (numba's
   path, on the same cache).
2. ``step`` p50: fresh pinned processes alternate between this tree with the image,
   this tree on numba's path (``EDGERNN_NATIVE=0``: same kernel sources) and, with
   ``--before``, a checkout without the native image (its own cache folder), each timing
   ``step(x, out=)`` of the model ``--steps`` times after a warm-up; the median of their
   p50s per variant.

Figures name the CPU (:func:`timing.cpu_meta`). Nothing is asserted: it prints one JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402

HERE = Path(__file__).resolve().parents[1]

_START = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import edgernn
t2 = time.perf_counter()
m = edgernn.load(sys.argv[1])
s = m.stream()
t3 = time.perf_counter()
s.step(np.zeros(m.input_size, np.float32))
t4 = time.perf_counter()
hwm = next(int(ln.split()[1]) / 1024 for ln in open("/proc/self/status")
           if ln.startswith("VmHWM:"))
print(json.dumps({"total_s": t4 - t0, "import numpy": t1 - t0, "import edgernn": t2 - t1,
                  "load": t3 - t2, "first step": t4 - t3, "peak_rss_mb": hwm,
                  "numba": "numba" in sys.modules, "llvmlite": "llvmlite" in sys.modules}))
"""

_STEP = r"""
import json, sys, time
import numpy as np
import edgernn
m = edgernn.load(sys.argv[1])
s = m.stream()
n = int(sys.argv[2])
x = np.random.default_rng(0).uniform(-1, 1, m.input_size).astype(np.float32)
out = np.empty(m.output_size, np.float32)
step, clock = s.step, time.perf_counter_ns
for _ in range(2000):
    step(x, out=out)
t = np.empty(n, np.int64)
for i in range(n):
    a = clock()
    step(x, out=out)
    t[i] = clock() - a
print(json.dumps({"p50_us": float(np.median(t)) / 1e3,
                  "p99_us": float(np.percentile(t, 99)) / 1e3}))
"""


def _child(code, args, root: Path, cache, cpu, native=True) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root), EDGERNN_CACHE_DIR=str(cache),
               EDGERNN_NATIVE="1" if native else "0")
    cmd = [sys.executable, "-c", code, *map(str, args)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def _median(runs: list) -> dict:
    out = {k: float(np.median([r[k] for r in runs])) for k in runs[0]
           if isinstance(runs[0][k], float)}
    out.update({k: sorted({r[k] for r in runs}) for k in runs[0]
                if isinstance(runs[0][k], bool)})
    out["n"] = len(runs)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(HERE / "edgernn" / "data" / "demo_m.ernn"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--before", help="a tree without the native image, for step p50")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--step-runs", type=int, default=5)
    a = ap.parse_args(argv)
    res = {"cpu": timing.cpu_meta(), "model": a.model}
    with tempfile.TemporaryDirectory(prefix="edgernn-native-") as tmp:
        cache = Path(tmp) / "cache"
        res["cold"] = _child(_START, [a.model], HERE, cache, None)
        for label, native in (("warm native image", True), ("warm numba", False)):
            _child(_START, [a.model], HERE, cache, a.cpu, native)   # fill what it lacks
            res[label] = _median([_child(_START, [a.model], HERE, cache, a.cpu, native)
                                  for _ in range(a.runs)])
        trees = {"native image": (HERE, cache, True), "numba path": (HERE, cache, False)}
        if a.before:
            trees["before"] = (Path(a.before), Path(tmp) / "b", True)
            _child(_START, [a.model], *trees["before"][:2], None)   # its cache, compiled
        p50 = {k: [] for k in trees}
        for _ in range(a.step_runs):
            for k, (root, c, native) in trees.items():
                p50[k].append(_child(_STEP, [a.model, a.steps], root, c, a.cpu,
                                     native)["p50_us"])
        res["step p50 us (median of runs)"] = {k: float(np.median(v)) for k, v in p50.items()}
        res["step p50 us (runs)"] = p50
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
