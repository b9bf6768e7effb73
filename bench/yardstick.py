"""Single GRU/LSTM layers: edgernn ``run`` per step vs RTNeural and a plain C loop.

    .venv/bin/python bench/yardstick.py       # the six layers alone (about a minute)

Three runtimes step the same layers in the same run, each checked against torch
first (max |diff| over 256 steps <= 1e-4, or it is not timed and the row says why):

- edgernn ``Stream.run``;
- RTNeural (:mod:`rtneural`): built in this run from ``shared/third_party`` with
  ``-O3 -march=native``, its compile-time ``ModelT`` of each size, ``forward()``
  stepped in a C loop; skipped, with the reason, without a C++ compiler or the tarball;
- the C yardstick (``bench/c/rnn_step.c``), built here with the system C compiler
  (``cc -O3 -march=native``, falling back to ``-mcpu=native`` and then to plain
  ``-O3``) into ``bench/out/``.

Every runtime gets the same torch-initialised weights (``torch.manual_seed(0)``)
and inputs and is called through one call per sequence of T steps (the loop over
time is native), T chosen per runtime so that a call takes about 1 ms. Timing is
in interleaved passes: each pass times every layer, and within a layer every
runtime in a rotating order, each after a warm-up; a pass's figure is the median
thread CPU time per step of its calls (the wall time is kept too, ``*_wall_ns``).
A row's figure is the median over passes, and its ratios (``edgernn_over_rtneural``,
``edgernn_over_c``) are the medians of the per-pass ratios, with every pass's
ratio kept: sub-microsecond layers drift by up to 2x between runs of a shared
machine, a ratio within one pass does much less. RTNeural's figures of
``shared/BENCH.md`` (another run) are kept only as context (``rtneural_bench_md_ns``).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rtneural
import timing
import torch

import edgernn

HERE = Path(__file__).resolve().parent
SRC = HERE / "c" / "rnn_step.c"

#: RTNeural, Eigen backend, -O3 -march=native, ns per forward(): BENCH.md (low, high);
#: context only, the targets use RTNeural built in the same run
RTNEURAL_NS = {("GRU", 16, 32): (138, 154), ("GRU", 42, 96): (1209, 1311),
               ("GRU", 64, 256): (7299, 7504), ("LSTM", 16, 32): (154, 172),
               ("LSTM", 42, 96): (1607, 1736), ("LSTM", 64, 256): (9665, 11085)}
TOL = 1e-4          # max |diff| vs torch over the checked steps (fast tanh: < 3e-7 per op)
CHECK_STEPS = 256


def build(out_dir: Path) -> tuple[Path | None, str]:
    """Compile the yardstick; returns (library path or None, how it was built or why not)."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None, "no C compiler (cc, gcc, clang) on PATH"
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / "librnn_step.so"
    errors = []
    for arch in (["-march=native"], ["-mcpu=native"], []):
        cmd = [cc, "-O3", *arch, "-shared", "-fPIC", "-o", str(lib), str(SRC), "-lm"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode == 0:
            return lib, " ".join([Path(cc).name, "-O3", *arch, "-shared -fPIC", SRC.name])
        errors.append(res.stderr.strip().splitlines()[-1:] or ["?"])
    return None, f"{cc} failed: {errors}"


TILE = 32  # rows per weight panel, as in rnn_step.c


def pack(w: np.ndarray) -> np.ndarray:
    """float32[n, K] -> panels of TILE rows, ``P[p, k, r] = w[p * TILE + r, k]`` (zero-padded)."""
    n, k = w.shape
    n_pad = -(-n // TILE) * TILE
    wp = np.zeros((n_pad, k), np.float32)
    wp[:n] = w
    return np.ascontiguousarray(wp.reshape(n_pad // TILE, TILE, k).transpose(0, 2, 1))


class CLayer:
    """One GRU/LSTM layer run by the C yardstick (weights in torch layout)."""

    def __init__(self, lib: Path, kind: str, w_ih, w_hh, b_ih, b_hh):
        self.kind, self.H, self.I = kind, w_hh.shape[1], w_ih.shape[1]
        self._dll = ctypes.CDLL(str(lib))
        self._fn = self._dll.gru_run if kind == "GRU" else self._dll.lstm_run
        self._fn.restype = ctypes.c_int
        keep = [pack(w_ih), pack(w_hh), np.ascontiguousarray(b_ih, np.float32),
                np.ascontiguousarray(b_hh, np.float32)]
        self._keep = keep
        self.h = np.zeros(self.H, np.float32)
        self.c = np.zeros(self.H, np.float32)
        self.work = np.zeros(8 * self.H + 2 * TILE, np.float32)
        self._w = [a.ctypes.data for a in keep]

    def reset(self):
        self.h[:] = 0
        self.c[:] = 0

    def run(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """xs float32[T, I] -> ys float32[T, H] (state carried across calls)."""
        T = xs.shape[0]
        ptr = ctypes.c_void_p
        state = [ptr(self.h.ctypes.data)] + ([ptr(self.c.ctypes.data)] if self.kind == "LSTM"
                                              else [])
        self._fn(*[ptr(a) for a in self._w], self.I, self.H, T, ptr(xs.ctypes.data),
                 ptr(ys.ctypes.data), *state, ptr(self.work.ctypes.data))
        return ys


def _layer(kind, i, h, steps, lib, lib_reason, rtn, rtn_reason) -> tuple[dict, dict]:
    """A row with each runtime's max |diff| vs torch, and ``{runtime: (run(xs), T)}`` for
    those that passed (``run`` steps a chunk of T inputs)."""
    mod, w = rtneural.torch_layer(kind, i, h)
    xs = np.random.default_rng(0).standard_normal((steps, i)).astype(np.float32)
    with torch.no_grad():
        ref = mod(torch.from_numpy(xs[:CHECK_STEPS]))[0].numpy()
    row = {"layer": f"{kind} {i}->{h}", "rtneural_bench_md_ns": list(RTNEURAL_NS[kind, i, h])}
    stream = edgernn.Model([getattr(edgernn, kind)(*w)]).stream()
    row["edgernn_max_abs_diff_vs_torch"] = float(np.abs(
        stream.run(xs[:CHECK_STEPS]) - ref).max())
    runs = {"edgernn": stream.run}
    ys = np.empty((steps, h), np.float32)
    if lib is None:
        row["c_skipped"] = lib_reason
    else:
        cl = CLayer(lib, kind, *w)
        diff = row["c_max_abs_diff_vs_torch"] = float(np.abs(
            cl.run(xs[:CHECK_STEPS], ys[:CHECK_STEPS]) - ref).max())
        if diff > TOL:
            row["c_skipped"] = f"outputs differ from torch by {diff:.2e} > {TOL}"
        else:
            cl.reset()
            runs["c"] = lambda a, cl=cl: cl.run(a, ys[:len(a)])
    if rtn is None:
        row["rtneural_skipped"] = rtn_reason
    else:
        rl = rtneural.RTNeuralLayer(rtn, kind, *w)
        diff = row["rtneural_max_abs_diff_vs_torch"] = rtneural.max_diff_vs_torch(
            rl, mod, xs[:CHECK_STEPS])
        if diff > TOL:
            row["rtneural_skipped"] = f"outputs differ from torch by {diff:.2e} > {TOL}"
        else:
            ys2 = np.empty((steps, h), np.float32)
            runs["rtneural"] = lambda a, rl=rl: rl.run(a, ys2[:len(a)])
    calls = {}
    for k, f in runs.items():
        T = timing.chunk_for(f, xs)
        calls[k] = (functools.partial(f, xs[:T]), T)
    return row, calls


def bench_layers(lib: Path | None, lib_reason: str, min_seconds: float = 0.4,
                 steps: int = 4096, rtn: tuple[Path | None, str] = (None, "not built"),
                 passes: int = 5) -> list[dict]:
    """One row per size of :data:`rtneural.SIZES`: ns per step of edgernn ``run``, RTNeural
    and the C yardstick, and the ratios (median over ``passes`` interleaved passes, see
    the module docstring).

    Parameters
    ----------
    lib, lib_reason : the C yardstick from :func:`build` (None: the reason it is missing).
    min_seconds : each runtime's timed seconds per layer, over all passes, x 2.
    rtn : RTNeural's library and how it was built, from :func:`rtneural.build`.
    """
    layers = [_layer(k, i, h, steps, lib, lib_reason, *rtn) for k, i, h in rtneural.SIZES]
    per = 2 * min_seconds / passes
    got = [{k: {"cpu": [], "wall": []} for k in calls} for _, calls in layers]
    for p in range(passes):
        for (_, calls), acc in zip(layers, got, strict=True):
            names = list(calls)
            names = names[p % len(names):] + names[:p % len(names)]
            med = timing.interleaved_calls({k: calls[k][0] for k in names}, 1, per, min_reps=9)
            for k in names:
                for clock in ("cpu", "wall"):
                    acc[k][clock].append(med[clock][k] / calls[k][1] * 1e9)
    rows = []
    for (row, calls), acc in zip(layers, got, strict=True):
        row["passes"] = passes
        for k, key in (("edgernn", "edgernn_run"), ("c", "c"), ("rtneural", "rtneural")):
            if k in acc:
                row[f"{key}_ns"] = float(np.median(acc[k]["cpu"]))
                row[f"{key}_wall_ns"] = float(np.median(acc[k]["wall"]))
                row[f"{key}_steps_per_call"] = calls[k][1]
        for k in ("c", "rtneural"):
            if k in acc:
                per_pass = [e / o for e, o in zip(acc["edgernn"]["cpu"], acc[k]["cpu"],
                                                  strict=True)]
                row[f"edgernn_over_{k}"] = float(np.median(per_pass))
                row[f"edgernn_over_{k}_passes"] = per_pass
        lo, hi = row["rtneural_bench_md_ns"]
        row["edgernn_over_rtneural_bench_md"] = row["edgernn_run_ns"] / ((lo + hi) / 2)
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=0.5,
                    help="min_seconds of bench_layers (each runtime is timed 2x this per layer)")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args(argv)
    import latency_report

    torch.set_num_threads(1)
    res = {"meta": timing.cpu_meta()}
    res["meta"]["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    lib, res["c_yardstick_build"] = build(args.out)
    with tempfile.TemporaryDirectory(prefix="edgernn-rtneural-") as tmp:
        rtn = rtneural.build(Path(tmp))
        res["rtneural_build"] = rtn[1]
        res["layers"] = bench_layers(lib, res["c_yardstick_build"], args.seconds,
                                     rtn=rtn, passes=args.passes)
    res["targets"] = latency_report.targets(res)
    m = res["meta"]
    m["loadavg_end"] = os.getloadavg()
    print(f"{m['cpu']} ({m['machine']}; {' '.join(m['flags'])}), CPUs {m['affinity']} of "
          f"{m['cpus']}; load average {m['loadavg_start'][0]:.1f} at start, "
          f"{m['loadavg_end'][0]:.1f} at end")
    latency_report.print_layers(res)
    for t in res["targets"]:
        ok = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        print(f"{t['target']}: {latency_report._f(t['value'])} (<= {t['limit']}) {ok}"
              f"{'  (' + t['detail'] + ')' if t['detail'] else ''}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "yardstick.json").write_text(json.dumps(res, indent=1, default=str))
    print(f"wrote {args.out / 'yardstick.json'}")


if __name__ == "__main__":
    main()
