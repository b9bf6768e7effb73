"""What many test files share: prerequisites handled one way, waiting, small models.

A missing prerequisite (a package, a compiler, data) skips the test with the
reason locally, and fails it under ``CI=true``: CI's own files must install it.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import edgernn


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(ok: bool, why: str) -> None:
    """Fail under CI, skip elsewhere, when a prerequisite is missing (``why`` names it)."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"missing prerequisite: {why} (CI=true: .ci/run and the dev extra must "
                    f"install it)", pytrace=False)
    pytest.skip(f"missing prerequisite: {why}", allow_module_level=True)


def need_module(name: str, why: str | None = None):
    """``importlib.import_module(name)``, or :func:`require` fails/skips naming it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        require(False, why or f"the Python package {name!r}")


def c_compiler() -> str:
    """A C compiler on PATH (cc, gcc or clang), or :func:`require` fails/skips."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    require(cc is not None, "a C compiler (cc, gcc or clang; .ci/run installs gcc)")
    return cc


def cpu_flags() -> set:
    """The CPU's flags from ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on ARM)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return set()
    return set(next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                     if ln.startswith(("flags", "Features"))), []))


def int8_paths_here() -> list[str]:
    """The int8 paths of ``edgernn.kernels.tile_i8.PATHS`` whose instructions this CPU has,
    by its flags (not through LLVM) and its machine (QEMU shows the host's flags): the
    paths a test may force here; ``bench/aarch64_check.sh`` runs the others emulated."""
    import platform

    from edgernn.kernels.tile_i8 import PATHS

    f, machine = cpu_flags(), platform.machine()
    arm, x86 = machine in ("aarch64", "arm64"), machine in ("x86_64", "AMD64")
    runs = {"vnni": x86 and ("avx512_vnni" in f and "avx512bw" in f or "avx_vnni" in f),
            "avx2": x86 and "avx2" in f, "sdot": arm and "asimddp" in f, "neon": arm}
    return [p for p in PATHS if runs.get(p, True)]


def wait_until(cond, timeout: float = 20.0, what: str = "it", poll: float = 0.005) -> bool:
    """Poll ``cond()`` until it is true (returns True); fail naming ``what`` after
    ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out after {timeout} s waiting for {what}"
        time.sleep(poll)
    return True


def weights(rng, *shape, scale: float = 0.5) -> np.ndarray:
    """Uniform float32 weights in ``[-scale, scale)``."""
    return (rng.uniform(-scale, scale, shape)).astype(np.float32)


def stack_model(rng, kind: str = "gru", n_in: int = 16, hidden: int = 32, n_out: int = 4,
                activation: str | None = None) -> edgernn.Model:
    """``kind`` ("rnn", "lstm", "gru") of ``hidden`` units on ``n_in`` inputs, then a
    Dense to ``n_out`` (random weights and biases)."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    cls = {"rnn": edgernn.RNN, "lstm": edgernn.LSTM, "gru": edgernn.GRU}[kind]
    g = gates * hidden
    cell = cls(weights(rng, g, n_in), weights(rng, g, hidden), weights(rng, g),
               weights(rng, g))
    head = edgernn.Dense(weights(rng, n_out, hidden), weights(rng, n_out), activation)
    return edgernn.Model([cell, head])


def run_child(code: str, args: list, cache, out, native: bool = True):
    """Run ``code`` in a fresh interpreter with the cache folder ``cache`` and the native
    image on or off; it must exit 0, print nothing on stderr, print a JSON line last and
    write arrays to ``out`` (``.npz``). Returns ``(that JSON, the arrays)``."""
    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = dict(os.environ, PYTHONPATH=path, EDGERNN_CACHE_DIR=str(cache),
               EDGERNN_NATIVE="1" if native else "0")
    p = subprocess.run([sys.executable, "-c", code, *map(str, args), str(out)], env=env,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stderr == "", p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1]), dict(np.load(out))


def assert_same_bits(a: dict, b: dict) -> None:
    """The same arrays under the same names, byte for byte."""
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), f"{k}: not bit-identical"
