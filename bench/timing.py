"""How bench/step_latency.py times things: a pinned core, no GC, warm-up, interleaved passes.

- :func:`pin` moves the process to one CPU (``sched_setaffinity``, what
  ``taskset -c CPU`` does; child processes inherit it).
- :func:`quiet` runs the timed loop with the garbage collector collected,
  frozen (``gc.freeze``: every object alive now moves to a generation the
  collector never scans) and disabled, so no collection lands inside a sample.
- :func:`interleaved` times several runtimes in rounds (pass 1 of each, then
  pass 2 of each, ... in a rotating order), each pass after a warm-up of its
  own, so a burst of load on a shared machine hits every runtime alike; the
  percentiles are over all samples of all passes, and the spread of the
  per-pass medians is kept to show how much the machine drifted, and so is the
  number of involuntary context switches (``ru_nivcsw``) per 1000 samples.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

from edgernn.cli.benchmark import time_steps  # every per-call sample is timed by it

CLOCK = time.perf_counter_ns


def pin(cpu: int | None) -> dict:
    """Pin this process to ``cpu`` (None: the last CPU it may use); returns what was done."""
    if not hasattr(os, "sched_setaffinity"):
        return {"pinned": False, "why": "no sched_setaffinity on this platform"}
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if cpu is None else cpu
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        return {"pinned": False, "why": f"sched_setaffinity({cpu}): {exc}", "allowed": allowed}
    return {"pinned": True, "cpu": cpu, "allowed_before": allowed,
            "how": f"sched_setaffinity(0, {{{cpu}}}) (as taskset -c {cpu})"}


@contextlib.contextmanager
def quiet():
    """No garbage collection inside the block (collected, frozen and disabled first)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def clock_overhead_ns(n: int = 20000) -> float:
    """Median ns between two back-to-back clock reads (included in every sample)."""
    clock = CLOCK
    d = np.empty(n, np.int64)
    for i in range(n):
        t0 = clock()
        d[i] = clock() - t0
    return float(np.median(d))


def stats(samples) -> dict:
    a = np.asarray(samples, np.float64) / 1e3
    p50, p99, p999 = np.percentile(a, [50, 99, 99.9])
    return {"p50_us": float(p50), "p99_us": float(p99), "p99.9_us": float(p999),
            "max_us": float(a.max()), "mean_us": float(a.mean()), "n": int(a.size),
            "tail_ratio": float(p999 / p50)}


def steps_for(fn, xs, budget_s: float, lo: int, hi: int) -> int:
    """Steps per pass so that one pass takes about ``budget_s`` (clamped to [lo, hi])."""
    t = time_steps(fn, xs, 200, warm=50)
    return int(min(hi, max(lo, budget_s / max(np.median(t) * 1e-9, 1e-9))))


def interleaved(fns: dict, xs, passes: int, budget_s: float, lo: int, hi: int,
                warm: int = 500) -> dict:
    """Per name: percentiles over ``passes`` interleaved passes of ``fns[name](x)``.

    Steps per pass are chosen per runtime from its own speed (:func:`steps_for`).
    """
    n = {k: steps_for(f, xs, budget_s, lo, hi) for k, f in fns.items()}
    samples: dict = {k: [] for k in fns}
    preempted = dict.fromkeys(fns, 0)
    names = list(fns)
    for p in range(passes):
        for k in names[p % len(names):] + names[:p % len(names)]:
            with quiet():
                c0 = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
                samples[k].append(time_steps(fns[k], xs, n[k], warm=warm))
                preempted[k] += resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - c0
    out = {}
    for k, parts in samples.items():
        s = stats(np.concatenate(parts))
        s["pass_p50_us"] = [float(np.median(q)) / 1e3 for q in parts]
        s["steps_per_pass"] = n[k]
        # involuntary context switches (the scheduler took the CPU away) per 1000 samples:
        # when this nears 1, the p99.9 measures the machine's other load, not the runtime
        s["preempted_per_1000"] = 1000.0 * preempted[k] / (passes * (n[k] + warm))
        out[k] = s
    return out


