"""Integer multiply-accumulate micro-kernel for int8 weights, written as LLVM IR.

    D[0:32] += sum_g sum_{j<4} Wp[g, r, j] * X[4g + j]        (int32, exact)

for a tile of 32 output rows: ``Wp`` is the tile's panel of int8 weights in
groups of 4 consecutive inputs per row (``Wp[(g * 32 + r) * 4 + j]``, the layout
the dot-product instructions read), ``X`` the quantised input as *unsigned*
bytes (``x_q + 128``; the caller removes ``128 * rowsum(W)``), ``G`` groups.

Five code paths, chosen when the kernel is compiled for the machine (:func:`path`);
all compute the same integers, so results are identical on every machine:

- ``vnni``: x86 AVX512-VNNI (or AVX-VNNI) ``vpdpbusd`` (unsigned x signed bytes,
  four products summed into each int32 lane);
- ``sdot``: ARMv8.2 dot product (Raspberry Pi 5) ``sdot`` on ``x_q`` (signed),
  plus ``128 * rowsum`` from the panel's tail;
- ``neon``: ARMv8.0 without dot product (Raspberry Pi 4's Cortex-A72), as ruy and
  gemmlowp do: per 16 weight bytes (4 rows x 4 inputs), ``smull`` and ``smull2``
  by the splatted ``x_q`` (``ld2r`` loads two groups' words), 2 x 8 exact int16
  products, summed in pairs into int32 by ``sadalp`` (never two products in int16:
  ``-128 * -128 * 2`` overflows it); 16 accumulators hold two lanes per row,
  added (``addp``) once per tile, plus ``128 * rowsum``. About 4.9 instructions
  per 16 MACs, no spills (``bench/aarch64_mca.py``);
- ``avx2``: x86 AVX2 without VNNI: the weights are kept as int16 (sign-extended
  when the model is loaded: twice the bytes of int8, half of float32), the input
  bytes zero-extended, and ``vpmaddwd`` (int16 pairs multiplied and summed into int32:
  exact, as ``|w x| <= 128 * 255``, unlike ``vpmaddubsw``'s saturating int16 sums)
  reads the weights straight from memory: 8 per group of 128 MACs, against 16 FMAs
  for float32. (Widening int8 weights at each step, ``vpmovsxbw``, took the shuffle
  port as often and left int8 no faster than float.) Eight accumulators keep two
  partial sums per row; the pairs are added once per tile;
- ``generic``: portable IR: bytes widened to int16, multiplied, summed in pairs
  (x86 lowers it to ``pmaddwd``; AArch64 to ``smull``/``smlal`` amid
  ``sshll``/``xtn``/``uzp`` shuffles and accumulator spills).

``neon-ir`` is the ``neon`` path's arithmetic in portable IR (LLVM does not make
``sadalp`` of it), never chosen, only forced: it lets an x86 machine check the
``neon`` path's sums. ``EDGERNN_INT8_PATH=<path>`` forces a path this CPU can run
(tests use it to check that every path gives the same results); any other value is
refused. The panel of a tile is ``32 * 4 * G`` weights (bytes each:
:func:`edgernn.kernels.spec.qlinalg.weight_bytes`) followed by ``128 * rowsum`` as 32
int32 (used by the ``sdot`` and ``neon`` paths).
"""

import os

from llvmlite import binding as llb
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic

from ..errors import EdgeRNNError
from .spec.qlinalg import ROWS

_I8, _I16, _I32, _I64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)


def _features() -> set:
    if config.CPU_FEATURES:
        feats = config.CPU_FEATURES
    elif config.CPU_NAME == "generic":
        feats = ""
    else:
        return {k for k, v in llb.get_host_cpu_features().items() if v}
    return {f[1:] for f in feats.split(",") if f.startswith("+")}


#: every path, in the order of preference; ``neon-ir`` (portable IR, any CPU) is only
#: ever forced
PATHS = ("vnni", "sdot", "neon", "avx2", "generic", "neon-ir")


def _aarch64() -> bool:
    return llb.get_process_triple().startswith(("aarch64", "arm64"))


