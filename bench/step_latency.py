"""Every speed target of issues #7, #8 and #9 in one run: edgernn against its peers.

    .venv/bin/python bench/step_latency.py            # a few minutes; --quick: smoke run

Writes ``bench/out/step_latency.json`` and ``bench/out/step_latency.png`` and
prints the tables and a targets table (each target's ratio, limit, met/missed).

1. Nets S, M, L of ``shared/BENCH.md`` (float, and int8 by ``converters.quantize``):
   ``Stream.step(x, out=)`` p50/p99/p99.9 and ``run`` per step, next to LiteRT f32
   and dynamic-range int8, ONNX Runtime and torch eager on the same weights and
   inputs (:mod:`peers`), every one checked against torch first, timed in
   interleaved passes (:mod:`timing`); allocations per step (tracemalloc).
2. Single GRU/LSTM layers at RTNeural's sizes: ``run`` per step against RTNeural
   and a plain C yardstick, both built in this run (:mod:`yardstick`, :mod:`rtneural`).
3. Batched streams, n = 1, 4, 16, 64 for M and L (:mod:`parallel`).
4. Cold and warm start in fresh processes, with a breakdown (:mod:`startup`),
   and a Raspberry Pi 4 estimate (see ``PI4``).
5. Two threads stepping two streams against serial (:mod:`parallel`).

``run`` figures (nets, single layers, batch) are the median thread CPU time of
calls of about 1 ms, interleaved between the runtimes compared (the wall time
is in the JSON too); ``step`` figures are wall time per call, every sample kept.

Method: the process is pinned to one CPU (``--cpu``, default the last one;
``sched_setaffinity`` as ``taskset -c``) except for part 5, which needs two;
the garbage collector is collected, frozen and disabled around every timed
loop; each runtime warms up before each pass. The machine's load average is
recorded before and after: ratios from one run compare runtimes under the
same conditions, absolute times drift with the load.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import latency_report  # noqa: E402
import parallel  # noqa: E402
import peers  # noqa: E402
import startup  # noqa: E402
import timing  # noqa: E402
import yardstick  # noqa: E402
from nets import build_torch, to_edgernn, torch_reference  # noqa: E402

import edgernn  # noqa: E402
from edgernn.cli import benchmark  # noqa: E402

OUT = HERE / "out"
CHECK_STEPS = 200
TOL_F32 = 1e-4      # max |diff| vs torch for a float runtime to be timed
TOL_INT8 = 0.05     # ... for an int8 one (its error is ~1e-3 here; this catches a broken one)
#: Raspberry Pi 4 cold start = this machine's cold-start CPU seconds x PI4["factor"]
PI4 = {"factor": 6.0, "range": (4.0, 8.0), "how": (
    "this machine's median cold-start CPU time (user+sys of the child) x 6 (range 4-8): "
    "a Pi 4's Cortex-A72 at 1.5 GHz runs branchy compiler code (LLVM, Numba typing) about "
    "2x slower per clock than a current Xeon core (3-wide vs 6-wide, 1 MB shared L2, no L3) "
    "at about half the clock (1.5 GHz vs 3+ GHz): 4-8x per core. A documented scaling "
    "factor, not a measurement: bench/aarch64_check.sh runs the aarch64 build under QEMU, "
    "which checks the code path but cannot time it.")}


def bench_net(name, args, say) -> dict:
    net = build_torch(name).eval()
    model = to_edgernn(net)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4096, model.input_size)).astype(np.float32)
    xl = list(xs)
    ref = torch_reference(net, xs)
    cal = rng.standard_normal((8, 300, model.input_size)).astype(np.float32)
    qmodel, qhow = peers.int8_model(model, cal, args.int8_mode)
    res = {"net": name, "int8_made_by": qhow, "runtimes": {},
           "macs_per_step": int(sum(getattr(op, "macs", lambda: 0)() for op in model.layers))}
    fns, skipped, mine = {}, {}, {}
    for label, m in (("edgernn", model), ("edgernn int8", qmodel)):
        try:
            s = m.stream()
            diff = float(np.abs(s.run(xs[:CHECK_STEPS]) - ref[:CHECK_STEPS]).max())
            tol = TOL_INT8 if "int8" in label else TOL_F32
            if not diff <= tol:
                raise ValueError(f"outputs differ from torch by {diff:.2e} > {tol}")
            s = m.stream()
            fns[label] = functools.partial(s.step, out=np.empty(m.output_size, np.float32))
            res["runtimes"][label] = {"max_abs_diff_vs_torch": diff}
            mine[label] = m
        except Exception as exc:  # noqa: BLE001 -- e.g. an engine without int8
            skipped[label] = f"{type(exc).__name__}: {exc}"[:300]
    factories = {"litert f32": lambda: peers.litert(args.models / f"{name}_f32.tflite"),
                 "litert drq": lambda: peers.litert(args.models / f"{name}_drq.tflite"),
                 "onnxruntime": lambda: peers.onnxruntime(net, model.input_size),
                 "torch eager": lambda: peers.torch_eager(net)}
    for label, make in factories.items():
        try:
            diff = peers.max_diff(make(), xs, ref, CHECK_STEPS)
            tol = TOL_INT8 if label == "litert drq" else TOL_F32
            if not diff <= tol:
                raise ValueError(f"outputs differ from torch by {diff:.2e} > {tol}")
            fns[label] = make()
            res["runtimes"][label] = {"max_abs_diff_vs_torch": diff}
            if label == "litert drq" and diff <= TOL_F32:
                res["runtimes"][label]["note"] = "the LiteRT converter left this model in float"
        except Exception as exc:  # noqa: BLE001 -- a missing peer is reported, not fatal
            skipped[label] = f"{type(exc).__name__}: {exc}"[:300]
    say(f"  {name}: timing {', '.join(fns)} ({args.passes} interleaved passes)")
    times = timing.interleaved(fns, xl, args.passes, args.pass_seconds, lo=200, hi=args.max_steps)
    for label, st in times.items():
        res["runtimes"][label]["step"] = st
    for label, skip in skipped.items():
        res["runtimes"][label] = {"skipped": skip}
    res["_models"] = (model, qmodel)
    res["_paths"] = {}
    runs, chunk = {}, {}
    for label, m in mine.items():
        s = m.stream()
        chunk[label] = timing.chunk_for(s.run, xs)
        runs[label] = functools.partial(s.run, xs[:chunk[label]])
    med = timing.interleaved_calls(runs, args.passes, 2 * args.run_seconds, min_reps=9)
    for label, m in mine.items():
        r = res["runtimes"][label]
        r["run_per_step_us"] = med["cpu"][label] / chunk[label] * 1e6
        r["run_per_step_wall_us"] = med["wall"][label] / chunk[label] * 1e6
        r["run_steps_per_call"] = chunk[label]
        r["allocations"] = benchmark.allocations_per_step(m.stream(), xs[0], steps=5000)
        key = f"{name} int8" if "int8" in label else name
        path = args.workdir / f"{key.replace(' ', '_')}.ernn"
        m.save(path)
        res["_paths"][key] = path
        try:
            r["allocations"]["nrt"] = startup.nrt_allocations(path)
        except Exception as exc:  # noqa: BLE001
            r["allocations"]["nrt"] = {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
    return res


def bench_batch(nets, args) -> dict:
    out = {}
    for r in nets:
        if r["net"] not in ("M", "L"):
            continue
        out[r["net"]] = {}
        for kind, m in zip(("float", "int8"), r["_models"], strict=True):
            try:
                out[r["net"]][kind] = parallel.batch_table(m, args.run_seconds)
            except Exception as exc:  # noqa: BLE001
                out[r["net"]][kind + " skipped"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


def bench_start(nets, args, say) -> dict:
    out = {}
    paths = {k: p for r in nets for k, p in r["_paths"].items()}
    for label in args.start_models:
        path = paths.get(label)
        if path is None:
            out[label] = {"skipped": f"no model {label!r} in this run (--nets)"}
            continue
        say(f"  start {label}")
        try:
            out[label] = startup.start_times(path, args.cold_repeats, args.warm_repeats,
                                             progress=say)
        except Exception as exc:  # noqa: BLE001
            out[label] = {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
        if label in ("S", "M", "L"):   # the peers' process with the same net, beside it
            out[label]["peers"] = _peer_rss(label, args)
    if not args.quick:
        say("  edgernn warmup breakdown (fresh process, empty cache)")
        try:
            out["warmup_breakdown"] = startup.warmup_breakdown()
        except Exception as exc:  # noqa: BLE001
            out["warmup_breakdown"] = {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
    cpu = [v["cold"]["median_cpu_s"] for k, v in out.items() if "cold" in v]
    if cpu:
        worst = max(cpu)
        out["pi4_estimate"] = {"cold_s": worst * PI4["factor"],
                               "range_s": [worst * PI4["range"][0], worst * PI4["range"][1]],
                               "from_cpu_s": worst, **PI4}
    return out


def _peer_rss(name, args) -> dict:
    """Peak RSS of a fresh LiteRT and ONNX Runtime process that loads net ``name`` and
    runs it once (:func:`startup.peer_rss`)."""
    out = {}
    try:
        out["litert f32"] = startup.peer_rss("litert", args.models / f"{name}_f32.tflite")
    except Exception as exc:  # noqa: BLE001
        out["litert f32"] = {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        net = build_torch(name).eval()
        onnx_path = args.workdir / f"{name}_one_step.onnx"
        onnx_path.write_bytes(peers.onnx_one_step(net, to_edgernn(net).input_size)[0])
        out["onnxruntime"] = startup.peer_rss("onnxruntime", onnx_path)
    except Exception as exc:  # noqa: BLE001
        out["onnxruntime"] = {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
    return out


def bench_threads(nets, args, pin) -> dict:
    out = {}
    if not pin.get("pinned") or len(pin.get("allowed_before", [])) < 2:
        allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        if len(allowed) < 2:
            return {"skipped": "needs two CPUs; this process may use only "
                               f"{sorted(allowed) or 'one'}"}
    if pin.get("pinned"):
        os.sched_setaffinity(0, set(pin["allowed_before"]))
    try:
        for r in nets:
            if r["net"] in ("M", "L"):
                out[r["net"]] = parallel.threads(r["_models"][0], args.thread_steps)
    finally:
        if pin.get("pinned"):
            os.sched_setaffinity(0, {pin["cpu"]})
    return out


def meta(pin) -> dict:
    def version(mod):
        try:
            return __import__(mod).__version__
        except Exception:  # noqa: BLE001
            return None
    cpu = timing.cpu_meta()
    return {"machine": platform.machine(), "cpu": cpu["cpu"], "flags": cpu["flags"],
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "edgernn": edgernn.__version__, "numpy": np.__version__,
            "numba": version("numba"), "torch": torch.__version__,
            "onnxruntime": version("onnxruntime"), "ai_edge_litert": version("ai_edge_litert"),
            "pinning": pin, "gc": "collected, frozen and disabled around each timed loop",
            "clock_overhead_ns": timing.clock_overhead_ns(),
            "loadavg_start": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: short passes, S and M")
    ap.add_argument("--nets", default=None, help="comma list (default S,M,L; --quick: S,M)")
    ap.add_argument("--parts", default="nets,layers,batch,start,threads")
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--pass-seconds", type=float, default=0.4, help="per runtime per pass")
    ap.add_argument("--max-steps", type=int, default=40_000, help="per runtime per pass")
    ap.add_argument("--run-seconds", type=float, default=0.3)
    ap.add_argument("--start-models", default="M,L,L int8",
                    help="models for cold/warm start (S, M, L, 'S int8', ...)")
    ap.add_argument("--cold-repeats", type=int, default=3)
    ap.add_argument("--warm-repeats", type=int, default=5)
    ap.add_argument("--thread-steps", type=int, default=5000)
    ap.add_argument("--int8-mode", default="int8-weights", choices=["int8-weights", "int8"])
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: last)")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--models", type=Path, default=HERE / "models")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.quick:
        args.passes, args.pass_seconds, args.max_steps = 2, 0.05, 5000
        args.run_seconds, args.cold_repeats, args.warm_repeats = 0.05, 1, 2
        args.thread_steps = 1000
    args.nets = (args.nets or ("S,M" if args.quick else "S,M,L")).split(",")
    if args.quick and args.start_models == "M,L,L int8":
        args.start_models = "M,M int8"
    args.start_models = [m.strip() for m in args.start_models.split(",")]
    args.parts = set(args.parts.split(","))
    return args


def main(argv=None):
    args = parse(argv)
    t_start = time.perf_counter()

    def say(msg):
        print(f"[{time.perf_counter() - t_start:6.1f} s] {msg}", flush=True)

    torch.set_num_threads(1)
    pin = {"pinned": False, "why": "--no-pin"} if args.no_pin else timing.pin(args.cpu)
    res = {"meta": meta(pin), "args": {k: (sorted(v) if isinstance(v, set) else str(v))
                                      for k, v in vars(args).items()}}
    res["meta"]["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    say(f"pinning: {pin}")
    say("1. nets: step / run latency against peers")
    tmp = tempfile.TemporaryDirectory(prefix="edgernn-bench-")
    args.workdir = Path(tmp.name)
    nets = [bench_net(n, args, say) for n in args.nets]
    if "layers" in args.parts:
        say("2. single layers: edgernn run vs RTNeural vs C yardstick (built here)")
        lib, how = yardstick.build(args.out)
        rtn = yardstick.rtneural.build(args.workdir)
        res["c_yardstick_build"], res["rtneural_build"] = how, rtn[1]
        say(f"  RTNeural: {rtn[1]}")
        res["layers"] = yardstick.bench_layers(lib, how, args.run_seconds, rtn=rtn,
                                               passes=args.passes)
    if "batch" in args.parts:
        say("3. batched streams")
        res["batch"] = bench_batch(nets, args)
    if "start" in args.parts:
        say("4. cold and warm start (fresh processes)")
        res["start"] = bench_start(nets, args, say)
    if "threads" in args.parts:
        say("5. two threads vs serial (both CPUs)")
        res["threads"] = bench_threads(nets, args, pin)
    for r in nets:
        del r["_models"], r["_paths"]
    tmp.cleanup()
    res["nets"] = nets
    res["meta"]["loadavg_end"] = os.getloadavg()
    res["meta"]["wall_s"] = time.perf_counter() - t_start
    res["targets"] = latency_report.targets(res)
    latency_report.print_all(res)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "step_latency.json").write_text(json.dumps(res, indent=1, default=str))
    try:
        latency_report.plot(res, args.out / "step_latency.png")
    except ImportError as exc:
        say(f"no PNG: {exc}")
    say(f"wrote {args.out / 'step_latency.json'} and {args.out / 'step_latency.png'}")


if __name__ == "__main__":
    main()
