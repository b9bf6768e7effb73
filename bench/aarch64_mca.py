"""Instruction counts and a static throughput ESTIMATE of the aarch64 inner loops (no Pi).

What it measures: the hot inner loop of

- the int8 tile (``edgernn/kernels/tile_i8.py``) on the path each Raspberry Pi CPU
  compiles: Cortex-A72 (Pi 4, ARMv8.0, no dot product: ``neon``, smull/sadalp) and
  Cortex-A76 (Pi 5, ``sdot``); on the Cortex-A72 also the portable ``generic`` path,
  the one it took before ``neon`` (``TABLE``);
- the float tile (``kernels/tile.py``'s ``mac32``: the f32 FMA loop of every float
  matrix-vector product) on both, and a batch's two-stream tile (``mac16x2``: two
  streams share each weight load, 16 rows of a 32-row panel a call) as ``float x2``.

How: the tile's LLVM IR is built by the kernels' own codegen functions (the ones
their Numba intrinsics call; the path and the vector width chosen by the kernels'
own feature tests, given the CPU's features), for aarch64 with llvmlite's LLVM:
that CPU's target machine, Numba's O3 pipeline, assembly out. The loop over pairs
of input groups (int8) or columns (float) is cut out of the assembly, its
instructions counted by kind and fed to ``llvm-mca``. Every figure is per 16 MACs
(multiply-accumulates, counted from the loop's multiply instructions and lanes).

ESTIMATE: llvm-mca is a static model of the core's pipeline (LLVM's scheduling
tables; every load hits L1, no front-end stalls), not a measurement on a Pi.
LLVM 22 models the Cortex-A72 and the Cortex-A76 alike, with its Cortex-A57
tables (the three give identical figures), so the Pi 5 is also given under
``neoverse-n1`` (the A76's server twin, which has a model of its own).

    .venv/bin/python bench/aarch64_mca.py [--iterations 500] [--out docs/bench/aarch64_mca.json]

Needs llvm-mca: ``apt-get install llvm-22`` (the LLVM of llvmlite 0.50; Debian 12's
``llvm``, 14, also runs, but models the Neoverse N1 with the A57 tables too). The
newest ``llvm-mca-NN`` found is used, ``$LLVM_MCA`` overrides; ``--no-mca`` gives
the instruction counts alone. On this machine's own target the same compile gives
the very loop Numba's JIT gives (``tests/test_aarch64_codegen.py`` checks it).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from llvmlite import binding as llb
from llvmlite import ir
from numba import types
from numba.core import config
from numba.core.llvm_bindings import create_pass_builder
from numba.core.registry import cpu_target

from edgernn.kernels import tile, tile_i8

TRIPLE = "aarch64-unknown-linux-gnu"
#: CPU -> (board, the features Numba reports there that the kernels test, llvm-mca models)
CPUS = {
    "cortex-a72": ("Raspberry Pi 4", "+neon,+fp-armv8,+crc", ("cortex-a72",)),
    "cortex-a76": ("Raspberry Pi 5", "+neon,+fp-armv8,+crc,+lse,+rcpc,+dotprod",
                   ("cortex-a76", "neoverse-n1")),
}
#: instruction kinds counted (regular expressions on the mnemonic); the rest is "other"
KINDS = {
    "sdot": r"[su]dot", "smull": r"[su]mull2?", "smlal": r"[su]mlal2?", "sadalp": r"[su]adalp",
    "saddw": r"[su]add[wl]2?", "fmla": r"fmla", "mul/mla": r"mul|mla", "load": r"ld\w*",
    "store": r"st\w*", "widen": r"[su]shll2?|[su]xtl2?", "narrow": r"xtn2?",
    "shuffle": r"uzp[12]|zip[12]|trn[12]|ext|dup|tbl|ins|mov", "add": r"add\w*|sub\w*",
    "branch": r"b(\.\w+)?|cbn?z|tbn?z",
}
#: the table's rows: (kernel, CPU, int8 path forced or None for the CPU's own choice)
TABLE = [("int8", "cortex-a72", None), ("int8", "cortex-a72", "generic"),
         ("float", "cortex-a72", None), ("float x2", "cortex-a72", None),
         ("int8", "cortex-a76", None), ("float", "cortex-a76", None),
         ("float x2", "cortex-a76", None)]
#: always reported, zero or not
MAIN = ("smull", "smlal", "sadalp", "sdot", "fmla", "load", "store")
_MUL = re.compile(r"^([su]dot|[su]mull2?|[su]mlal2?|mla|mul|fmla)\s+v\d+\.(\d+)([bhsd])")


@contextmanager
def _as_cpu(features):
    """The kernels' feature tests (``tile_i8.path``, ``tile._wide``) see ``features``."""
    saved = config.CPU_FEATURES, os.environ.pop("EDGERNN_INT8_PATH", None)
    config.CPU_FEATURES = features
    try:
        yield
    finally:
        config.CPU_FEATURES = saved[0]
        if saved[1] is not None:
            os.environ["EDGERNN_INT8_PATH"] = saved[1]