def _runs_here(name: str, feats: set) -> bool:
    if name in ("vnni", "avx2") and _aarch64():
        return False
    if name == "vnni":
        return "avx512vnni" in feats and "avx512bw" in feats or "avxvnni" in feats
    if name == "sdot":
        return "dotprod" in feats
    if name == "neon":  # NEON (AdvSIMD) is in every ARMv8-A Linux CPU
        return "neon" in feats or _aarch64()
    if name == "avx2":
        return "avx2" in feats
    return True


def path() -> str:
    """The int8 code path this machine compiles (see module docstring).

    ``EDGERNN_INT8_PATH`` forces one; a name not in :data:`PATHS`, or a path this
    CPU cannot run, is refused (``ValueError``) rather than left to crash the compiler.
    """
    forced = os.environ.get("EDGERNN_INT8_PATH")
    feats = _features()
    if forced:
        if forced not in PATHS or not _runs_here(forced, feats):
            runs = [p for p in PATHS if _runs_here(p, feats)]
            raise ValueError(f"EDGERNN_INT8_PATH: expected one of {', '.join(runs)} "
                             f"(the int8 paths this CPU runs), got {forced!r}")
        return forced
    return next(p for p in PATHS if _runs_here(p, feats))  # generic at the latest


def checked_path() -> str:
    """:func:`path`, a bad ``EDGERNN_INT8_PATH`` raised as an :class:`EdgeRNNError` (one
    line from the CLI); called before anything int8 compiles, not inside the compiler."""
    try:
        return path()
    except ValueError as exc:
        raise EdgeRNNError(str(exc)) from None


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
        base = builder.mul(g, ir.Constant(_I64, 2 * 4 * ROWS))   # int16 weights
        for part in range(8):  # 4 rows x 4 inputs a part: lanes (2r, 2r+1) hold row r
            wv = builder.load(builder.bitcast(builder.gep(wp, [builder.add(
                base, ir.Constant(_I64, 32 * part))]), v16.as_pointer()), align=1)
            a = accs[part]
            builder.store(builder.add(builder.load(a), builder.call(pmadd, [wv, x16])), a)
    even = ir.Constant(ir.VectorType(_I32, 8), list(range(0, 16, 2)))
    odd = ir.Constant(ir.VectorType(_I32, 8), list(range(1, 16, 2)))
    for half in range(4):  # parts 2h, 2h+1 -> rows 8h .. 8h+7
        lo, hi = builder.load(accs[2 * half]), builder.load(accs[2 * half + 1])
        s = builder.add(builder.shuffle_vector(lo, hi, even), builder.shuffle_vector(lo, hi, odd))
        p = builder.bitcast(builder.gep(dp, [ir.Constant(_I64, 8 * half)]), v8.as_pointer())
        builder.store(builder.add(builder.load(p, align=4), s), p, align=4)


def _neon_ops(builder, native):
    """(smull, saddlp): AArch64's intrinsics, or the same arithmetic in portable IR."""
    v8i8, v8i16, v4i32 = ir.VectorType(_I8, 8), ir.VectorType(_I16, 8), ir.VectorType(_I32, 4)
    if native:
        mod = builder.module
        smull = cgutils.get_or_insert_function(mod, ir.FunctionType(v8i16, [v8i8, v8i8]),
                                               "llvm.aarch64.neon.smull.v8i16")
        saddlp = cgutils.get_or_insert_function(mod, ir.FunctionType(v4i32, [v8i16]),
                                                "llvm.aarch64.neon.saddlp.v4i32.v8i16")
        return (lambda a, b: builder.call(smull, [a, b])), (lambda p: builder.call(saddlp, [p]))

    def smull_ir(a, b):  # int16 products of int8s are exact: |w x| <= 128 * 128
        return builder.mul(builder.sext(a, v8i16), builder.sext(b, v8i16))

    def saddlp_ir(p):
        p32 = builder.sext(p, ir.VectorType(_I32, 8))
        ev, od = ([builder.shuffle_vector(p32, p32, ir.Constant(v4i32, list(range(k, 8, 2))))
                   for k in (0, 1)])
        return builder.add(ev, od)

    return smull_ir, saddlp_ir


