"""Single GRU/LSTM layers: edgernn ``run`` per step vs a plain C loop and RTNeural.

The C yardstick (``bench/c/rnn_step.c``) is built here with the system C
compiler (``cc -O3 -march=native``, falling back to ``-mcpu=native`` and then
to plain ``-O3``) into ``bench/out/`` and called through ctypes, one call per
sequence of T steps (the loop over time is in C, like edgernn's ``run``).
Every runtime gets the same torch-initialised weights (``torch.manual_seed(0)``)
and inputs, and its outputs are checked against torch before it is timed;
``run`` is timed in calls of about 1 ms, as edgernn's: the figures are the median
thread CPU time per step (the wall time is kept too, ``*_wall_ns``).
RTNeural cannot be built here (no network, no C++ source), so its figures are
the ones of ``shared/BENCH.md`` (same machine class, another run): the ratio
to RTNeural is not a same-run ratio; the C yardstick's is.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch
from timing import run_per_step_us

import edgernn

HERE = Path(__file__).resolve().parent
SRC = HERE / "c" / "rnn_step.c"

#: RTNeural, Eigen backend, -O3 -march=native, ns per forward(): BENCH.md (low, high)
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


def bench_layers(lib: Path | None, lib_reason: str, min_seconds: float = 0.4,
                 steps: int = 4096) -> list[dict]:
    """One row per RTNeural size: edgernn ``run`` and C yardstick ns per step, ratios
    (:func:`timing.run_per_step_us`: median of calls of about 1 ms)."""
    rows = []
    for (kind, i, h), (lo, hi) in RTNEURAL_NS.items():
        torch.manual_seed(0)
        mod = getattr(torch.nn, kind)(i, h)
        sd = {k: v.detach().numpy() for k, v in mod.state_dict().items()}
        w = (sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"], sd["bias_hh_l0"])
        xs = np.random.default_rng(0).standard_normal((steps, i)).astype(np.float32)
        with torch.no_grad():
            ref = mod(torch.from_numpy(xs[:CHECK_STEPS]))[0].numpy()
        row = {"layer": f"{kind} {i}->{h}", "rtneural_ns": [lo, hi]}
        model = edgernn.Model([getattr(edgernn, kind)(*w)])
        stream = model.stream()
        row["edgernn_max_abs_diff_vs_torch"] = float(np.abs(
            stream.run(xs[:CHECK_STEPS]) - ref).max())
        t = run_per_step_us(stream.run, xs, min_seconds)
        row["edgernn_run_ns"], row["edgernn_run_wall_ns"] = t["cpu"] * 1e3, t["wall"] * 1e3
        if lib is None:
            row["c_skipped"] = lib_reason
        else:
            cl = CLayer(lib, kind, *w)
            ys = np.empty((steps, h), np.float32)
            row["c_max_abs_diff_vs_torch"] = float(np.abs(
                cl.run(xs[:CHECK_STEPS], ys[:CHECK_STEPS]) - ref).max())
            if row["c_max_abs_diff_vs_torch"] > TOL:
                row["c_skipped"] = (f"outputs differ from torch by "
                                    f"{row['c_max_abs_diff_vs_torch']:.2e} > {TOL}")
            else:
                cl.reset()
                t = run_per_step_us(lambda a, cl=cl, ys=ys: cl.run(a, ys[:len(a)]), xs,
                                    min_seconds)
                row["c_ns"], row["c_wall_ns"] = t["cpu"] * 1e3, t["wall"] * 1e3
                row["edgernn_over_c"] = row["edgernn_run_ns"] / row["c_ns"]
        mid = (lo + hi) / 2
        row["edgernn_over_rtneural"] = row["edgernn_run_ns"] / mid
        row["edgernn_over_rtneural_range"] = [row["edgernn_run_ns"] / hi,
                                              row["edgernn_run_ns"] / lo]
        rows.append(row)
    return rows
