"""The int8 tile (``edgernn/kernels/tile_i8.py``) on each path this CPU runs, against numpy.

Each path is forced (``EDGERNN_INT8_PATH``) while a fresh kernel is compiled in this
process; the oracle is an int64 matrix product of the tile's weights and input, the
panel laid out here from the module docstring. The weights reach -128 and the input
0 (``x_q = -128``): the extreme products, where an int16 pair sum would overflow.
A path needs its instructions: the CPU's flags (``/proc/cpuinfo``, read here, not
through LLVM) say which run here; the others are left to a CPU that has them
(``bench/aarch64_check.sh`` runs this file on emulated aarch64 CPUs).
"""

import platform

import numpy as np
import pytest
from numba import njit
from numba.core import config

from edgernn.kernels import tile_i8
from tests.helpers import int8_paths_here

ROWS = 32


def _panel(w: np.ndarray, which: str) -> np.ndarray:
    """int8[32, 4G] -> the tile's panel: groups of 4 inputs per row (int16 on ``avx2``,
    little-endian), then 128 * rowsum."""
    G = w.shape[1] // 4
    tail = (128 * w.astype(np.int32).sum(axis=1)).astype(np.int32)
    groups = w.reshape(ROWS, G, 4).transpose(1, 0, 2).ravel()
    if which == "avx2":
        groups = groups.astype("<i2").view(np.int8)
    return np.concatenate([groups, tail.view(np.int8)])


def _cases(rng):
    for G in (1, 2, 3, 8, 9):
        w = rng.integers(-128, 128, (ROWS, 4 * G)).astype(np.int8)
        x = rng.integers(0, 256, 4 * G).astype(np.uint8)
        yield G, w, x
    yield 5, np.full((ROWS, 20), -128, np.int8), np.zeros(20, np.uint8)
    yield 4, np.full((ROWS, 16), -128, np.int8), np.full(16, 255, np.uint8)
    yield 4, np.full((ROWS, 16), 127, np.int8), np.full(16, 255, np.uint8)


@pytest.mark.parametrize("which", int8_paths_here())
def test_mac_i8_matches_an_int64_product_on_each_path(rng, monkeypatch, which):
    monkeypatch.setenv("EDGERNN_INT8_PATH", which)
    assert tile_i8.path() == which
    mac = tile_i8.mac_i8_for(which)   # (mac_i8 itself is typed once per process)

    @njit(cache=False)
    def tile(W, wo, G, X, xo, D, do):
        mac(W, wo, G, X, xo, D, do)

    for G, w, x in _cases(rng):
        W = np.concatenate([rng.integers(-128, 128, 3).astype(np.int8), _panel(w, which)])
        X = np.concatenate([rng.integers(0, 256, 5).astype(np.uint8), x])
        D = rng.integers(-10**6, 10**6, ROWS + 7).astype(np.int32)
        want = D.astype(np.int64)
        want[7:] += w.astype(np.int64) @ x.astype(np.int64)
        tile(W, 3, G, X, 5, D, 7)
        np.testing.assert_array_equal(D, want, err_msg=f"{which}, G={G}")


@pytest.mark.parametrize("ntiles", [2, 3])
@pytest.mark.parametrize("which", int8_paths_here())
def test_several_tiles_match_an_int64_product_on_each_path(rng, monkeypatch, which, ntiles):
    """``mac_i8x2``/``mac_i8x3``: tiles ``tstride`` bytes apart (a gap between them that
    must not be read) into consecutive rows, the same integers as one ``mac_i8`` each."""
    monkeypatch.setenv("EDGERNN_INT8_PATH", which)
    macn = tile_i8.mac_i8_for(which, ntiles=ntiles)

    @njit(cache=False)
    def tiles(W, wo, G, X, xo, D, do, tstride):
        macn(W, wo, G, X, xo, D, do, tstride)

    for G, w, x in _cases(rng):
        ws = [w] + [rng.integers(-128, 128, w.shape).astype(np.int8) for _ in range(ntiles - 1)]
        panels = [_panel(wk, which) for wk in ws]
        gap = rng.integers(-128, 128, 64).astype(np.int8)
        parts = [rng.integers(-128, 128, 3).astype(np.int8)]
        for p in panels:
            parts += [p, gap]
        W = np.concatenate(parts)
        X = np.concatenate([rng.integers(0, 256, 5).astype(np.uint8), x])
        D = rng.integers(-10**6, 10**6, ntiles * ROWS + 7).astype(np.int32)
        want = D.astype(np.int64)
        for k, wk in enumerate(ws):
            want[7 + k * ROWS:7 + (k + 1) * ROWS] += wk.astype(np.int64) @ x.astype(np.int64)
        tiles(W, 3, G, X, 5, D, 7, len(panels[0]) + len(gap))
        np.testing.assert_array_equal(D, want, err_msg=f"{which}, G={G}")


