"""What the tile kernels become on a Raspberry Pi's CPU, read from the assembly.

Each tile's LLVM IR is built by the kernel's own codegen and compiled for aarch64
with llvmlite's LLVM (``bench/aarch64_mca.py``, which also counts the instructions
and estimates the cycles with llvm-mca; these tests need no llvm-mca). The
promises checked are the kernels' docstrings: the ``neon`` int8 path, which a
Cortex-A72 (Pi 4, no dot product) chooses, multiplies with ``smull``/``smull2`` and
sums with ``sadalp``, spilling nothing; the portable int8 path there with widening
``smull``/``smlal``; the ``sdot`` path (Pi 5) with ``sdot``; the float tile with
vector ``fmla``. Each
loop must also do the multiply-accumulates the kernel's docstring says an
iteration does: two input groups of 4 for 32 rows (int8), two columns of 32 rows
(float). And on this machine's own target, the bench's compile of the tile gives the
loop Numba's JIT gives.
"""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:  # appended: bench/serial.py must not shadow pyserial
    sys.path.append(str(BENCH))

from aarch64_mca import inner_loop, macs, tile_asm  # noqa: E402


def _loop(kernel, cpu, which=None):
    path, asm = tile_asm(kernel, cpu, which)
    loop = inner_loop(asm)
    return path, loop, [ins.split()[0] for ins in loop]


def test_tile_i8_generic_lowers_to_smull_smlal_on_cortex_a72():
    path, loop, ops = _loop("int8", "cortex-a72", "generic")
    assert path == "generic"
    assert "smull" in ops and "smlal" in ops, sorted(set(ops))
    assert not {"sdot", "udot"} & set(ops)
    assert not any(op in ("mul", "mla") for op in ops)  # no 32-bit multiplies
    assert macs(loop) == 2 * 4 * 32, "one iteration: 2 groups of 4 inputs, 32 rows"
    # every product is a widening int16 one: 4 lanes each
    assert 4 * sum(op in ("smull", "smull2", "smlal", "smlal2") for op in ops) == 256


def test_tile_i8_cortex_a72_chooses_neon_smull_smull2_sadalp_without_spills():
    path, loop, ops = _loop("int8", "cortex-a72")
    assert path == "neon"
    n = Counter(ops)
    assert n["smull"] == n["smull2"] == 2 * 8, "2 groups x 8 parts of 4 rows x 4 inputs"
    assert n["sadalp"] == 2 * 16, "each 8 int16 products summed in pairs into int32"
    assert n["ld2r"] == 1, "both groups' x words, splatted, in one load"
    # none of the generic path's widening, narrowing, shuffles; no int16 accumulation
    assert not {"smlal", "smlal2", "sshll", "sshll2", "xtn", "uzp1", "uzp2", "ext", "sdot",
                "mul", "mla"} & set(ops), sorted(set(ops))
    assert not any("[sp" in ins for ins in loop), "accumulators spilled to the stack"
    assert macs(loop) == 2 * 4 * 32
    assert len(loop) * 16 / macs(loop) <= 5, f"{len(loop)} instructions for 256 MACs"


def test_tile_i8_cortex_a76_chooses_sdot_and_lowers_to_it():
    path, loop, ops = _loop("int8", "cortex-a76")
    assert path == "sdot"
    assert ops.count("sdot") == 2 * 32 // 4, "2 groups x 32 rows, 4 rows per sdot"
    assert not any(op.startswith(("smull", "smlal", "mul", "mla")) for op in ops)
    assert macs(loop) == 256


@pytest.mark.parametrize("cpu", ["cortex-a72", "cortex-a76"])
def test_tile_f32_lowers_to_vector_fmla(cpu):
    path, loop, ops = _loop("float", cpu)
    assert path == "f32x8", "aarch64 has no 512-bit vectors: 8 lanes (two NEON registers)"
    fmla = [ins for ins in loop if ins.startswith("fmla")]
    assert len(fmla) == 2 * 32 // 4, "2 columns x 32 rows, 4 lanes per fmla"
    assert all(".4s" in ins for ins in fmla), fmla
    assert not any(op.startswith(("fmadd", "fmul", "fadd")) for op in ops)
    assert macs(loop) == 64


def test_inner_loop_takes_the_largest_loop():
    asm = """
    mov x0, #0
.LBB0_1:
    add x0, x0, #1
    b.ne .LBB0_1
.LBB0_2:
    ldr q0, [x1]
    fmla v1.4s, v0.4s, v2.s[0]
    fmla v3.4s, v0.4s, v2.s[1]
    subs x2, x2, #1
    b.ne .LBB0_2  // backward branch
    b .LBB0_9
.LBB0_9:
    ret
"""
    assert inner_loop(asm) == ["ldr q0, [x1]", "fmla v1.4s, v0.4s, v2.s[0]",
                               "fmla v3.4s, v0.4s, v2.s[1]", "subs x2, x2, #1",
                               "b.ne .LBB0_2"]
    assert macs(inner_loop(asm)) == 8
    with pytest.raises(ValueError, match="no loop"):
        inner_loop("ret\n")


_NUMBA_TILE = """
import numpy as np
from numba import njit
from edgernn.kernels.tile_i8 import mac_i8

@njit(cache=False)
def tile(W, wo, G, X, xo, D, do):
    mac_i8(W, wo, G, X, xo, D, do)

W, X, D = np.zeros(32 * 4 * 8 + 128, np.int8), np.zeros(32, np.uint8), np.zeros(32, np.int32)
tile(W, 0, 8, X, 0, D, 0)
print(tile.inspect_asm(tile.signatures[0]))
"""


def test_bench_compile_is_numbas_own_on_this_host(tmp_path):
    """The bench compiles the tile's IR as Numba does: on this machine's own target, the
    generic int8 loop it makes is the one Numba's JIT makes (the oracle)."""
    from llvmlite import binding as llb
    from numba.core.codegen import get_host_cpu_features

    env = dict(os.environ, EDGERNN_INT8_PATH="generic", NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _NUMBA_TILE], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    jitted = out.split(".Lfunc_end")[0]          # the first function: ``tile`` itself
    x86 = llb.get_process_triple().startswith("x86")
    style = {"comment": "#", "branch": ("j",)} if x86 else {}
    numba_loop = inner_loop(jitted, **style)
    _, asm = tile_asm("int8", llb.get_host_cpu_name(), "generic",
                      triple=llb.get_process_triple(), features=get_host_cpu_features())
    bench_loop = inner_loop(asm, **style)
    assert len(numba_loop) > 20, numba_loop
    assert Counter(i.split()[0] for i in bench_loop) == Counter(i.split()[0] for i in numba_loop)
