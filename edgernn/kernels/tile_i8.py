"""Integer multiply-accumulate micro-kernel for int8 weights, written as LLVM IR.

    D[0:32] += sum_g sum_{j<4} Wp[g, r, j] * X[4g + j]        (int32, exact)

for a tile of 32 output rows: ``Wp`` is the tile's panel of int8 weights in
groups of 4 consecutive inputs per row (``Wp[(g * 32 + r) * 4 + j]``, the layout
the dot-product instructions read), ``X`` the quantised input as *unsigned*
bytes (``x_q + 128``; the caller removes ``128 * rowsum(W)``), ``G`` groups.

Four code paths, chosen when the kernel is compiled for the machine; all
compute the same integers, so results are identical on every machine:

- ``vnni``: x86 AVX512-VNNI (or AVX-VNNI) ``vpdpbusd`` (unsigned x signed bytes,
  four products summed into each int32 lane);
- ``avx2``: x86 AVX2 without VNNI: the weights sign-extended to int16
  (``vpmovsxbw``), the input bytes zero-extended, ``vpmaddwd`` (int16 pairs
  multiplied and summed into int32: exact, as ``|w x| <= 128 * 255``, unlike
  ``vpmaddubsw``'s saturating int16 sums). Eight accumulators keep two partial
  sums per row; the pairs are added once per tile;
- ``sdot``: ARMv8.2 dot product (Raspberry Pi 5) ``sdot`` on ``x_q`` (signed),
  plus ``128 * rowsum`` from the panel's tail;
- ``generic``: portable IR: bytes widened to int16, multiplied, summed in pairs
  (x86 lowers it to ``pmaddwd``; AArch64 without dot product -- the Pi 4's
  Cortex-A72 -- to ``smull``/``smlal`` amid ``sshll``/``xtn``/``uzp`` shuffles and
  accumulator spills, no ``sadalp``: ``bench/aarch64_mca.py``).

``EDGERNN_INT8_PATH=generic`` (or ``avx2`` on an x86 with AVX2) forces that
path (tests use it to check that it gives the same results). The panel of a
tile is ``32 * 4 * G`` bytes followed by ``128 * rowsum`` as 32 int32 (used by
the ``sdot`` path).
"""

import os

from llvmlite import binding as llb
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic

ROWS = 32

_I8, _I16, _I32, _I64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)


def _features() -> set:
    if config.CPU_FEATURES:
        feats = config.CPU_FEATURES
    elif config.CPU_NAME == "generic":
        feats = ""
    else:
        return {k for k, v in llb.get_host_cpu_features().items() if v}
    return {f[1:] for f in feats.split(",") if f.startswith("+")}


def path() -> str:
    """The int8 code path this machine compiles (see module docstring)."""
    forced = os.environ.get("EDGERNN_INT8_PATH")
    if forced in ("generic", "vnni", "sdot", "avx2"):
        return forced
    feats = _features()
    if "avx512vnni" in feats and "avx512bw" in feats or "avxvnni" in feats:
        return "vnni"
    if "dotprod" in feats:
        return "sdot"
    if "avx2" in feats:
        return "avx2"
    return "generic"


def _splat(builder, value, n, ty):
    undef = ir.Constant(ir.VectorType(ty, n), ir.Undefined)
    v = builder.insert_element(undef, value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, undef, ir.Constant(ir.VectorType(_I32, n), [0] * n))


