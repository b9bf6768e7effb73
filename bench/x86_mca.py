"""Instruction counts and a static throughput ESTIMATE of the x86-64 AVX2 inner loops.

No AVX2-only machine was at hand (the figures of ``bench/step_latency.py`` run under
``bench/as_avx2.sh`` time the AVX2 code on an AVX-512 core). This gives the other
half of the evidence: the hot loop of the int8 tile on the ``avx2`` path and of the
float tile, both compiled for AMD Zen 3 (AVX2 + FMA, no AVX-512) by the kernels' own
codegen, counted per 16 MACs and fed to ``llvm-mca -mcpu=znver3`` (and ``haswell``,
Intel's first AVX2 core). The method is ``bench/aarch64_mca.py``'s (read its
docstring): ESTIMATE, a static model of the pipeline, every load an L1 hit.

    .venv/bin/python bench/x86_mca.py [--iterations 500] [--out docs/bench/x86_mca.json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from aarch64_mca import inner_loop, llvm_mca, tile_asm

from edgernn.kernels import tile, tile_i8

TRIPLE = "x86_64-unknown-linux-gnu"
#: Zen 3's features, as bench/as_avx2.sh gives them to Numba
ZEN3 = re.search(r'NUMBA_CPU_FEATURES="([^"]+)"',
                 (Path(__file__).parent / "as_avx2.sh").read_text()).group(1)
MODELS = ("znver3", "haswell")
#: mnemonic -> multiply-accumulates per instruction on ymm registers
_MACS = {r"vfmadd\d+ps": 8, r"vpmaddwd": 16, r"vpmaddubsw": 32}


def macs(loop) -> int:
    n = 0
    for ins in loop:
        op = ins.split()[0]
        if "%ymm" in ins:
            n += next((v for k, v in _MACS.items() if re.fullmatch(k, op)), 0)
    return n


def run_mca(mca, loop, model, iterations):
    out = subprocess.run([mca, "-mtriple=x86_64", f"-mcpu={model}", f"-iterations={iterations}"],
                         input="\n".join(loop) + "\n", capture_output=True, text=True,
                         check=True).stdout
    field = {k: float(v) for k, v in re.findall(r"^(\w[\w ]*\w):\s+([\d.]+)$", out, re.M)}
    return field["Total Cycles"] / field["Iterations"]


def measure(kernel, mca, iterations):
    which, asm = tile_asm(kernel, "znver3", "avx2" if kernel == "int8" else None, TRIPLE, ZEN3)
    loop = inner_loop(asm, comment="#", branch=("j",))
    n = macs(loop)
    whole = 4 * tile_i8.ROWS if kernel == "int8" else tile.TILE
    if n == 0 or n % whole:
        raise ValueError(f"{kernel}: the loop found does {n} MACs, not a multiple of {whole}")
    per16 = 16 / n
    row = {"kernel": kernel, "path": which, "loop_macs": n,
           "instructions_per_16_macs": round(len(loop) * per16, 2),
           "widenings_per_16_macs": round(sum(x.startswith("vpmovsx") for x in loop) * per16, 2),
           "mca_cycles_per_16_macs": {m: round(run_mca(mca, loop, m, iterations) * per16, 3)
                                      for m in MODELS} if mca else {},
           "loop": loop}
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1]
                                         / "docs" / "bench" / "x86_mca.json"))
    args = ap.parse_args(argv)
    mca = llvm_mca()
    if mca is None:
        print("x86_mca: expected llvm-mca (apt-get install llvm-22), found none",
              file=sys.stderr)
        return 2
    rows = [measure(k, mca, args.iterations) for k in ("int8", "float")]
    print("ESTIMATE (static model, no AVX2-only CPU), per 16 MACs, compiled for znver3:")
    for r in rows:
        est = ", ".join(f"llvm-mca {m} {c:.2f} cycles"
                        for m, c in r["mca_cycles_per_16_macs"].items())
        print(f"  {r['kernel']} {r['path']}: {r['instructions_per_16_macs']:g} instructions "
              f"(widenings {r['widenings_per_16_macs']:g}); {est}")
    Path(args.out).write_text(json.dumps({"ESTIMATE": "llvm-mca static model", "rows": rows},
                                         indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