def _kernel(kernel, features, which=None):
    """(path name, numba signature, codegen) of ``kernel`` ("int8", "float" or "float x2")."""
    with _as_cpu(features):
        if kernel == "int8":
            which = which or tile_i8.path()
            a8, u8 = types.Array(types.int8, 1, "C"), types.Array(types.uint8, 1, "C")
            a32 = types.Array(types.int32, 1, "C")
            sig = types.void(a8, types.int64, types.int64, u8, types.int64, a32, types.int64)
            return which, sig, tile_i8._emit(which)
        vec = 16 if tile._wide() else 8
    f32, u64 = types.Array(types.float32, 1, "C"), types.uint64
    two = kernel == "float x2"
    sig = types.void(f32, u64, u64, u64, f32, *[u64] * (6 if two else 3))
    saved, tile.VEC = tile.VEC, vec       # tile.VEC is this machine's width, read by _emit_mac
    try:
        if two:
            return f"f32x{vec}", sig, tile._emit_mac(16, 2, 1, tile.TILE)
        return f"f32x{vec}", sig, tile._emit_mac(tile.TILE, 1)
    finally:
        tile.VEC = saved


def tile_asm(kernel, cpu, which=None, triple=TRIPLE, features=None):
    """(path name, assembly) of a 32-row tile of ``kernel`` compiled for ``cpu``.

    ``which`` forces an int8 path (default: the one the CPU's features choose);
    ``features`` (LLVM's ``+a,-b`` form) default to ``CPUS[cpu]``'s.
    """
    features = CPUS[cpu][1] if features is None else features
    which, sig, codegen = _kernel(kernel, features, which)
    ctx = cpu_target.target_context
    mod = ir.Module(f"{kernel}_tile")
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [ctx.get_value_type(t)
                                                          for t in sig.args]), "tile")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    codegen(ctx, builder, sig, list(fn.args))
    builder.ret_void()
    llb.initialize_all_targets()
    llb.initialize_all_asmprinters()
    tm = llb.Target.from_triple(triple).create_target_machine(cpu=cpu, features=features,
                                                               opt=config.OPT)
    m = llb.parse_assembly(str(mod))
    m.triple, m.data_layout = triple, str(tm.target_data)
    m.verify()
    pb = create_pass_builder(tm, opt=config.OPT, loop_vectorize=config.LOOP_VECTORIZE,
                             slp_vectorize=config.SLP_VECTORIZE)
    pb.getModulePassManager().run(m, pb)
    return which, tm.emit_assembly(m)


def inner_loop(asm, comment="//", branch=("b", "cb", "tb")):
    """The instructions of the largest loop of ``asm`` (label to its backward branch).

    ``comment`` and ``branch`` (mnemonic prefixes) are aarch64's; x86's are "#", ("j",).
    """
    lines = [ln.split(comment)[0].strip() for ln in asm.splitlines()]
    labels = {ln[:-1]: i for i, ln in enumerate(lines) if re.fullmatch(r"\.LBB\w+:", ln)}
    best = []
    for i, ln in enumerate(lines):
        target = ln.split()[-1] if ln.startswith(branch) else None
        if target in labels and labels[target] < i:
            body = [x for x in lines[labels[target]:i + 1] if x and not x.startswith(".")]
            best = max(best, body, key=len)
    if not best:
        raise ValueError("no loop found in the assembly")
    return best


def macs(loop):
    """Multiply-accumulates in ``loop``: lanes of each multiply (x4 for a dot product)."""
    n = 0
    for ins in loop:
        m = _MUL.match(ins)
        if m:
            n += int(m.group(2)) * (4 if m.group(1).endswith("dot") else 1)
    return n


def kind(ins):
    op = ins.split()[0]
    for name, pattern in KINDS.items():
        if re.fullmatch(pattern, op):
            return name
    return "other"