def _generic_group(builder, acc, wv, xw):
    """acc <32 x i32> += groups of 4 of (sext w) * (zext x), via int16 pairs."""
    x8 = builder.bitcast(_splat(builder, xw, ROWS, _I32), ir.VectorType(_I8, 4 * ROWS))
    x16 = builder.zext(x8, ir.VectorType(_I16, 4 * ROWS))
    w16 = builder.sext(wv, ir.VectorType(_I16, 4 * ROWS))
    half = ir.VectorType(_I32, 2 * ROWS)
    sums = []
    for par in (0, 1):
        idx = ir.Constant(ir.VectorType(_I32, 2 * ROWS), list(range(par, 4 * ROWS, 2)))
        xs = builder.sext(builder.shuffle_vector(x16, x16, idx), half)
        ws = builder.sext(builder.shuffle_vector(w16, w16, idx), half)
        sums.append(builder.mul(xs, ws))
    pairs = builder.add(sums[0], sums[1])                       # <64 x i32>: pairs summed
    q = ir.VectorType(_I32, ROWS)
    ev = builder.shuffle_vector(pairs, pairs, ir.Constant(q, list(range(0, 2 * ROWS, 2))))
    od = builder.shuffle_vector(pairs, pairs, ir.Constant(q, list(range(1, 2 * ROWS, 2))))
    return builder.add(acc, builder.add(ev, od))


def _avx2_tile(builder, wp, xp, G, dp):
    """The ``avx2`` path: ``D[0:32] += ...`` with ``vpmaddwd`` (module docstring)."""
    mod = builder.module
    v16, v8 = ir.VectorType(_I16, 16), ir.VectorType(_I32, 8)
    pmadd = cgutils.get_or_insert_function(mod, ir.FunctionType(v8, [v16, v16]),
                                           "llvm.x86.avx2.pmadd.wd")
    accs = [cgutils.alloca_once_value(builder, ir.Constant(v8, None)) for _ in range(8)]
    with cgutils.for_range(builder, G) as loop:
        g = loop.index
        xw = builder.load(builder.bitcast(builder.gep(xp, [builder.mul(
            g, ir.Constant(_I64, 4))]), _I32.as_pointer()), align=1)
        x16 = builder.zext(builder.bitcast(_splat(builder, xw, 4, _I32),
                                           ir.VectorType(_I8, 16)), v16)
        base = builder.mul(g, ir.Constant(_I64, 4 * ROWS))
        for part in range(8):  # 4 rows x 4 inputs a part: lanes (2r, 2r+1) hold row r
            wv = builder.load(builder.bitcast(builder.gep(wp, [builder.add(
                base, ir.Constant(_I64, 16 * part))]), ir.VectorType(_I8, 16).as_pointer()),
                align=1)
            a = accs[part]
            builder.store(builder.add(builder.load(a), builder.call(
                pmadd, [builder.sext(wv, v16), x16])), a)
    even = ir.Constant(ir.VectorType(_I32, 8), list(range(0, 16, 2)))
    odd = ir.Constant(ir.VectorType(_I32, 8), list(range(1, 16, 2)))
    for half in range(4):  # parts 2h, 2h+1 -> rows 8h .. 8h+7
        lo, hi = builder.load(accs[2 * half]), builder.load(accs[2 * half + 1])
        s = builder.add(builder.shuffle_vector(lo, hi, even), builder.shuffle_vector(lo, hi, odd))
        p = builder.bitcast(builder.gep(dp, [ir.Constant(_I64, 8 * half)]), v8.as_pointer())
        builder.store(builder.add(builder.load(p, align=4), s), p, align=4)


