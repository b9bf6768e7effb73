"""int8 matrix products: quantise a vector, multiply in integers, dequantise.

    v_q = clip(rint(v / s_v) + zp, -128, 127)           per stream, per step
    acc[r] = sum_k W_q[r, k] * (v_q[k] - zp)            int32, exact (tile_i8.py)
    y[r] += float32(acc[r]) * float32(s_w[r] * s_v)

(the arithmetic contract of :mod:`edgernn.ir.quant`). The scale ``s_v`` and zero
point come from the op's parameters (static, mode 0), or from ``v`` at each
step: mode 1 symmetric (``max|v| / 127``), mode 2 asymmetric (``min(v, 0)`` to
``max(v, 0)`` over 255 steps); mode + 8: round half away from zero; + 16 (mode 1 + 8):
``v * (127 / max|v|)`` rounded instead of the quotient (LiteRT's kernels). A scale
too small to invert (``< 1e-30``) is taken as 1: every such ``v`` quantises to
zero.

A quantised matrix in the weight arena: panels of 32-row tiles, 4 inputs per
group (:func:`pack_q8`; int8, or int16 on the ``avx2`` path), each tile followed
by ``128 * rowsum`` (int32[32]); then ``rowsum`` int32[R32] and the scales
float32[R32]; and an int32 header ``[panel, rowsum, scales, rows, K, G, tile]``
(offsets in elements of the int8, int32 and float32 views; ``tile``: bytes from one
tile's panel to the next) that op rows point to (``QM0``..``QM3``).

Per stream, scratch at ``QBUF`` (float32 offset): the two quantised vectors as
unsigned bytes (``v_q + 128``, ``G`` floats' worth each), their ``s_v`` and
``zp``, then two int32 accumulators ``[R32]``.
"""

import numpy as np
from numba import njit, types

from .abi import call_ptr, kernel, qviews
from .cache import CACHE
from .linalg import matvec
from .mathfn import strict_mul
from .minmax import vrange
from .optable import H_QMATVEC, QBUF, QM0, QM1, QP_H, QP_X, QPAR
from .spec.qlinalg import HEADER, MAX_COLS, pack_q8, qscratch_floats  # noqa: F401
from .tile_i8 import ROWS, mac_i8, mac_i8s4, mac_i8x2, mac_i8x3

U = np.uint64
_f32 = np.float32


@njit(cache=CACHE, error_model="numpy", inline="always")
def _quantize(S, B, src, K, G, q, mode, s_static, zp_static, away, out):
    """``S[src:src+K]`` -> unsigned bytes ``B[4q:4q+4G]``; ``S[out] = s``, ``S[out+1] = zp``."""
    o, n = U(src), U(K)
    s, zp, inv = s_static, zp_static, _f32(1.0)
    if mode != 0:
        lo, hi = vrange(S, o, n)   # vector registers: minmax.py
        if mode == 1:
            s = max(-lo, hi) / _f32(127.0)
            zp = _f32(0.0)
            if away >= 2 and s >= _f32(1e-30):
                inv = _f32(127.0) / max(-lo, hi)
        else:
            s = (hi - lo) / _f32(255.0)
        if not s >= _f32(1e-30):
            s = _f32(1.0)
        if mode == 2:
            zp = min(max(np.rint(_f32(-128.0) - lo / s), _f32(-128.0)), _f32(127.0))
    bo = U(4) * U(q)
    if away >= 2:   # LiteRT: times the inverse (a float32 product, rounded on its own)
        for i in range(n):
            t = strict_mul(S[o + i], inv)
            r = np.copysign(np.floor(abs(t) + _f32(0.5)), t)   # always half away
            B[bo + i] = np.uint8(np.int32(min(max(r, _f32(-128.0)), _f32(127.0))) + 128)
    else:
        for i in range(n):
            t = S[o + i] / s  # a quotient, as the contract says (LLVM made x * (1/s) one anyway)
            r = np.copysign(np.floor(abs(t) + _f32(0.5)), t) if away else np.rint(t)
            v = min(max(r + zp, _f32(-128.0)), _f32(127.0))
            B[bo + i] = np.uint8(np.int32(v) + 128)
    for i in range(n, U(4) * U(G)):
        B[bo + i] = 128
    S[U(out)] = s
    S[U(out) + U(1)] = zp


