"""Register-tiled multiply-accumulate micro-kernels, written as LLVM vector IR.

Numba leaves LLVM's SLP vectoriser off, so scalar accumulators are never packed
into vector registers, and accumulators kept in an array are reloaded on every
column (they may alias the input). These kernels are therefore emitted directly
as portable LLVM IR on ``<VEC x float>`` vectors with ``llvm.fma``, which every
target lowers to its own SIMD (VEC 16 on AVX-512, else 8: one AVX or two NEON
registers):

    D[0:R] += Wp[:, 0:K1].T @ X1[0:K1] + Wp[:, K1:K1+K2].T @ X2[0:K2]

for a tile of ``R`` output rows (32, or 8 for a tail). ``Wp`` is the tile's
*panel*: column ``c`` holds the R weights of that input in row order,
contiguous (``Wp[c * R + j]`` = weight of row j, input c). Columns are split
into two interleaved phases (even and odd columns accumulate separately and
are added at the end) so that independent FMA chains hide the FMA latency. Each
even column prefetches the weights ``PREFETCH`` columns ahead into L1 (layers whose
weights sit in L2 are bound by that bandwidth).
``mac32x4`` runs four streams per weight load (batches, on AVX-512, whose 32
registers hold their 16 accumulators; the rest of a group of streams goes one by one:
a two-stream variant saved little there and cost 0.17 s of compile time). Elsewhere
(AVX2's 16 registers, NEON's 32 of half the width) ``mac16x2`` runs two streams per
weight load on half a 32-row tile: 16 accumulators. The Pi 4's one load a cycle makes
the one-stream tile load-bound (llvm-mca's ESTIMATE for the Cortex-A72: 4.76 against
4.01 cycles per 16 MACs, ``bench/aarch64_mca.py``); on AVX2 code timed on a Xeon it
saves about 3% of a batch's step.

Every output lane sums in an order fixed by the code, whatever the vector
width or the number of streams, and ``llvm.fma`` rounds once: results are
bit-identical on x86-64 and aarch64, alone or in a batch.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

PHASES = 2     # interleaved column phases
#: columns ahead whose weights each even column prefetches into L1: +10-11% on L2-resident
#: layers (GRU/LSTM 64->256, LSTM 42->96 ``run`` on a Xeon, 3 alternating runs), none on
#: small ones (``PREFETCH`` 16 and 64, and every column, did no better)
PREFETCH = 32

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_F32 = ir.FloatType()
_I8P = ir.IntType(8).as_pointer()


def _elem_ptr(context, builder, aryty, ary, off):
    a = context.make_array(aryty)(context, builder, ary)
    return builder.gep(a.data, [off])


def _emit_mac(rows, nstreams, ntiles=1, cstride=None):
    """Codegen of ``rows`` output rows for ``nstreams`` streams sharing each weight load;
    with ``ntiles`` > 1, one stream and that many consecutive tiles of ``rows`` sharing
    each input load (their panels ``tstride`` floats apart). ``cstride``: floats from
    one column of the panel to the next (``rows``, or a wider tile's when these rows
    are part of it).

    Arguments: ``W, wo, K1, K2, S`` then per stream ``x1, x2, y`` (offsets into S), then
    ``tstride`` when ``ntiles`` > 1.
    """
    vec = min(VEC, rows)
    cstride = cstride or rows
    vty = ir.VectorType(_F32, vec)
    nvec = rows // vec * ntiles        # vectors of a column, tile by tile

    def codegen(context, builder, sig, args):
        W, wo, K1, K2, S = args[:5]
        t = sig.args
        wp = _elem_ptr(context, builder, t[0], W, wo)
        tstride = args[8] if ntiles > 1 else ir.Constant(_I64, 0)

        def at(v):   # offset of vector v of a column within the tiles (plus the column's)
            tile, part = divmod(v, rows // vec)
            return builder.add(builder.mul(tstride, ir.Constant(_I64, tile)),
                               ir.Constant(_I64, part * vec))
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty] * 3), f"llvm.fma.v{vec}f32")
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [_I8P, _I32, _I32, _I32]),
            "llvm.prefetch.p0")
        zero = ir.Constant(vty, [0.0] * vec)
        undef = ir.Constant(vty, ir.Undefined)
        splat = ir.Constant(ir.VectorType(_I32, vec), [0] * vec)
        streams = [args[5 + 3 * i: 8 + 3 * i] for i in range(nstreams)]
        accs = [[cgutils.alloca_once_value(builder, zero) for _ in range(nvec * PHASES)]
                for _ in range(nstreams)]

        def column(seg, c, wcol, phase):
            base = builder.mul(wcol, ir.Constant(_I64, cstride))
            wvs = []
            for v in range(nvec):
                p = builder.gep(wp, [builder.add(base, at(v))])
                wvs.append(builder.load(builder.bitcast(p, vty.as_pointer()), align=4))
            if phase == 0:  # the column PREFETCH ahead into L1 (read, keep: no effect on bits)
                ahead = builder.add(base, ir.Constant(_I64, PREFETCH * cstride))
                for tile in range(ntiles):
                    for line in range(max(1, rows * 4 // 64)):
                        p = builder.gep(wp, [builder.add(ahead, at(
                            tile * (rows // vec) + line * 16 // vec))])
                        builder.call(prefetch, [builder.bitcast(p, _I8P), ir.Constant(_I32, 0),
                                                ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
            for st, acc in zip(streams, accs, strict=True):
                xp = _elem_ptr(context, builder, t[4], S, st[seg])
                xv = builder.load(builder.gep(xp, [c]))
                xb = builder.shuffle_vector(
                    builder.insert_element(undef, xv, ir.Constant(_I32, 0)), undef, splat)
                for v in range(nvec):
                    a = acc[phase * nvec + v]
                    builder.store(builder.call(fma, [wvs[v], xb, builder.load(a)]), a)

        def segment(seg, K, col0):
            pairs = builder.udiv(K, ir.Constant(_I64, PHASES))
            with cgutils.for_range(builder, pairs) as loop:
                c = builder.mul(loop.index, ir.Constant(_I64, PHASES))
                for ph in range(PHASES):
                    cc = builder.add(c, ir.Constant(_I64, ph))
                    column(seg, cc, builder.add(col0, cc), ph)
            start = builder.mul(pairs, ir.Constant(_I64, PHASES))
            with cgutils.for_range_slice(builder, start, K, ir.Constant(_I64, 1),
                                         inc=True) as (c, _):
                column(seg, c, builder.add(col0, c), 0)

        segment(0, K1, ir.Constant(_I64, 0))
        segment(1, K2, K1)
        for st, acc in zip(streams, accs, strict=True):
            dp = _elem_ptr(context, builder, t[4], S, st[2])
            for v in range(nvec):
                s = builder.load(acc[v])
                for ph in range(1, PHASES):
                    s = builder.fadd(s, builder.load(acc[ph * nvec + v]))
                p = builder.bitcast(builder.gep(dp, [ir.Constant(_I64, v * vec)]),
                                    vty.as_pointer())   # the tiles' rows are consecutive
                builder.store(builder.fadd(builder.load(p, align=4), s), p, align=4)
        return context.get_dummy_value()

    return codegen


def _arrays_ok(W, S):
    return all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (W, S))


def _typer1(rows):
    def typer(typingctx, W, wo, K1, K2, S, x1, x2, y):
        if not _arrays_ok(W, S):
            return None
        return types.void(W, wo, K1, K2, S, x1, x2, y), _emit_mac(rows, 1)
    typer.__name__ = typer.__qualname__ = f"mac{rows}"
    return typer


def _typer4(rows):
    def typer(typingctx, W, wo, K1, K2, S, x1, x2, y, x1b, x2b, yb, x1c, x2c, yc, x1d, x2d,
              yd):
        if not _arrays_ok(W, S):
            return None
        return (types.void(W, wo, K1, K2, S, x1, x2, y, x1b, x2b, yb, x1c, x2c, yc, x1d,
                           x2d, yd), _emit_mac(rows, 4))
    typer.__name__ = typer.__qualname__ = f"mac{rows}x4"
    return typer


def _typer2(rows, cstride):
    def typer(typingctx, W, wo, K1, K2, S, x1, x2, y, x1b, x2b, yb):
        if not _arrays_ok(W, S):
            return None
        return (types.void(W, wo, K1, K2, S, x1, x2, y, x1b, x2b, yb),
                _emit_mac(rows, 2, 1, cstride))
    typer.__name__ = typer.__qualname__ = f"mac{rows}x2"
    return typer


def _typer_tiles(rows, ntiles):
    def typer(typingctx, W, wo, K1, K2, S, x1, x2, y, tstride):
        if not _arrays_ok(W, S):
            return None
        return (types.void(W, wo, K1, K2, S, x1, x2, y, tstride),
                _emit_mac(rows, 1, ntiles))
    typer.__name__ = typer.__qualname__ = f"mac{rows}t{ntiles}"
    return typer


def _wide() -> bool:
    """True where 512-bit vectors are native (AVX-512): 16-lane vectors, and four streams
    per weight load in batches (32 vector registers hold their accumulators)."""
    from .tile_i8 import _features

    return "avx512f" in _features()


#: float32 lanes per LLVM vector: 16 (one AVX-512 register), else 8 (one AVX or two
#: NEON registers); per-lane arithmetic is the same for any width
VEC = 16 if _wide() else 8
#: streams per weight load in batched products (``mac32x4``, or ``mac16x2`` twice a tile)
STREAMS = 4 if _wide() else 2

#: ``mac32(W, wo, K1, K2, S, x1, x2, y)``: 32 rows of one stream (offsets: uint64)
mac32 = intrinsic(_typer1(32))
#: 32 rows of four streams (AVX-512 only: 16 accumulators; one weight load per 4 FMAs
#: leaves the load ports room for the four broadcasts)
mac32x4 = intrinsic(_typer4(32))
#: ``mac16x2(W, wo, K1, K2, S, x1, x2, y, x1b, x2b, yb)``: 16 rows of a 32-row tile's
#: panel for two streams (AVX2, NEON: their 16 accumulators fit in the registers)
mac16x2 = intrinsic(_typer2(16, 32))
#: 8 rows of one stream
mac8 = intrinsic(_typer1(8))
#: ``mac32t4(W, wo, K1, K2, S, x1, x2, y, tstride)``: 4 tiles of 32 rows of one stream,
#: each input loaded once for the 128 rows (AVX-512's 32 registers hold 16 accumulators)
mac32t4 = intrinsic(_typer_tiles(32, 4))
#: 3 and 2 tiles of 32 rows of one stream
mac32t3 = intrinsic(_typer_tiles(32, 3))
mac32t2 = intrinsic(_typer_tiles(32, 2))
#: 3 and 2 tail tiles of 8 rows of one stream, each input loaded once (a layer of 9-24
#: rows, e.g. a Dense head: one 8-row tile is two FMA chains, bound by their latency)
mac8t3 = intrinsic(_typer_tiles(8, 3))
mac8t2 = intrinsic(_typer_tiles(8, 2))
#: most tiles per multi-tile call for one stream (1: none; on AVX2 and NEON the
#: accumulators of several tiles would not fit in the registers)
MULTI = 4 if _wide() else 1

TILE = 32
TAIL = 8