def llvm_mca():
    """Path of the newest llvm-mca on this machine, or None."""
    if os.environ.get("LLVM_MCA"):
        return os.environ["LLVM_MCA"]
    found = sorted(glob.glob("/usr/bin/llvm-mca-[0-9]*"), key=lambda p: int(p.rsplit("-", 1)[1]))
    return found[-1] if found else shutil.which("llvm-mca")


def run_mca(mca, loop, model, iterations):
    """llvm-mca's (cycles per iteration, block reverse throughput) of ``loop`` on ``model``."""
    out = subprocess.run([mca, "-mtriple=aarch64", f"-mcpu={model}",
                          f"-iterations={iterations}"], input="\n".join(loop) + "\n",
                         capture_output=True, text=True, check=True).stdout
    field = {k: float(v) for k, v in re.findall(r"^(\w[\w ]*\w):\s+([\d.]+)$", out, re.M)}
    return field["Total Cycles"] / field["Iterations"], field["Block RThroughput"]


def measure(kernel, cpu, mca, iterations, which=None):
    """One row of the table: ``kernel`` on ``cpu`` (figures per 16 MACs), int8 on the
    path ``which`` (default: the one the CPU's features choose)."""
    which, asm = tile_asm(kernel, cpu, which)
    loop = inner_loop(asm)
    n = macs(loop)
    whole = 4 * tile_i8.ROWS if kernel == "int8" else tile.TILE   # a group / a column
    if n == 0 or n % whole:
        raise ValueError(f"{kernel} on {cpu}: the loop found does {n} MACs, "
                         f"not a multiple of {whole}")
    per16 = 16 / n
    counts = dict.fromkeys(MAIN, 0)
    for ins in loop:
        counts[kind(ins)] = counts.get(kind(ins), 0) + 1
    row = {"kernel": kernel, "path": which, "cpu": cpu, "board": CPUS[cpu][0],
           "loop_macs": n, "loop_instructions": len(loop),
           "instructions_per_16_macs": round(len(loop) * per16, 2),
           "per_16_macs": {k: round(v * per16, 2) for k, v in sorted(counts.items())},
           "stack_accesses_per_16_macs": round(sum("[sp" in x for x in loop) * per16, 2),
           "mca_estimate": {}, "loop": loop}
    for model in CPUS[cpu][2] if mca else ():
        cyc, rthr = run_mca(mca, loop, model, iterations)
        row["mca_estimate"][model] = {"cycles_per_16_macs": round(cyc * per16, 3),
                                      "block_rthroughput_per_16_macs": round(rthr * per16, 3)}
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1]
                                         / "docs" / "bench" / "aarch64_mca.json"))
    ap.add_argument("--no-mca", action="store_true", help="instruction counts only")
    args = ap.parse_args(argv)
    mca = None
    if not args.no_mca:
        mca = llvm_mca()
        if mca is None:
            print("aarch64_mca: expected llvm-mca (apt-get install llvm-22), found none;"
                  " --no-mca gives the counts alone", file=sys.stderr)
            return 2
    rows = [measure(k, c, mca, args.iterations, w) for k, c, w in TABLE]
    mca_version = None
    if mca:
        mca_version = subprocess.run([mca, "--version"], capture_output=True,
                                     text=True).stdout.split("\n")[0].strip()
    doc = {"ESTIMATE": "static model (llvm-mca), no Raspberry Pi: instruction counts are "
                       "exact for this LLVM, cycles are llvm-mca's estimate",
           "command": " ".join(["python bench/aarch64_mca.py",
                                 *(sys.argv[1:] if argv is None else argv)]),
           "llvm_codegen": ".".join(map(str, llb.llvm_version_info)),
           "llvm_mca": mca_version, "iterations": args.iterations, "rows": rows}
    print("ESTIMATE (static model, no Raspberry Pi), per 16 MACs (multiply-accumulates):")
    for r in rows:
        kinds = ", ".join(f"{k} {v:g}" for k, v in r["per_16_macs"].items() if v)
        print(f"{r['cpu']} ({r['board']}) {r['kernel']} {r['path']}: "
              f"{r['instructions_per_16_macs']:g} instructions ({kinds}; "
              f"stack {r['stack_accesses_per_16_macs']:g})")
        for model, est in r["mca_estimate"].items():
            print(f"    llvm-mca -mcpu={model}: {est['cycles_per_16_macs']:.2f} cycles "
                  f"(block reverse throughput {est['block_rthroughput_per_16_macs']:.2f})")
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