@pytest.mark.parametrize("which", int8_paths_here())
def test_four_streams_match_an_int64_product_on_each_path(rng, monkeypatch, which):
    """``mac_i8s4``: one tile for four streams (inputs and outputs each at their own
    offset, out of order), the same integers as four ``mac_i8`` calls."""
    monkeypatch.setenv("EDGERNN_INT8_PATH", which)
    mac4 = tile_i8.mac_i8_for(which, nstreams=4)

    @njit(cache=False)
    def tiles(W, wo, G, X, D, xo, do):
        mac4(W, wo, G, X, xo[0], D, do[0], xo[1], do[1], xo[2], do[2], xo[3], do[3])

    for G, w, _ in _cases(rng):
        W = np.concatenate([rng.integers(-128, 128, 3).astype(np.int8), _panel(w, which)])
        xs = rng.integers(0, 256, (4, 4 * G)).astype(np.uint8)
        xo = np.array([5 + 4 * G * k for k in (2, 0, 3, 1)], np.int64)
        X = np.concatenate([rng.integers(0, 256, 5).astype(np.uint8), xs[[1, 3, 0, 2]].ravel()])
        do = np.array([7 + ROWS * k for k in (3, 1, 0, 2)], np.int64)
        D = rng.integers(-10**6, 10**6, 4 * ROWS + 7).astype(np.int32)
        want = D.astype(np.int64)
        for k in range(4):
            x = X[xo[k]:xo[k] + 4 * G].astype(np.int64)
            want[do[k]:do[k] + ROWS] += w.astype(np.int64) @ x
        tiles(W, 3, G, X, D, xo, do)
        np.testing.assert_array_equal(D, want, err_msg=f"{which}, G={G}")


@pytest.mark.parametrize("features,want", [
    ("+neon,+fp-armv8,+crc", "neon"),                          # Cortex-A72: Raspberry Pi 4
    ("+neon,+fp-armv8,+crc,+lse,+rcpc,+dotprod", "sdot"),      # Cortex-A76: Raspberry Pi 5
    ("+sse4.2,+avx,+avx2,+fma", "avx2"),
    ("+avx2,+avx512f,+avx512bw,+avx512vnni", "vnni"),
    ("+sse4.2", "generic"),
])
def test_path_follows_the_cpu_features(monkeypatch, features, want):
    monkeypatch.delenv("EDGERNN_INT8_PATH", raising=False)
    monkeypatch.setattr(config, "CPU_FEATURES", features)
    if platform.machine() in ("aarch64", "arm64") and want != "sdot":
        want = "neon"   # every aarch64 CPU has NEON, whatever LLVM reports (none under QEMU)
    assert tile_i8.path() == want


@pytest.mark.parametrize("forced", ["sdot", "neon", "avx512", "NEON"])
def test_path_refuses_a_forced_path_this_cpu_cannot_run(monkeypatch, forced):
    monkeypatch.setattr(config, "CPU_FEATURES", "+sse4.2,+avx,+avx2")
    monkeypatch.setenv("EDGERNN_INT8_PATH", forced)
    runs = "avx2"
    if platform.machine() in ("aarch64", "arm64"):  # never x86's avx2, always neon
        if forced == "neon":
            pytest.skip("every aarch64 CPU runs the neon path")
        runs = "neon"
    with pytest.raises(ValueError, match=rf"EDGERNN_INT8_PATH: expected one of {runs}, "
                                         rf"generic, neon-ir \(.*got '{forced}'"):
        tile_i8.path()