def _neon_tile(builder, wp, xp, G, dp, native):
    """The ``neon`` (``native``) and ``neon-ir`` paths: ``D[0:32] += ...`` (module docstring).

    Part ``p`` of a group (16 bytes: rows 4p .. 4p+3, 4 inputs each) times the group's
    ``x_q`` (4 signed bytes, splatted): ``smull`` of the low 8 bytes, ``smull2`` of the
    high 8, each 8 exact int16 products, summed in pairs into int32 (``sadalp``) in
    ``acc[2p]`` (rows 4p, 4p+1: two lanes each) and ``acc[2p + 1]`` (rows 4p+2, 4p+3).
    """
    smull, saddlp = _neon_ops(builder, native)
    v16, v4 = ir.VectorType(_I8, 16), ir.VectorType(_I32, 4)
    halves = [ir.Constant(ir.VectorType(_I32, 8), list(range(k, k + 8))) for k in (0, 8)]
    accs = [cgutils.alloca_once_value(builder, ir.Constant(v4, None)) for _ in range(16)]
    flip = ir.Constant(v16, [0x80] * 16)                        # u8 -> s8 (x_q)

    def x_splat(g):
        xw = builder.load(builder.bitcast(builder.gep(xp, [builder.mul(
            g, ir.Constant(_I64, 4))]), _I32.as_pointer()), align=1)
        return builder.xor(builder.bitcast(_splat(builder, xw, 4, _I32), v16), flip)

    def group(g, xv):
        base = builder.mul(g, ir.Constant(_I64, 4 * ROWS))
        for part in range(8):
            wv = builder.load(builder.bitcast(builder.gep(wp, [builder.add(
                base, ir.Constant(_I64, 16 * part))]), v16.as_pointer()), align=1)
            for h, idx in enumerate(halves):
                prod = smull(builder.shuffle_vector(wv, wv, idx),
                             builder.shuffle_vector(xv, xv, idx))
                a = accs[2 * part + h]
                builder.store(builder.add(builder.load(a), saddlp(prod)), a)

    if native:  # ld2r: two groups' x words, each in every lane, opaque to LLVM (so the
        # high halves stay high halves and smull2 needs no ext of the weights)
        ld2r = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.LiteralStructType([v4, v4]), [_I32.as_pointer()]), "llvm.aarch64.neon.ld2r.v4i32.p0")
    pairs = builder.udiv(G, ir.Constant(_I64, 2))
    with cgutils.for_range(builder, pairs) as loop:
        g = builder.mul(loop.index, ir.Constant(_I64, 2))
        g1 = builder.add(g, ir.Constant(_I64, 1))
        if native:
            both = builder.call(ld2r, [builder.bitcast(builder.gep(xp, [builder.mul(
                g, ir.Constant(_I64, 4))]), _I32.as_pointer())])
            xs = [builder.xor(builder.bitcast(builder.extract_value(both, k), v16), flip)
                  for k in (0, 1)]
        else:
            xs = [x_splat(g), x_splat(g1)]
        group(g, xs[0])
        group(g1, xs[1])
    with cgutils.for_range_slice(builder, builder.mul(pairs, ir.Constant(_I64, 2)), G,
                                 ir.Constant(_I64, 1), inc=True) as (g, _):
        group(g, x_splat(g))
    tail = builder.gep(wp, [builder.mul(G, ir.Constant(_I64, 4 * ROWS))])   # 128 * rowsum
    for part in range(8):  # addp: rows 4p .. 4p+3 in order
        lo, hi = builder.load(accs[2 * part]), builder.load(accs[2 * part + 1])
        s = builder.add(*[builder.shuffle_vector(lo, hi, ir.Constant(v4, list(range(k, 8, 2))))
                          for k in (0, 1)])
        rs = builder.gep(tail, [ir.Constant(_I64, 16 * part)])
        s = builder.add(s, builder.load(builder.bitcast(rs, v4.as_pointer()), align=1))
        p = builder.bitcast(builder.gep(dp, [ir.Constant(_I64, 4 * part)]), v4.as_pointer())
        builder.store(builder.add(builder.load(p, align=4), s), p, align=4)