def per_call_s(fn, min_seconds: float, min_reps: int = 5, cpu: bool = True) -> float:
    """Median seconds of ``fn()`` over repeats lasting at least ``min_seconds``, after a
    warm-up of a quarter of that: thread CPU time (``cpu``) or wall time."""
    return interleaved_calls({"f": fn}, 1, min_seconds, min_reps)["cpu" if cpu else "wall"]["f"]


def interleaved_calls(fns: dict, passes: int, seconds: float, min_reps: int = 5) -> dict:
    """``{"wall": {name: s}, "cpu": {name: s}}``: median wall and thread-CPU seconds of
    ``fns[name]()`` over ``passes`` interleaved passes of ``seconds / passes`` each (each
    warmed up for a quarter of its time). The thread's CPU time leaves out the time the
    scheduler gave the CPU to other processes, so on a shared machine it is the steadier
    figure for throughput (``run``); on an idle core both agree."""
    wall: dict = {k: [] for k in fns}
    cpu: dict = {k: [] for k in fns}
    names = list(fns)
    per = seconds / passes
    tclock = time.thread_time_ns
    for p in range(passes):
        for k in names[p % len(names):] + names[:p % len(names)]:
            fn = fns[k]
            t_end = time.perf_counter() + per / 4
            fn()
            while time.perf_counter() < t_end:
                fn()
            t_end = time.perf_counter() + per
            with quiet():
                n = 0
                while n < min_reps or time.perf_counter() < t_end:
                    c0 = tclock()
                    t0 = CLOCK()
                    fn()
                    t1 = CLOCK()
                    cpu[k].append(tclock() - c0)
                    wall[k].append(t1 - t0)
                    n += 1
    return {"wall": {k: float(np.median(v)) * 1e-9 for k, v in wall.items()},
            "cpu": {k: float(np.median(v)) * 1e-9 for k, v in cpu.items()}}


def chunk_for(run, xs, call_s: float = 1e-3) -> int:
    """Steps per ``run`` call so that a call takes about ``call_s`` (16 .. len(xs))."""
    run(xs[:16])
    probes = []
    for _ in range(7):
        t0 = CLOCK()
        run(xs[:16])
        probes.append(CLOCK() - t0)
    est = min(probes) * 1e-9 / 16
    return int(min(len(xs), max(16, call_s / max(est, 1e-9))))


def run_per_step_us(run, xs, min_seconds: float, call_s: float = 1e-3) -> dict:
    """``{"wall": µs, "cpu": µs}`` per step of ``run(xs[:T])`` (medians), with T chosen
    so that a call takes about ``call_s``: short calls are rarely preempted (a 4096-step
    ``run`` of L spans several time slices of a shared machine)."""
    T = chunk_for(run, xs, call_s)
    r = interleaved_calls({"f": lambda: run(xs[:T])}, 1, min_seconds, min_reps=9)
    return {k: v["f"] / T * 1e6 for k, v in r.items()}


#: the /proc/cpuinfo flags that decide the inner loops' speed (recorded beside every figure)
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "asimd", "asimddp")


def cpu_meta() -> dict:
    """CPU model, its SIMD flags of :data:`FLAGS`, the CPUs this process may use, load."""
    cpu, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "model name" and val.strip():
                cpu = val.strip()
            elif key.strip() in ("flags", "Features"):
                flags |= set(val.split())
    except OSError:
        pass
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    meta = {"cpu": cpu, "machine": platform.machine(), "cpus": os.cpu_count(),
            "flags": [f for f in FLAGS if f in flags], "affinity": allowed,
            "loadavg_start": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    name = os.environ.get("NUMBA_CPU_NAME")
    if name:   # edgernn's code compiled for another CPU (bench/as_avx2.sh): say so
        feats = set(os.environ.get("NUMBA_CPU_FEATURES", "").split(","))
        llvm = {"avx512_vnni": "+avx512vnni", "avx_vnni": "+avxvnni", "asimd": "+neon",
                "asimddp": "+dotprod"}
        meta["code_for"] = name
        meta["flags"] = [f for f in meta["flags"] if llvm.get(f, "+" + f) in feats]
        meta["cpu"] = f"{cpu}, edgernn's code compiled for {name} (flags as {name})"
    return meta
