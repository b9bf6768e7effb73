"""RTNeural built and run here, so that single layers are compared in the same run.

    .venv/bin/python bench/rtneural.py        # build, check against torch, time the six layers

RTNeural (jatinchowdhury18/RTNeural, BSD-3, with its Eigen) is not part of this
repository: :func:`build` unpacks ``shared/third_party/RTNeural-*.tar.gz`` (or the
tarball named by ``EDGERNN_RTNEURAL_TARBALL``) into a ``tempfile.mkdtemp()``
folder, compiles ``bench/c/rtneural_harness.cpp`` against it with the C++ compiler
(``-O3 -march=native``, Eigen backend) into one shared library holding the
layers asked for (compile-time sizes: ``ModelT<float, I, H, GRULayerT<float, I, H>>``
and ``LSTMLayerT``), and deletes the unpacked sources. :class:`RTNeuralLayer` loads
one layer from torch's ``weight_ih, weight_hh, bias_ih, bias_hh`` (the harness maps
them to RTNeural's layout and gate order) and steps ``forward()`` over a sequence
in C (``run``), like edgernn's ``run`` and the C yardstick's. No C++ compiler or no
tarball: ``build`` returns ``None`` and the reason, and the bench reports it.
:mod:`yardstick` times it interleaved with edgernn and the C yardstick.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE / "c" / "rtneural_harness.cpp"
THIRD_PARTY = HERE.parent.parent / "shared" / "third_party"
#: the six sizes of issue 19 (and BENCH.md): (kind, input_size, hidden_size)
SIZES = (("GRU", 16, 32), ("GRU", 42, 96), ("GRU", 64, 256),
         ("LSTM", 16, 32), ("LSTM", 42, 96), ("LSTM", 64, 256))
KINDS = {"GRU": 0, "LSTM": 1}
FLAGS = ["-O3", "-std=c++17", "-DRTNEURAL_USE_EIGEN=1", "-DRTNEURAL_DEFAULT_ALIGNMENT=32",
         "-DEIGEN_STACK_ALLOCATION_LIMIT=0", "-shared", "-fPIC"]
TOL = 1e-4          # max |diff| vs torch before RTNeural is timed
CHECK_STEPS = 256


def cxx() -> str | None:
    """The C++ compiler on PATH (``CXX``, c++, g++, clang++), or None."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def tarball() -> Path | None:
    """RTNeural's source tarball: ``EDGERNN_RTNEURAL_TARBALL`` or shared/third_party's."""
    env = os.environ.get("EDGERNN_RTNEURAL_TARBALL")
    if env:
        return Path(env) if Path(env).is_file() else None
    found = sorted(THIRD_PARTY.glob("RTNeural-*.tar.gz"))
    return found[-1] if found else None


