"""What a call into compiled code costs from Python: Numba's dispatcher against ctypes.

    taskset -c 1 .venv/bin/python bench/call_overhead.py

The question behind it (issue 19, warm start): could ``Stream.step`` call the cached
engine without importing Numba (0.2 s of the warm start, most of the 144 MB)? Only
through something like ctypes. Times an empty function of the engine's shape (an
address, two float32 vectors, a count) called 200,000 times, best of 5:

- Numba's dispatcher with the two arrays (what ``step`` does today);
- a ctypes ``CFUNCTYPE`` of the same function compiled as a ``cfunc``, given integer
  addresses cached beforehand, and given ``x.ctypes.data`` taken per call (a new input
  array every step, as users pass them);
- ``x.ctypes.data`` alone and an empty lambda (the loop's own cost, included above).
"""

from __future__ import annotations

import ctypes
import time

import numpy as np
from numba import cfunc, njit, types


@njit(nogil=True)
def _engine_like(addr, x, y, steps):
    return 0


@cfunc(types.int64(types.int64, types.voidptr, types.int64, types.voidptr, types.int64,
                   types.int64), nogil=True)
def _engine_c(addr, xp, nx, yp, ny, steps):
    return 0


def _ns_per_call(fn, n=200_000) -> float:
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e9


def main() -> None:
    x, y = np.zeros(16, np.float32), np.zeros(16, np.float32)
    _engine_like(1, x, y, 1)
    c = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                         ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)(_engine_c.address)
    xp, yp = x.ctypes.data, y.ctypes.data
    rows = {"numba dispatcher (arrays)": lambda: _engine_like(1, x, y, 1),
            "ctypes, cached addresses": lambda: c(1, xp, 16, yp, 16, 1),
            "ctypes, x.ctypes.data per call": lambda: c(1, x.ctypes.data, 16, yp, 16, 1),
            "x.ctypes.data alone": lambda: x.ctypes.data,
            "empty lambda (loop cost)": lambda: None}
    for name, fn in rows.items():
        print(f"{name:<34} {_ns_per_call(fn):7.0f} ns")


if __name__ == "__main__":
    main()