def _emit(which, ntiles=1, nstreams=1):
    """Codegen of ``ntiles`` consecutive tiles (panels ``tstride`` bytes apart, rows
    consecutive in ``D``) for one stream, or of one tile for ``nstreams`` streams (each
    its own ``xo``, ``do``). On the ``vnni`` path in one loop: several tiles share each
    input word (more independent ``vpdpbusd`` chains: their 5-cycle latency, not the
    ports, bounds one tile), several streams each weight load (the load ports bound a
    batch); elsewhere one tile or stream after the other. The same integers either way.

    Arguments: ``W, wo, G, X, xo, D, do``, then ``tstride`` (tiles) or ``xo, do`` of
    each further stream."""
    def codegen(context, builder, sig, args):
        W, wo, G, X, xo, D, do = args[:7]
        t = sig.args
        if (ntiles > 1 or nstreams > 1) and which != "vnni":
            one, sig1 = _emit(which), sig.replace(args=t[:7])
            for k in range(ntiles):
                wok = builder.add(wo, builder.mul(args[7], ir.Constant(_I64, k)))
                dok = builder.add(do, ir.Constant(_I64, k * ROWS))
                one(context, builder, sig1, [W, wok, G, X, xo, D, dok])
            for k in range(1, nstreams):
                one(context, builder, sig1, [W, wo, G, X, args[5 + 2 * k], D, args[6 + 2 * k]])
            return context.get_dummy_value()
        wp = builder.gep(context.make_array(t[0])(context, builder, W).data, [wo])
        xps = [builder.gep(context.make_array(t[3])(context, builder, X).data, [o])
               for o in [xo] + [args[5 + 2 * k] for k in range(1, nstreams)]]
        dps = [builder.gep(context.make_array(t[5])(context, builder, D).data, [o])
               for o in [do] + [args[6 + 2 * k] for k in range(1, nstreams)]]
        xp, dp = xps[0], dps[0]
        tstride = args[7] if ntiles > 1 else ir.Constant(_I64, 0)
        if which == "avx2":
            _avx2_tile(builder, wp, xp, G, dp)
            return context.get_dummy_value()
        if which in ("neon", "neon-ir"):
            _neon_tile(builder, wp, xp, G, dp, native=which == "neon")
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
        units = nparts * ntiles            # weight vectors per group
        part_ty = acc_ty if which == "generic" else ir.VectorType(_I32, lanes)
        zero = ir.Constant(part_ty, None)
        accs = [[cgutils.alloca_once_value(builder, zero) for _ in range(units * nstreams)]
                for _ in range(2)]

        def group(g, phase):
            base = builder.mul(g, ir.Constant(_I64, 4 * ROWS))
            xws = [builder.load(builder.bitcast(builder.gep(x, [builder.mul(
                g, ir.Constant(_I64, 4))]), _I32.as_pointer()), align=1) for x in xps]
            if which == "generic":
                p = builder.bitcast(builder.gep(wp, [base]), ir.VectorType(_I8, 4 * ROWS)
                                    .as_pointer())
                a = accs[phase][0]
                builder.store(_generic_group(builder, builder.load(a), builder.load(
                    p, align=1), xws[0]), a)
                return
            if which == "sdot":
                xw = builder.xor(xws[0], ir.Constant(_I32, 0x80808080))   # u8 -> s8 (x_q)
                xvs = [builder.bitcast(_splat(builder, xw, 4, _I32), ir.VectorType(_I8, 16))]
            else:
                xvs = [_splat(builder, xw, 16, _I32) for xw in xws]
            for u in range(units):
                tile, part_ = divmod(u, nparts)
                off = builder.add(builder.add(base, builder.mul(tstride, ir.Constant(
                    _I64, tile))), ir.Constant(_I64, part_ * 4 * lanes))
                wty = ir.VectorType(_I8, 16) if which == "sdot" else ir.VectorType(_I32, 16)
                wv = builder.load(builder.bitcast(builder.gep(wp, [off]), wty.as_pointer()),
                                  align=1)
                for k, xv in enumerate(xvs):
                    a = accs[phase][k * units + u]
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
        for k, dpk in enumerate(dps):
            for u in range(units):
                s = builder.add(builder.load(accs[0][k * units + u]),
                                builder.load(accs[1][k * units + u]))
                if which == "sdot":  # + 128 * rowsum, stored after the tile's weights
                    rs = builder.gep(wp, [builder.add(builder.mul(G, ir.Constant(
                        _I64, 4 * ROWS)), ir.Constant(_I64, u * 4 * lanes))])
                    s = builder.add(s, builder.load(builder.bitcast(rs, part_ty.as_pointer()),
                                                    align=1))
                p = builder.bitcast(builder.gep(dpk, [ir.Constant(_I64, u * lanes)]),
                                    part_ty.as_pointer())
                builder.store(builder.add(builder.load(p, align=4), s), p, align=4)
        return context.get_dummy_value()

    return codegen