def build(out_dir: Path, sizes=SIZES, unpack_in: Path | None = None) -> tuple[Path | None, str]:
    """Compile the harness with ``sizes`` into ``out_dir``; the sources are unpacked into a
    ``tempfile.mkdtemp()`` folder (in ``unpack_in``, default the system's) removed after.

    Returns
    -------
    (library path, the command) or (None, why it could not be built).
    """
    cc, tar = cxx(), tarball()
    if cc is None:
        return None, "no C++ compiler (CXX, c++, g++, clang++) on PATH"
    if tar is None:
        return None, (f"no RTNeural source: expected {THIRD_PARTY}/RTNeural-*.tar.gz or "
                      f"EDGERNN_RTNEURAL_TARBALL naming a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / "librtneural_harness.so"
    layers = " ".join(f"X({KINDS[k]}, {i}, {h})" for k, i, h in sizes)
    src = Path(tempfile.mkdtemp(prefix="edgernn-rtneural-", dir=unpack_in))
    try:
        with tarfile.open(tar) as tf:
            tf.extractall(src, filter="data")
        root = next((p.parent.parent for p in src.rglob("RTNeural/RTNeural.h")), None)
        if root is None:
            return None, f"{tar.name} holds no RTNeural/RTNeural.h"
        inc = ["-I", str(root), "-I", str(root / "modules" / "Eigen")]
        errors = []
        for arch in (["-march=native"], ["-mcpu=native"]):
            cmd = [cc, *arch, *FLAGS, f"-DRTN_LAYERS={layers}", *inc, "-o", str(lib), str(SRC)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode == 0:
                return lib, (f"{Path(cc).name} {' '.join(arch + FLAGS)} {SRC.name} "
                             f"({tar.name}; {len(sizes)} layers)")
            errors.append((res.stderr.strip().splitlines() or ["?"])[-1])
        return None, f"{Path(cc).name} failed: {errors}"
    finally:
        shutil.rmtree(src, ignore_errors=True)


class RTNeuralLayer:
    """One GRU/LSTM layer run by RTNeural (weights in torch's layout and gate order).

    Parameters
    ----------
    lib : the library from :func:`build` (it must hold this kind and size).
    kind : "GRU" or "LSTM".
    w_ih, w_hh, b_ih, b_hh : float32 [G*H, I], [G*H, H], [G*H], [G*H] as torch's.
    """

    def __init__(self, lib: Path, kind: str, w_ih, w_hh, b_ih, b_hh):
        self.kind, self.H, self.I = kind, w_hh.shape[1], w_ih.shape[1]
        self._dll = dll = ctypes.CDLL(str(lib))
        ptr = ctypes.c_void_p
        dll.rtn_create.restype = ptr
        dll.rtn_create.argtypes = [ctypes.c_int] * 3
        dll.rtn_set_weights.argtypes = [ptr] * 5
        dll.rtn_reset.argtypes = [ptr]
        dll.rtn_run.argtypes = [ptr, ptr, ptr, ctypes.c_int]
        dll.rtn_free.argtypes = [ptr]
        self._h = dll.rtn_create(KINDS[kind], self.I, self.H)
        if not self._h:
            raise ValueError(f"{lib.name} was not built with {kind} {self.I}->{self.H}")
        keep = [np.ascontiguousarray(a, np.float32) for a in (w_ih, w_hh, b_ih, b_hh)]
        dll.rtn_set_weights(self._h, *[a.ctypes.data for a in keep])

    def reset(self) -> None:
        self._dll.rtn_reset(self._h)

    def run(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """xs float32[T, I] (C-contiguous) -> ys float32[T, H] (state carried across calls)."""
        assert xs.flags.c_contiguous and ys.flags.c_contiguous and len(ys) >= len(xs)
        self._dll.rtn_run(self._h, xs.ctypes.data, ys.ctypes.data, len(xs))
        return ys

    def __del__(self):
        if getattr(self, "_h", None):
            self._dll.rtn_free(self._h)
            self._h = None


def torch_layer(kind: str, i: int, h: int, seed: int = 0):
    """(torch module, (w_ih, w_hh, b_ih, b_hh) as float32 arrays), ``torch.manual_seed(seed)``."""
    import torch

    torch.manual_seed(seed)
    mod = getattr(torch.nn, kind)(i, h)
    sd = {k: v.detach().numpy() for k, v in mod.state_dict().items()}
    return mod, (sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"], sd["bias_hh_l0"])


def max_diff_vs_torch(layer: RTNeuralLayer, mod, xs: np.ndarray) -> float:
    """Max |RTNeural - torch| over ``xs`` (run in two calls: the state must carry over)."""
    import torch

    with torch.no_grad():
        ref = mod(torch.from_numpy(xs))[0].numpy()
    ys = np.empty((len(xs), layer.H), np.float32)
    half = len(xs) // 2
    layer.reset()
    layer.run(xs[:half], ys[:half])
    layer.run(xs[half:], ys[half:])
    layer.reset()
    return float(np.abs(ys - ref).max())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4096, help="input length per repeat")
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args(argv)
    import time

    with tempfile.TemporaryDirectory(prefix="edgernn-rtneural-lib-") as tmp:
        t0 = time.perf_counter()
        lib, how = build(Path(tmp))
        if lib is None:
            raise SystemExit(f"RTNeural skipped: {how}")
        print(f"built in {time.perf_counter() - t0:.1f} s: {how}")
        for kind, i, h in SIZES:
            mod, w = torch_layer(kind, i, h)
            layer = RTNeuralLayer(lib, kind, *w)
            xs = np.random.default_rng(0).standard_normal((args.steps, i)).astype(np.float32)
            diff = max_diff_vs_torch(layer, mod, xs[:CHECK_STEPS])
            assert diff <= TOL, f"{kind} {i}->{h}: RTNeural differs from torch by {diff:.2e}"
            ys = np.empty((args.steps, h), np.float32)
            ns = []
            for _ in range(args.repeats):
                c0 = time.thread_time_ns()
                layer.run(xs, ys)
                ns.append((time.thread_time_ns() - c0) / args.steps)
            print(f"{kind} {i}->{h}: max |diff| vs torch {diff:.1e} over {CHECK_STEPS} steps; "
                  f"{np.median(ns):.0f} ns per forward() (median of {args.repeats} x "
                  f"{args.steps} steps, thread CPU time)")


if __name__ == "__main__":
    main()
