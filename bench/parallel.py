"""Many streams at once: batched ``streams(n).step`` and two Python threads.

Batch: ``model.streams(n).step(X, out=)`` for n = 1, 4, 16, 64 (one native call
steps all n streams, each weight read once per step); the figure is the time
per stream-step (median thread CPU time of a call, see ``timing.interleaved_calls``)
and its ratio to n = 1.

Threads: two streams of one model stepped ``steps`` times each, first one after
the other in one thread, then in two threads at once (started together on a
barrier), with ``step(x, out=)`` per call and with one ``run(xs)`` each. The
engine releases the GIL while it runs, so on two free cores the threaded time
can approach half the serial one. This part needs two CPUs: the caller lifts
the bench's one-core pinning around it. Also measured: how many iterations a
pure-Python counter thread makes while the main thread is inside one long
``run`` (against the same counter running alone): near 1 when the GIL is free.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
from timing import per_call_s, quiet

BATCH_SIZES = (1, 4, 16, 64)


def batch_table(model, min_seconds: float) -> list[dict]:
    """Per stream-step µs of ``streams(n).step(X, out=)`` for each n, with the ratio to n=1."""
    rng = np.random.default_rng(0)
    rows = []
    for n in BATCH_SIZES:
        sb = model.streams(n)
        X = rng.standard_normal((n, model.input_size)).astype(np.float32)
        out = np.empty((n, model.output_size), np.float32)
        t = per_call_s(lambda sb=sb, X=X, out=out: sb.step(X, out=out), min_seconds)
        rows.append({"n": n, "call_us": t * 1e6, "per_stream_step_us": t * 1e6 / n})
    for r in rows:
        r["ratio_to_n1"] = r["per_stream_step_us"] / rows[0]["per_stream_step_us"]
    return rows


def _two(work_a, work_b) -> float:
    """Seconds for ``work_a`` and ``work_b`` run in two threads started together."""
    barrier = threading.Barrier(3)
    done = []

    def go(work):
        barrier.wait()
        work()
        done.append(time.perf_counter())

    ts = [threading.Thread(target=go, args=(w,)) for w in (work_a, work_b)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return max(done) - t0


def _counter_rate(seconds: float, during=None) -> float:
    """Iterations per second of a pure-Python loop in a thread (while ``during()`` runs)."""
    stop = threading.Event()
    count = [0]

    def spin():
        c = 0
        while not stop.is_set():
            c += 1
        count[0] = c

    th = threading.Thread(target=spin)
    t0 = time.perf_counter()
    th.start()
    if during is None:
        time.sleep(seconds)
    else:
        during()
    stop.set()
    th.join()
    return count[0] / (time.perf_counter() - t0)


def threads(model, steps: int, repeats: int = 3) -> dict:
    """Serial vs two threads, ``step`` loops and ``run``; medians of ``repeats``."""
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((steps, model.input_size)).astype(np.float32)
    xl = list(xs)
    s1, s2 = model.stream(), model.stream()
    o1, o2 = (np.empty(model.output_size, np.float32) for _ in range(2))

    def loop(s, o):
        step = s.step
        for x in xl:
            step(x, out=o)

    res = {"cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
           else os.cpu_count(), "steps_per_stream": steps}
    for kind, a, b in (("step", lambda: loop(s1, o1), lambda: loop(s2, o2)),
                       ("run", lambda: s1.run(xs), lambda: s2.run(xs))):
        a(), b()
        ser, par = [], []
        with quiet():
            for _ in range(repeats):
                t0 = time.perf_counter()
                a()
                b()
                ser.append(time.perf_counter() - t0)
                par.append(_two(a, b))
        res[kind] = {"serial_s": float(np.median(ser)), "threads_s": float(np.median(par)),
                     "ratio": float(np.median(par) / np.median(ser))}
    long_xs = np.tile(xs, (max(1, int(0.3 / max(res["run"]["serial_s"] / 2, 1e-6))), 1))
    alone = _counter_rate(0.3)
    during = _counter_rate(0, lambda: s1.run(long_xs))
    res["python_thread_during_run"] = {"ratio_to_alone": during / alone,
                                       "run_steps": int(long_xs.shape[0])}
    return res