def _emit(which):
    def codegen(context, builder, sig, args):
        W, wo, G, X, xo, D, do = args
        t = sig.args
        wp = builder.gep(context.make_array(t[0])(context, builder, W).data, [wo])
        xp = builder.gep(context.make_array(t[3])(context, builder, X).data, [xo])
        dp = builder.gep(context.make_array(t[5])(context, builder, D).data, [do])
        if which == "avx2":
            _avx2_tile(builder, wp, xp, G, dp)
            return context.get_dummy_value()
        mod = builder.module
        acc_ty = ir.VectorType(_I32, ROWS)
        lanes, f = ROWS, None
        if which == "vnni":
            lanes = 16
            f = cgutils.get_or_insert_function(
                mod, ir.FunctionType(ir.VectorType(_I32, 16), [ir.VectorType(_I32, 16)] * 3),
                "llvm.x86.avx512.vpdpbusd.512")
        elif which == "sdot":
            lanes = 4
            f = cgutils.get_or_insert_function(
                mod, ir.FunctionType(ir.VectorType(_I32, 4),
                                     [ir.VectorType(_I32, 4), ir.VectorType(_I8, 16),
                                      ir.VectorType(_I8, 16)]),
                "llvm.aarch64.neon.sdot.v4i32.v16i8")
        nparts = 1 if which == "generic" else ROWS // lanes
        part_ty = acc_ty if which == "generic" else ir.VectorType(_I32, lanes)
        zero = ir.Constant(part_ty, None)
        accs = [[cgutils.alloca_once_value(builder, zero) for _ in range(nparts)]
                for _ in range(2)]

        def group(g, phase):
            xw = builder.load(builder.bitcast(builder.gep(xp, [builder.mul(
                g, ir.Constant(_I64, 4))]), _I32.as_pointer()), align=1)
            base = builder.mul(g, ir.Constant(_I64, 4 * ROWS))
            if which == "generic":
                p = builder.bitcast(builder.gep(wp, [base]), ir.VectorType(_I8, 4 * ROWS)
                                    .as_pointer())
                a = accs[phase][0]
                builder.store(_generic_group(builder, builder.load(a), builder.load(
                    p, align=1), xw), a)
                return
            if which == "sdot":
                xw = builder.xor(xw, ir.Constant(_I32, 0x80808080))   # u8 -> s8 (x_q)
                xv = builder.bitcast(_splat(builder, xw, 4, _I32), ir.VectorType(_I8, 16))
            else:
                xv = _splat(builder, xw, 16, _I32)
            for part in range(nparts):
                off = builder.add(base, ir.Constant(_I64, part * 4 * lanes))
                wty = ir.VectorType(_I8, 16) if which == "sdot" else ir.VectorType(_I32, 16)
                wv = builder.load(builder.bitcast(builder.gep(wp, [off]), wty.as_pointer()),
                                  align=1)
                a = accs[phase][part]
                args_ = [builder.load(a), wv, xv] if which == "sdot" else \
                    [builder.load(a), xv, wv]
                builder.store(builder.call(f, args_), a)

        pairs = builder.udiv(G, ir.Constant(_I64, 2))
        with cgutils.for_range(builder, pairs) as loop:
            g = builder.mul(loop.index, ir.Constant(_I64, 2))
            group(g, 0)
            group(builder.add(g, ir.Constant(_I64, 1)), 1)
        with cgutils.for_range_slice(builder, builder.mul(pairs, ir.Constant(_I64, 2)), G,
                                     ir.Constant(_I64, 1), inc=True) as (g, _):
            group(g, 0)
        for part in range(nparts):
            s = builder.add(builder.load(accs[0][part]), builder.load(accs[1][part]))
            if which == "sdot":  # + 128 * rowsum, stored after the tile's weights
                rs = builder.gep(wp, [builder.add(builder.mul(G, ir.Constant(_I64, 4 * ROWS)),
                                                  ir.Constant(_I64, part * 4 * lanes))])
                s = builder.add(s, builder.load(builder.bitcast(rs, part_ty.as_pointer()),
                                                align=1))
            p = builder.bitcast(builder.gep(dp, [ir.Constant(_I64, part * lanes)]),
                                part_ty.as_pointer())
            builder.store(builder.add(builder.load(p, align=4), s), p, align=4)
        return context.get_dummy_value()

    return codegen


@intrinsic
def mac_i8(typingctx, W, wo, G, X, xo, D, do):
    """``D[do:do+32] += panel(W at wo, G groups) @ X[xo:xo+4G]`` (see module docstring)."""
    if not (isinstance(W, types.Array) and W.dtype == types.int8
            and isinstance(X, types.Array) and X.dtype in (types.uint8, types.int8)
            and isinstance(D, types.Array) and D.dtype == types.int32):
        return None
    return types.void(W, wo, G, X, xo, D, do), _emit(path())
