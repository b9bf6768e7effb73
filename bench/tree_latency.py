"""``Stream.step`` p50 and ``run`` per step of nets S, M, L (float, BENCH.md's torch seeds)
and of their int8-weights versions, from the edgernn of a given source tree: to compare
two commits on one machine, interleaved.

    git worktree add /tmp/before c67bef9
    for i in 1 2 3; do
      taskset -c 1 .venv/bin/python bench/tree_latency.py /tmp/before >> before.jsonl
      taskset -c 1 .venv/bin/python bench/tree_latency.py . >> after.jsonl
    done

Prints one JSON line: per net ``step_p50_us``, ``run_us_per_step`` and ``int8_step_p50_us``
(the int8 model is made by this tree's converters, data-free, and saved as format 2.0,
which both trees read).
"""

import gc
import json
import sys
import tempfile
import time
from pathlib import Path

tree = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
sys.path.insert(0, str(tree / "bench"))
sys.path.insert(0, str(tree))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from nets import build_torch, to_edgernn  # noqa: E402

import edgernn  # noqa: E402

HERE = Path(__file__).resolve().parent


def _step_p50(model, n):
    x = np.random.default_rng(0).standard_normal(model.input_size).astype(np.float32)
    out = np.empty(model.output_size, np.float32)
    s = model.stream()
    for _ in range(n // 10):
        s.step(x, out=out)
    gc.collect()
    gc.disable()
    samples = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        s.step(x, out=out)
        samples[i] = time.perf_counter_ns() - t0
    gc.enable()
    return float(np.median(samples)) / 1e3


def _int8(name, model):
    """The int8-weights model, made once by the tree running this script's own folder."""
    path = Path(tempfile.gettempdir()) / f"edgernn_tree_latency_{name}_q.ernn"
    if not path.exists():
        sys.path.insert(0, str(HERE.parent))
        from converters import quantize

        edgernn_here = quantize(model, mode="int8-weights", progress=False)
        edgernn_here.save(path)
    return edgernn.load(path)


res = {"edgernn": edgernn.__file__}
for seed, name in ((1, "S"), (2, "M"), (3, "L")):
    torch.manual_seed(seed)
    model = to_edgernn(build_torch(name))
    n = 20000 if name != "L" else 3000
    xs = np.random.default_rng(1).standard_normal(
        (2000 if name != "L" else 200, model.input_size)).astype(np.float32)
    runs = []
    for _ in range(7):
        t0 = time.thread_time_ns()
        model.stream().run(xs)
        runs.append((time.thread_time_ns() - t0) / len(xs) / 1e3)
    res[name] = {"step_p50_us": _step_p50(model, n), "run_us_per_step": float(np.median(runs)),
                 "int8_step_p50_us": _step_p50(_int8(name, model), n)}
print(json.dumps(res))