@njit(cache=CACHE, error_model="numpy")   # not inlined: its two calls share one body
def _tiles(W8, WI, S, SB, SI, A, idx, m, meta, q, zp, acc):
    """Integer products of the matrix ``meta`` with each stream's quantised vector,
    each stream's accumulators starting from ``-(128 + zp) * rowsum`` (its zero point
    at ``S[s, zp]``): they end as ``sum_k W_q[r, k] * (v_q[k] - zp)``, exactly (int32
    sums wrap the same in any order, and the result fits, K <= MAX_COLS)."""
    panel, G = WI[meta], WI[meta + 5]
    R32 = -(-WI[meta + 3] // ROWS) * ROWS
    rs = U(WI[meta + 1])
    for i in range(m):
        b = idx[i] * A
        o = U(b + acc)
        off = np.int32(128) + np.int32(S[U(b + zp)])
        for r in range(U(R32)):
            SI[o + r] = np.int32(-off * WI[rs + r])
    step = WI[meta + 6]
    nt = R32 // ROWS
    m4 = m // 4 * 4   # a batch: four streams per weight load, then the rest one by one
    if m4 > 0:
        for t in range(nt):
            w = U(panel + t * step)
            for i in range(0, m4, 4):
                b0, b1, b2, b3 = idx[i] * A, idx[i + 1] * A, idx[i + 2] * A, idx[i + 3] * A
                mac_i8s4(W8, w, U(G), SB, U(4 * (b0 + q)), SI, U(b0 + acc + t * ROWS),
                         U(4 * (b1 + q)), U(b1 + acc + t * ROWS), U(4 * (b2 + q)),
                         U(b2 + acc + t * ROWS), U(4 * (b3 + q)), U(b3 + acc + t * ROWS))
    # two tiles at a time; an odd count ends with three (one tile alone is latency-bound)
    pairs_end = nt - 3 if nt % 2 and nt >= 3 else nt - nt % 2
    for t in range(0, pairs_end, 2):
        for i in range(m4, m):
            b = idx[i] * A
            mac_i8x2(W8, U(panel + t * step), U(G), SB, U(4 * (b + q)), SI,
                     U(b + acc + t * ROWS), U(step))
    if nt % 2:
        t = pairs_end
        for i in range(m4, m):
            b = idx[i] * A
            if nt >= 3:
                mac_i8x3(W8, U(panel + t * step), U(G), SB, U(4 * (b + q)), SI,
                         U(b + acc + t * ROWS), U(step))
            else:
                mac_i8(W8, U(panel + t * step), U(G), SB, U(4 * (b + q)), SI,
                       U(b + acc + t * ROWS))


@njit(cache=CACHE, error_model="numpy", inline="always")
def _params(W, par):
    mode = np.int64(W[par])
    return mode & 7, W[par + 1], W[par + 2], mode >> 3   # "away": + 1 half away, + 2 inverse


@njit(cache=CACHE, error_model="numpy", inline="always")
def qmatvec_impl(W, W8, WI, S, SB, SI, A, idx, m, ma, sa, pa, mb, sb, pb, q, y, split, ya,
                 yb):
    """``S[s, y:y+R] += dequant(A_q @ quant(a)) + dequant(B_q @ quant(b))`` for streams
    ``idx[:m]``: matrix ``ma`` times ``S[s, sa:]`` with parameters at ``pa``, and, when
    ``mb >= 0``, matrix ``mb`` (same rows) times ``S[s, sb:]`` with parameters at ``pb``.

    With both matrices and ``0 <= split < R``, only the first ``split`` rows are summed
    into ``y``; the rest of each product goes to its own place: ``S[s, ya:]`` for
    ``A``'s, ``S[s, yb:]`` for ``B``'s (a GRU's ``n`` gate: ``W_in x`` and ``W_hn h``
    apart, both vectors quantised once for all three gates). ``split < 0``: all rows into ``y``."""
    rows, Ga = WI[ma + 3], WI[ma + 5]
    two = mb >= 0
    Gb = WI[mb + 5] if two else 0
    R32 = -(-rows // ROWS) * ROWS
    shared = rows if split < 0 else split
    qb, sv = q + Ga, q + Ga + Gb            # quantised vectors, then [s_a, zp_a, s_b, zp_b]
    acc_a, acc_b = sv + 4, sv + 4 + R32
    mode_a, s_a, z_a, away_a = _params(W, pa)
    mode_b, s_b, z_b, away_b = _params(W, pb if two else pa)
    for i in range(m):
        b = idx[i] * A
        _quantize(S, SB, b + sa, WI[ma + 4], Ga, b + q, mode_a, s_a, z_a, away_a, b + sv)
        if two:
            _quantize(S, SB, b + sb, WI[mb + 4], Gb, b + qb, mode_b, s_b, z_b, away_b,
                      b + sv + 2)
    _tiles(W8, WI, S, SB, SI, A, idx, m, ma, q, sv + 1, acc_a)
    if two:
        _tiles(W8, WI, S, SB, SI, A, idx, m, mb, qb, sv + 3, acc_b)
    sc_a = U(WI[ma + 2])
    sc_b = U(WI[mb + 2]) if two else sc_a
    for i in range(m):
        b = idx[i] * A
        sva, svb = S[b + sv], S[b + sv + 2]
        a, c, yo = U(b + acc_a), U(b + acc_b), U(b + y)
        if two:
            for r in range(U(shared)):
                va = _f32(SI[a + r]) * (W[sc_a + r] * sva)
                vb = _f32(SI[c + r]) * (W[sc_b + r] * svb)
                S[yo + r] = (S[yo + r] + va) + vb
            oa, ob = U(b + ya) - U(shared), U(b + yb) - U(shared)
            for r in range(U(shared), U(rows)):
                S[oa + r] += _f32(SI[a + r]) * (W[sc_a + r] * sva)
                S[ob + r] += _f32(SI[c + r]) * (W[sc_b + r] * svb)
        else:
            for r in range(U(rows)):
                S[yo + r] += _f32(SI[a + r]) * (W[sc_a + r] * sva)


@kernel(types.int64(*[types.int64] * 12))
def qmatvec_kernel(desc, ma, sa, pa, mb, sb, pb, q, y, split, ya, yb):
    """:func:`qmatvec_impl` on the arenas of a call descriptor (called by address)."""
    P, W, W8, WI, S, SB, SI, A, idx, m = qviews(desc)
    qmatvec_impl(W, W8, WI, S, SB, SI, A, idx, m, ma, sa, pa, mb, sb, pb, q, y, split, ya, yb)
    return 0


@njit(cache=CACHE, error_model="numpy", inline="always")
def product(desc, P, k, wcol, rows, a, na, b, nb, y, qa, pa, qb, pb):
    """``y += W [a; b]`` for op row ``k``, float or int8.

    Float: one panel matrix at ``P[k, wcol]`` over ``na + nb`` inputs. int8: the
    matrix at ``P[k, qa]`` times ``a`` (quantisation parameters at ``QPAR + pa``:
    ``QP_X`` for an input, ``QP_H`` for state), plus, when ``qb >= 0``, the one at
    ``P[k, qb]`` times ``b``;
    one call to :func:`qmatvec_kernel` (compiled once, only for int8 models).
    """
    if P[k, QM0] < 0:
        matvec(desc, P, P[k, wcol], rows, na, nb, a, b, y)
    else:
        q = P[k, QPAR]
        call_ptr(P[0, H_QMATVEC], desc, P[k, qa], a, q + pa, P[k, qb] if qb >= 0 else -1, b,
                 q + pb, P[k, QBUF], y, -1, 0, 0)


@njit(cache=CACHE, error_model="numpy", inline="always")
def gates_xh(desc, P, k, wcol, rows, x, nx, h, nh, y, qm_x, qm_h):
    """``y += W [x; h]``: a recurrent op's ``[weight_ih | weight_hh]`` product (float
    panels at ``P[k, wcol]``; int8: the matrices at ``P[k, qm_x]`` and ``P[k, qm_h]``,
    ``x`` quantised with the input's parameters, ``h`` with the state's)."""
    product(desc, P, k, wcol, rows, x, nx, h, nh, y, qm_x, QP_X, qm_h, QP_H)


@njit(cache=CACHE, error_model="numpy", inline="always")
def gru_gates_int8(desc, P, k, x, h, y, shared, y_nx, y_nh):
    """An int8 GRU whose reset gate comes after ``W_hn h`` (``linear_before_reset``), in
    one product: ``y[:shared] += W_rz [x; h]``, ``y_nx += W_in x``, ``y_nh += W_hn h``
    with the whole ``weight_ih`` at ``P[k, QM0]`` and ``weight_hh`` at ``P[k, QM1]``, so
    ``x`` and ``h`` are each quantised once (the same bits as three products)."""
    q = P[k, QPAR]
    call_ptr(P[0, H_QMATVEC], desc, P[k, QM0], x, q + QP_X, P[k, QM1], h, q + QP_H,
             P[k, QBUF], y, shared, y_nx, y_nh)


@njit(cache=CACHE, error_model="numpy", inline="always")
def times_x(desc, P, k, wcol, rows, x, nx, y, qm):
    """``y += W x`` with ``x`` an input (quantised with the input's parameters)."""
    product(desc, P, k, wcol, rows, x, nx, x, np.int64(0), y, qm, QP_X, -1, 0)


@njit(cache=CACHE, error_model="numpy", inline="always")
def times_h(desc, P, k, wcol, rows, h, nh, y, qm):
    """``y += W h`` with ``h`` recurrent state (quantised with the state's parameters)."""
    product(desc, P, k, wcol, rows, h, nh, h, np.int64(0), y, qm, QP_H, -1, 0)
