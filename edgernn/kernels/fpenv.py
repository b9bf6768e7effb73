"""Denormals flushed to zero while the engine runs, and only then.

A recurrent state that decays towards zero passes through subnormal floats,
and on x86 every operation on one can take a hundred times longer: a step that
suddenly costs 100x is a latency tail. The engine therefore sets the CPU's
flush-to-zero mode on entry and restores the caller's mode on exit, as audio
code does (x86: MXCSR FTZ and DAZ; AArch64: FPCR.FZ). Other targets keep IEEE
subnormals. Results change only for values below ~1.2e-38.
"""

from llvmlite import binding as llb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_I32, _I64 = ir.IntType(32), ir.IntType(64)
_MXCSR_FTZ_DAZ = 0x8040
_FPCR_FZ = 1 << 24


def _arch() -> str:
    triple = llb.get_process_triple()
    return "x86" if triple.startswith(("x86_64", "i686")) else \
        "aarch64" if triple.startswith(("aarch64", "arm64")) else "other"


@intrinsic
def flush_denormals(typingctx):
    """Turn flush-to-zero on; returns the previous control word (0 where unsupported)."""

    def codegen(context, builder, sig, args):
        arch = _arch()
        mod = builder.module
        if arch == "x86":
            slot = cgutils.alloca_once(builder, _I32)
            st = cgutils.get_or_insert_function(mod, ir.FunctionType(ir.VoidType(), [
                ir.IntType(8).as_pointer()]), "llvm.x86.sse.stmxcsr")
            ld = cgutils.get_or_insert_function(mod, ir.FunctionType(ir.VoidType(), [
                ir.IntType(8).as_pointer()]), "llvm.x86.sse.ldmxcsr")
            p8 = builder.bitcast(slot, ir.IntType(8).as_pointer())
            builder.call(st, [p8])
            old = builder.load(slot)
            builder.store(builder.or_(old, ir.Constant(_I32, _MXCSR_FTZ_DAZ)), slot)
            builder.call(ld, [p8])
            return builder.zext(old, _I64)
        if arch == "aarch64":
            get = cgutils.get_or_insert_function(mod, ir.FunctionType(_I64, []),
                                                 "llvm.aarch64.get.fpcr")
            put = cgutils.get_or_insert_function(mod, ir.FunctionType(ir.VoidType(), [_I64]),
                                                 "llvm.aarch64.set.fpcr")
            old = builder.call(get, [])
            builder.call(put, [builder.or_(old, ir.Constant(_I64, _FPCR_FZ))])
            return old
        return ir.Constant(_I64, 0)

    return types.int64(), codegen


@intrinsic
def restore_fpenv(typingctx, saved):
    """Restore the control word :func:`flush_denormals` returned."""
    if not isinstance(saved, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        arch = _arch()
        mod = builder.module
        if arch == "x86":
            slot = cgutils.alloca_once(builder, _I32)
            builder.store(builder.trunc(args[0], _I32), slot)
            ld = cgutils.get_or_insert_function(mod, ir.FunctionType(ir.VoidType(), [
                ir.IntType(8).as_pointer()]), "llvm.x86.sse.ldmxcsr")
            builder.call(ld, [builder.bitcast(slot, ir.IntType(8).as_pointer())])
        elif arch == "aarch64":
            put = cgutils.get_or_insert_function(mod, ir.FunctionType(ir.VoidType(), [_I64]),
                                                 "llvm.aarch64.set.fpcr")
            builder.call(put, [args[0]])
        return context.get_dummy_value()

    return types.void(saved), codegen