def _ok(W, X, D):
    return (isinstance(W, types.Array) and W.dtype == types.int8
            and isinstance(X, types.Array) and X.dtype in (types.uint8, types.int8)
            and isinstance(D, types.Array) and D.dtype == types.int32)


def _mac_typer(which):
    def mac_i8(typingctx, W, wo, G, X, xo, D, do):
        """``D[do:do+32] += panel(W at wo, G groups) @ X[xo:xo+4G]`` (module docstring)."""
        if not _ok(W, X, D):
            return None
        return types.void(W, wo, G, X, xo, D, do), _emit(which or path())
    return mac_i8


def _mac2_typer(which, ntiles=2):
    def mac_i8x2(typingctx, W, wo, G, X, xo, D, do, tstride):
        """``ntiles`` tiles: ``D[do:do+32]`` by the panel at ``wo``, ``D[do+32:do+64]`` by
        the one at ``wo + tstride``, ..."""
        if not _ok(W, X, D):
            return None
        return types.void(W, wo, G, X, xo, D, do, tstride), _emit(which or path(), ntiles)
    mac_i8x2.__name__ = mac_i8x2.__qualname__ = f"mac_i8x{ntiles}"
    return mac_i8x2


def _mac4s_typer(which):
    def mac_i8s4(typingctx, W, wo, G, X, xo, D, do, xo2, do2, xo3, do3, xo4, do4):
        """One tile for four streams: ``D[do_k:do_k+32] += panel @ X[xo_k:xo_k+4G]``."""
        if not _ok(W, X, D):
            return None
        return (types.void(W, wo, G, X, xo, D, do, xo2, do2, xo3, do3, xo4, do4),
                _emit(which or path(), 1, 4))
    return mac_i8s4


#: the tile on this machine's path (:func:`path`, read when it is first compiled)
mac_i8 = intrinsic(_mac_typer(None))
#: ``mac_i8x2(W, wo, G, X, xo, D, do, tstride)``: two consecutive tiles
mac_i8x2 = intrinsic(_mac2_typer(None))
#: three consecutive tiles (a layer with an odd number of tiles ends with three)
mac_i8x3 = intrinsic(_mac2_typer(None, 3))
#: ``mac_i8s4(W, wo, G, X, xo, D, do, xo2, do2, xo3, do3, xo4, do4)``: one tile, four streams
mac_i8s4 = intrinsic(_mac4s_typer(None))


def mac_i8_for(which: str, ntiles: int = 1, nstreams: int = 1):
    """The tile (``ntiles`` 2 or 3: :data:`mac_i8x2`, :data:`mac_i8x3`; ``nstreams`` 4:
    :data:`mac_i8s4`)
    compiled for path ``which``: Numba keeps one typing of an intrinsic per process, so
    a test that checks several forced paths in one process takes each its own."""
    if nstreams == 4:
        return intrinsic(_mac4s_typer(which))
    return intrinsic(_mac2_typer(which, ntiles) if ntiles > 1 else _mac_typer(which))
