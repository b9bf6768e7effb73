"""The range of a float32 vector in vector registers, written as LLVM IR.

    vrange(S, o, n) -> (min(0, S[o:o+n]), max(0, S[o:o+n]))    NaNs skipped

Each int8 product quantises its input from this range at every step
(:mod:`edgernn.kernels.qlinalg`). Numba leaves LLVM's SLP vectoriser off, and LLVM
vectorises a min/max reduction only when told that no NaN occurs, so in Numba the
loop stays scalar. Here it runs on ``<8 x float>`` vectors (two per bound, 16 values
an iteration), each lane keeping ``v < lo ? v : lo`` (``v > hi ? v : hi``): a NaN
compares false and is skipped, as in the scalar loop. Min and max are exact, so the
order of the lanes changes nothing but the sign of a zero bound, which no scale or
zero point depends on (``max(-lo, hi)``, ``hi - lo``, ``-lo / s``).
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
LANES = 8
_V = ir.VectorType(_F32, LANES)


def _pick(builder, op, a, b):
    """``a op b ? a : b`` (``op`` "<" or ">"; false for a NaN ``a``: ``b``)."""
    return builder.select(builder.fcmp_ordered(op, a, b), a, b)


def _codegen(context, builder, sig, args):
    S, o, n = args
    base = builder.gep(context.make_array(sig.args[0])(context, builder, S).data, [o])
    zero = ir.Constant(_V, [0.0] * LANES)
    acc = {k: cgutils.alloca_once_value(builder, zero) for k in ("l0", "l1", "h0", "h1")}
    blocks = builder.udiv(n, ir.Constant(_I64, 2 * LANES))
    with cgutils.for_range(builder, blocks) as loop:
        i = builder.mul(loop.index, ir.Constant(_I64, 2 * LANES))
        for half in (0, 1):
            p = builder.gep(base, [builder.add(i, ir.Constant(_I64, half * LANES))])
            v = builder.load(builder.bitcast(p, _V.as_pointer()), align=4)
            for k, op in (("l", "<"), ("h", ">")):
                a = acc[f"{k}{half}"]
                builder.store(_pick(builder, op, v, builder.load(a)), a)
    lo = _pick(builder, "<", builder.load(acc["l0"]), builder.load(acc["l1"]))
    hi = _pick(builder, ">", builder.load(acc["h0"]), builder.load(acc["h1"]))
    bounds = []
    for vec, op in ((lo, "<"), (hi, ">")):
        s = builder.extract_element(vec, ir.Constant(_I32, 0))
        for j in range(1, LANES):
            s = _pick(builder, op, builder.extract_element(vec, ir.Constant(_I32, j)), s)
        bounds.append(cgutils.alloca_once_value(builder, s))
    start = builder.mul(blocks, ir.Constant(_I64, 2 * LANES))
    with cgutils.for_range_slice(builder, start, n, ir.Constant(_I64, 1), inc=True) as (i, _):
        v = builder.load(builder.gep(base, [i]))
        for b, op in zip(bounds, ("<", ">"), strict=True):
            builder.store(_pick(builder, op, v, builder.load(b)), b)
    return context.make_tuple(builder, sig.return_type,
                              [builder.load(bounds[0]), builder.load(bounds[1])])


@intrinsic
def vrange(typingctx, S, o, n):
    """``(min(0, S[o:o+n]), max(0, S[o:o+n]))`` of float32 ``S``, NaNs skipped
    (``o``, ``n``: uint64)."""
    if not (isinstance(S, types.Array) and S.dtype == types.float32):
        return None
    return types.UniTuple(types.float32, 2)(S, o, n), _codegen
