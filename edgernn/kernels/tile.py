"""Register-tiled multiply-accumulate micro-kernels, written as LLVM vector IR.

Numba leaves LLVM's SLP vectoriser off, so scalar accumulators are never packed
into vector registers, and accumulators kept in an array are reloaded on every
column (they may alias the input). These kernels are therefore emitted directly
as portable LLVM IR on ``<8 x float>`` vectors (one AVX register, two NEON
registers) with ``llvm.fma``, which every target lowers to its own SIMD:

    D[0:R] += Wp[:, 0:K1].T @ X1[0:K1] + Wp[:, K1:K1+K2].T @ X2[0:K2]

for a tile of ``R = 8 * nvec`` output rows. ``Wp`` is the tile's *panel*: column
``c`` holds the R weights of that input in rows order, contiguous
(``Wp[c * R + j]`` = weight of row j, input c). Columns are split into two
interleaved phases (even and odd columns accumulate separately and are added at
the end) so that ``2 * nvec`` independent FMA chains hide the FMA latency.

The summation order is fixed by the code, not by the vector width, and
``llvm.fma`` rounds once: results are bit-identical on x86-64 and aarch64.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

VEC = 8        # float32 lanes per LLVM vector
PHASES = 2     # interleaved column phases

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_F32 = ir.FloatType()
_VTY = ir.VectorType(_F32, VEC)


def _elem_ptr(context, builder, aryty, ary, off):
    a = context.make_array(aryty)(context, builder, ary)
    return builder.gep(a.data, [off])


def _emit_mac(nvec):
    rows = VEC * nvec

    def codegen(context, builder, sig, args):
        W, wo, K1, X1, xo1, K2, X2, xo2, D, do = args
        t = sig.args
        wp = _elem_ptr(context, builder, t[0], W, wo)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_VTY, [_VTY] * 3), f"llvm.fma.v{VEC}f32")
        zero = ir.Constant(_VTY, [0.0] * VEC)
        undef = ir.Constant(_VTY, ir.Undefined)
        splat = ir.Constant(ir.VectorType(_I32, VEC), [0] * VEC)
        accs = [cgutils.alloca_once_value(builder, zero) for _ in range(nvec * PHASES)]

        def column(xp, c, wcol, phase):
            xv = builder.load(builder.gep(xp, [c]))
            xb = builder.shuffle_vector(builder.insert_element(undef, xv, ir.Constant(_I32, 0)),
                                        undef, splat)
            base = builder.mul(wcol, ir.Constant(_I64, rows))
            for v in range(nvec):
                p = builder.gep(wp, [builder.add(base, ir.Constant(_I64, v * VEC))])
                wv = builder.load(builder.bitcast(p, _VTY.as_pointer()), align=4)
                acc = accs[phase * nvec + v]
                builder.store(builder.call(fma, [wv, xb, builder.load(acc)]), acc)

        def segment(xp, K, col0):
            pairs = builder.udiv(K, ir.Constant(_I64, PHASES))
            with cgutils.for_range(builder, pairs) as loop:
                c = builder.mul(loop.index, ir.Constant(_I64, PHASES))
                for ph in range(PHASES):
                    cc = builder.add(c, ir.Constant(_I64, ph))
                    column(xp, cc, builder.add(col0, cc), ph)
            start = builder.mul(pairs, ir.Constant(_I64, PHASES))
            with cgutils.for_range_slice(builder, start, K, ir.Constant(_I64, 1),
                                         inc=True) as (c, _):
                column(xp, c, builder.add(col0, c), 0)

        segment(_elem_ptr(context, builder, t[3], X1, xo1), K1, ir.Constant(_I64, 0))
        segment(_elem_ptr(context, builder, t[6], X2, xo2), K2, K1)
        dp = _elem_ptr(context, builder, t[8], D, do)
        for v in range(nvec):
            s = builder.load(accs[v])
            for ph in range(1, PHASES):
                s = builder.fadd(s, builder.load(accs[ph * nvec + v]))
            p = builder.bitcast(builder.gep(dp, [ir.Constant(_I64, v * VEC)]),
                                _VTY.as_pointer())
            builder.store(builder.fadd(builder.load(p, align=4), s), p, align=4)
        return context.get_dummy_value()

    return codegen


def _typer(nvec):
    def typer(typingctx, W, wo, K1, X1, xo1, K2, X2, xo2, D, do):
        for a in (W, X1, X2, D):
            if not (isinstance(a, types.Array) and a.dtype == types.float32):
                return None
        return types.void(W, wo, K1, X1, xo1, K2, X2, xo2, D, do), _emit_mac(nvec)
    typer.__name__ = typer.__qualname__ = f"mac{VEC * nvec}"
    return typer


#: ``mac32(W, wo, K1, X1, xo1, K2, X2, xo2, D, do)``: a tile of 32 rows (offsets: uint64)
mac32 = intrinsic(_typer(4))
#: the same for a tile of 8 rows
mac8 = intrinsic(_typer(1))

TILE = 32
TAIL = 8
