"""Latency measurement shared by ``edgernn bench`` and ``bench/step_latency.py``."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np


def percentiles(samples_ns) -> dict:
    a = np.asarray(samples_ns, dtype=np.float64)
    return {"p50_us": float(np.percentile(a, 50)) / 1e3,
            "p99_us": float(np.percentile(a, 99)) / 1e3,
            "p99.9_us": float(np.percentile(a, 99.9)) / 1e3,
            "max_us": float(a.max()) / 1e3, "n": int(a.size)}


def time_steps(step, xs, repeat: int, warm: int | None = None) -> np.ndarray:
    """Per-call wall time (ns) of ``step(x)`` over ``repeat`` calls cycling through ``xs``,
    after ``warm`` untimed calls (default ``min(1000, repeat)``) that warm caches and
    branch predictors."""
    clock = time.perf_counter_ns
    out = np.empty(repeat, dtype=np.int64)
    n = len(xs)
    for i in range(min(1000, repeat) if warm is None else warm):
        step(xs[i % n])
    for i in range(repeat):
        x = xs[i % n]
        t0 = clock()
        step(x)
        out[i] = clock() - t0
    return out


def step_stats(stream, xs, repeat: int = 100_000) -> dict:
    """``Stream.step(x, out=)`` latency percentiles from Python."""
    out = np.empty(stream.model.output_size, np.float32)
    samples = time_steps(lambda x: stream.step(x, out=out), xs, repeat)
    return percentiles(samples)


def run_per_step_us(stream, xs, min_seconds: float = 0.3) -> float:
    """Median over repeats of ``Stream.run`` time divided by the number of steps (µs)."""
    stream.run(xs[:10])
    times = []
    t_end = time.perf_counter() + min_seconds
    while time.perf_counter() < t_end or len(times) < 3:
        t0 = time.perf_counter_ns()
        stream.run(xs)
        times.append((time.perf_counter_ns() - t0) / len(xs))
    return float(np.median(times)) / 1e3


def allocations_per_step(stream, x, steps: int = 20_000) -> dict:
    """Net bytes and blocks left allocated after ``steps`` calls of ``step(x, out=)``."""
    out = np.empty(stream.model.output_size, np.float32)
    for _ in range(100):
        stream.step(x, out=out)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        snap0 = tracemalloc.take_snapshot()
        for _ in range(steps):
            stream.step(x, out=out)
        after, peak = tracemalloc.get_traced_memory()
        snap1 = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    diff = [d for d in snap1.compare_to(snap0, "filename")
            if "tracemalloc" not in str(d.traceback)]
    blocks = sum(max(d.count_diff, 0) for d in diff)
    return {"net_bytes_per_step": (after - before) / steps,
            "net_blocks_per_step": blocks / steps,
            "peak_transient_bytes": int(peak - before)}


_COLD = """
import time, sys
t0 = time.perf_counter()
import numpy as np
import edgernn
m = edgernn.load(sys.argv[1])
s = m.stream()
x = np.zeros(m.input_size, np.float32) if not m.num_tokens else np.array([0])
s.step(x)
print(time.perf_counter() - t0)
"""


def cold_start_s(model_path, cache_dir: str | None = None) -> float:
    """Seconds for a fresh interpreter to import edgernn, load the model and step once.

    ``cache_dir``: the compiled-engine cache to use, as ``EDGERNN_CACHE_DIR`` (an empty
    one measures a cold start: the engine and the model's kernels compile); numba's
    own cache (``NUMBA_CACHE_DIR``) goes there too.
    """
    env = dict(os.environ)
    if cache_dir is not None:
        env["EDGERNN_CACHE_DIR"] = cache_dir
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", _COLD, str(model_path)], env=env,
                         capture_output=True, text=True, timeout=900, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cold_start_pair(model_path, progress=None) -> dict:
    """Cold start with an empty engine cache, then again with that cache warm.

    ``progress(message)``, when given, is called before each measurement (the
    empty-cache one compiles the engine: 10-20 s here, longer on a Pi).
    """
    say = progress or (lambda msg: None)
    with tempfile.TemporaryDirectory() as d:
        say("fresh process with an empty Numba cache (compiles the engine; 10-20 s)...")
        cold = cold_start_s(model_path, d)
        warm = []
        for i in range(3):
            say(f"fresh process with the warm cache ({i + 1}/3)...")
            warm.append(cold_start_s(model_path, d))
    return {"cold_cache_s": cold, "warm_cache_s": min(warm)}
