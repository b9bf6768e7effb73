"""Cold and warm start: a fresh process imports edgernn, loads a model, steps it once.

Each measurement is a new interpreter (``sys.executable``, same CPU affinity as
the bench) with ``EDGERNN_CACHE_DIR`` set: an empty folder for a cold start (the
engine and the model's kernels compile), the folder a cold start filled for a
warm one. The child times its phases (import numpy, import edgernn,
``edgernn.load`` -- which compiles or loads the engine and the kernels the
model uses, in parallel processes when the cache is cold, see
:mod:`edgernn.engine.precompile` -- and the first ``step``) and reports its CPU time
(user + sys, its compile processes included), which a shared machine inflates
much less than wall time, its peak RSS and whether it imported numba (a warm start
from the native image does not, :mod:`edgernn.kernels.native`). When the child
imports ``edgernn.kernels.abi`` (numba compiles or loads something), it wraps
``Kernel.address`` to time each kernel compiled in its own process (by name).
:func:`warmup_breakdown` times ``edgernn.kernels.abi.kernel_address`` of every
kernel of ``precompile.every_kernel()`` one after another in a fresh process with an empty cache
(what ``edgernn warmup`` compiles, there split over the CPUs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

_HWM = r"""
import json, resource, sys, time


def hwm_mb():  # this process's peak RSS (ru_maxrss would carry the parent's over fork + exec)
    for ln in open("/proc/self/status"):
        if ln.startswith("VmHWM:"):
            return int(ln.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

_CHILD = _HWM + r"""
t0 = time.perf_counter()
import numpy as np
t_np = time.perf_counter()
import edgernn
t_imp = time.perf_counter()
kern = {}


def _time_kernels(abi):  # wrap Kernel.address to time each kernel compiled here
    prop = abi.Kernel.address

    def address(self, _get=prop.fget):
        fresh = getattr(self, "_cfunc", None) is None
        a = time.perf_counter()
        v = _get(self)
        if fresh:
            kern[f"{self.fn.__module__.rsplit('.', 1)[-1]}:{self.fn.__name__}"] = \
                time.perf_counter() - a
        return v
    abi.Kernel.address = property(address)


class _Hook:  # wraps edgernn.kernels.abi if (only if) it is imported: a warm start
    def find_spec(self, name, path=None, target=None):  # from the native image does not
        if name != "edgernn.kernels.abi":
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            try:
                _time_kernels(module)
            except Exception as exc:  # the engine changed: report the phases only
                kern["unavailable"] = repr(exc)[:120]
        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Hook())
t_nat = time.perf_counter()
m = edgernn.load(sys.argv[1])  # compiles the engine and kernels (in parallel when cold)
t_load = time.perf_counter()
s = m.stream()
s.step(np.zeros(m.input_size, np.float32))
t_step = time.perf_counter()
ru, rc = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"total_s": t_step - t0, "cpu_s": ru.ru_utime + ru.ru_stime + rc.ru_utime
                  + rc.ru_stime, "peak_rss_mb": hwm_mb(), "numba": "numba" in sys.modules,
                  "phases_s": {"import numpy": t_np - t0, "import edgernn": t_imp - t_np,
                               "load (+engine, kernels)": t_load - t_nat,
                               "first step": t_step - t_load},
                  "kernels_s": kern}))
"""

_WARMUP = r"""
import json, resource, time
t0 = time.perf_counter()
import edgernn
from edgernn.engine import entry
from edgernn.engine.precompile import every_kernel
from edgernn.kernels.abi import kernel_address
out = {"import edgernn": time.perf_counter() - t0}
a = time.perf_counter(); entry.native(); out["engine entry"] = time.perf_counter() - a
for k in every_kernel()[1:]:
    a = time.perf_counter(); kernel_address(k); out[k] = time.perf_counter() - a
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"total_s": time.perf_counter() - t0, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "steps_s": out}))
"""


_NRT = r"""
import json, sys
import numpy as np
import edgernn
from numba.core.runtime import rtsys
m = edgernn.load(sys.argv[1])
s = m.stream()
x, out = np.ones(m.input_size, np.float32), np.empty(m.output_size, np.float32)
for _ in range(200):
    s.step(x, out=out)
n = int(sys.argv[2])
a = rtsys.get_allocation_stats()
for _ in range(n):
    s.step(x, out=out)
b = rtsys.get_allocation_stats()
print(json.dumps({"alloc_per_step": (b.alloc - a.alloc) / n,
                  "meminfo_alloc_per_step": (b.mi_alloc - a.mi_alloc) / n, "steps": n}))
"""


def nrt_allocations(model_path, steps: int = 10000) -> dict:
    """Numba runtime (NRT) allocations per ``step(x, out=)``, counted with NUMBA_NRT_STATS=1
    in a fresh process (C-level mallocs that tracemalloc cannot see, e.g. the MemInfo
    numba may wrap around each array argument), on numba's own entry (EDGERNN_NATIVE=0):
    the native image's entry hands raw pointers to the engine and loads no Numba
    runtime at all."""
    return _child(_NRT, [str(model_path), str(steps)], None,
                  extra={"NUMBA_NRT_STATS": "1", "EDGERNN_NATIVE": "0"})


def _child(code: str, args: list, cache_dir, timeout: float = 900, extra=None) -> dict:
    env = dict(os.environ, **(extra or {}))
    if cache_dir is not None:
        env["EDGERNN_CACHE_DIR"] = cache_dir
    env.pop("EDGERNN_INT8_PATH", None)
    res = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                         text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"child failed ({res.returncode}): {res.stderr.strip()[-400:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _summary(runs: list) -> dict:
    tot = [r["total_s"] for r in runs]
    cpu = [r["cpu_s"] for r in runs]
    out = {"median_s": float(np.median(tot)), "min_s": float(min(tot)),
           "max_s": float(max(tot)), "median_cpu_s": float(np.median(cpu)), "n": len(runs),
           "runs": runs}
    phases = [r["phases_s"] for r in runs if "phases_s" in r]
    if phases:
        out["median_phases_s"] = {k: float(np.median([p[k] for p in phases]))
                                  for k in phases[0]}
    rss = [r["peak_rss_mb"] for r in runs if "peak_rss_mb" in r]
    if rss:
        out["median_peak_rss_mb"] = float(np.median(rss))
    return out


_PEER = _HWM + r"""
import numpy as np
kind, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if kind == "litert":
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
else:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    sess.run(None, {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape],
                                     np.float32) for i in sess.get_inputs()})
print(json.dumps({"total_s": time.perf_counter() - t0,
                  "peak_rss_mb": hwm_mb()}))
"""


def peer_rss(kind: str, path, repeats: int = 3) -> dict:
    """Peak RSS (MB) and seconds of a fresh process that imports ``kind`` ("litert" or
    "onnxruntime"), loads ``path`` and runs it once: the peers of the warm start."""
    runs = [_child(_PEER, [kind, str(path)], None) for _ in range(repeats)]
    return {"median_peak_rss_mb": float(np.median([r["peak_rss_mb"] for r in runs])),
            "median_s": float(np.median([r["total_s"] for r in runs])), "n": len(runs)}


def start_times(model_path, cold_repeats: int, warm_repeats: int, progress=print) -> dict:
    """Cold (each in a new empty cache folder) and warm starts of ``model_path``."""
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="edgernn-bench-cache-") as root:
        for i in range(cold_repeats):
            d = os.path.join(root, f"c{i}")
            progress(f"  cold start {i + 1}/{cold_repeats} (empty EDGERNN_CACHE_DIR)")
            cold.append(_child(_CHILD, [str(model_path)], d))
        for _ in range(warm_repeats):
            warm.append(_child(_CHILD, [str(model_path)], os.path.join(root, "c0")))
    return {"cold": _summary(cold), "warm": _summary(warm)}


def warmup_breakdown() -> dict:
    """Seconds of each step of ``edgernn warmup`` in a fresh process, empty cache."""
    with tempfile.TemporaryDirectory(prefix="edgernn-bench-cache-") as d:
        return _child(_WARMUP, [], d)


def main(argv=None) -> int:
    """``python bench/startup.py MODEL.ernn``: one start in a fresh process (with the
    ``EDGERNN_CACHE_DIR`` of the environment: empty -> cold, filled -> warm), one line."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    ap.add_argument("model")
    r = _child(_CHILD, [ap.parse_args(argv).model], None)
    print(f"{r['total_s']:.2f} s (CPU {r['cpu_s']:.2f} s): " + ", ".join(
        f"{k} {v:.2f}" for k, v in r["phases_s"].items()) + "; kernels: " + ", ".join(
        f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in r["kernels_s"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
