"""int8 matrix products: quantise a vector, multiply in integers, dequantise.

    v_q = clip(rint(v / s_v) + zp, -128, 127)           per stream, per step
    acc[r] = sum_k W_q[r, k] * (v_q[k] - zp)            int32, exact (tile_i8.py)
    y[r] += float32(acc[r]) * float32(s_w[r] * s_v)

(the arithmetic contract of :mod:`edgernn.quant`). The scale ``s_v`` and zero
point come from the op's parameters (static, mode 0), or from ``v`` at each
step: mode 1 symmetric (``max|v| / 127``), mode 2 asymmetric (``min(v, 0)`` to
``max(v, 0)`` over 255 steps); mode + 8: round half away from zero. A scale
too small to invert (``< 1e-30``) is taken as 1: every such ``v`` quantises to
zero.

A quantised matrix in the weight arena: int8 panels of 32-row tiles, 4 inputs
per group (:func:`pack_q8`), each tile followed by ``128 * rowsum`` (int32[32]);
then ``rowsum`` int32[R32] and the scales float32[R32]; and an int32 header
``[panel, rowsum, scales, rows, K, G]`` (offsets in elements of the int8, int32
and float32 views) that op rows point to (``QM0``..``QM3``).

Per stream, scratch at ``QBUF`` (float32 offset): the quantised vector as
unsigned bytes (``v_q + 128``, ``G`` floats' worth), ``s_v`` and ``zp``, then the
int32 accumulators ``[R32]``.
"""

import numpy as np
from numba import njit, types

from ..cache import CACHE
from .abi import call_ptr, kernel, qviews
from .linalg import matvec
from .optable import H_QMATVEC, QBUF, QM0, QPAR
from .tile_i8 import ROWS, mac_i8

U = np.uint64
_f32 = np.float32
HEADER = 6


def pack_q8(wq: np.ndarray):
    """``int8[R, K]`` -> (panels int8[:], rowsum int32[R32]) in the layout above."""
    R, K = wq.shape
    R32, G = -(-R // ROWS) * ROWS, -(-K // 4)
    full = np.zeros((R32, 4 * G), np.int8)
    full[:R, :K] = wq
    rowsum = full.astype(np.int32).sum(axis=1).astype(np.int32)
    parts = []
    for t in range(R32 // ROWS):
        blk = full[t * ROWS:(t + 1) * ROWS]
        parts.append(blk.reshape(ROWS, G, 4).transpose(1, 0, 2).ravel())
        parts.append((128 * rowsum[t * ROWS:(t + 1) * ROWS]).astype(np.int32).view(np.int8))
    return np.concatenate(parts), rowsum


def qscratch_floats(cols: int, rows: int) -> int:
    """Scratch floats :func:`qmatvec_impl` needs for a ``[rows, cols]`` matrix."""
    return -(-cols // 4) + 2 + -(-rows // ROWS) * ROWS


@njit(cache=CACHE, error_model="numpy", inline="always")
def _quantize(S, B, src, K, G, q, mode, s_static, zp_static, away):
    """``S[src:src+K]`` -> unsigned bytes ``B[4q:4q+4G]``; ``S[q+G] = s``, ``S[q+G+1] = zp``."""
    o, n = U(src), U(K)
    s, zp = s_static, zp_static
    if mode != 0:
        lo, hi = _f32(0.0), _f32(0.0)
        for i in range(n):
            lo = min(lo, S[o + i])
            hi = max(hi, S[o + i])
        if mode == 1:
            s = max(-lo, hi) / _f32(127.0)
            zp = _f32(0.0)
        else:
            s = (hi - lo) / _f32(255.0)
        if not s >= _f32(1e-30):
            s = _f32(1.0)
        if mode == 2:
            zp = min(max(np.rint(_f32(-128.0) - lo / s), _f32(-128.0)), _f32(127.0))
    inv = _f32(1.0) / s
    bo = U(4) * U(q)
    for i in range(n):
        t = S[o + i] * inv
        r = np.copysign(np.floor(abs(t) + _f32(0.5)), t) if away else np.rint(t)
        v = min(max(r + zp, _f32(-128.0)), _f32(127.0))
        B[bo + i] = np.uint8(np.int32(v) + 128)
    for i in range(n, U(4) * U(G)):
        B[bo + i] = 128
    S[U(q) + U(G)] = s
    S[U(q) + U(G) + U(1)] = zp


@njit(cache=CACHE, error_model="numpy", inline="always")
def qmatvec_impl(W, W8, WI, S, SB, SI, A, idx, m, meta, src, par, q, y):
    """``S[s, y:y+R] += dequant(W_q @ quant(S[s, src:src+K]))`` for streams ``idx[:m]``."""
    panel, rs, sc = WI[meta], WI[meta + 1], WI[meta + 2]
    rows, K, G = WI[meta + 3], WI[meta + 4], WI[meta + 5]
    R32 = -(-rows // ROWS) * ROWS
    acc = q + G + 2
    mode, s0, z0 = np.int64(W[par]), W[par + 1], W[par + 2]
    away = mode >= 8
    mode = mode & 7
    for i in range(m):
        b = idx[i] * A
        _quantize(S, SB, b + src, K, G, b + q, mode, s0, z0, away)
        for r in range(R32):
            SI[b + acc + r] = 0
    step = G * 4 * ROWS + 4 * ROWS
    for t in range(R32 // ROWS):
        for i in range(m):
            b = idx[i] * A
            mac_i8(W8, U(panel + t * step), U(G), SB, U(4 * (b + q)), SI, U(b + acc + t * ROWS))
    for i in range(m):
        b = idx[i] * A
        sv, off = S[b + q + G], np.int32(128) + np.int32(S[b + q + G + 1])
        a, yo = U(b + acc), U(b + y)
        for r in range(U(rows)):
            corr = SI[a + r] - off * WI[U(rs) + r]
            S[yo + r] += _f32(corr) * (W[U(sc) + r] * sv)


@kernel(types.int64(*[types.int64] * 6))
def qmatvec_kernel(desc, meta, src, par, q, y):
    """:func:`qmatvec_impl` on the arenas of a call descriptor (called by address)."""
    P, W, W8, WI, S, SB, SI, A, idx, m = qviews(desc)
    qmatvec_impl(W, W8, WI, S, SB, SI, A, idx, m, meta, src, par, q, y)
    return 0


@njit(cache=CACHE, error_model="numpy", inline="always")
def qmatvec(desc, P, meta, src, par, q, y):
    """:func:`qmatvec_impl` through the address in the op table's header (compiled
    once, and only for models with int8 ops)."""
    call_ptr(P[0, H_QMATVEC], desc, meta, src, par, q, y)


@njit(cache=CACHE, error_model="numpy", inline="always")
def product(desc, P, k, wcol, rows, a, na, b, nb, y, qa, pa, qb, pb):
    """``y += W [a; b]`` for op row ``k``, float or int8.

    Float: one panel matrix at ``P[k, wcol]`` over ``na + nb`` inputs. int8: the
    matrix at ``P[k, qa]`` times ``a`` (quantisation parameters at ``QPAR + pa``:
    0 for x, 3 for h), plus, when ``qb >= 0``, the one at ``P[k, qb]`` times ``b``.
    """
    if P[k, QM0] < 0:
        matvec(desc, P, P[k, wcol], rows, na, nb, a, b, y)
    else:
        qmatvec(desc, P, P[k, qa], a, P[k, QPAR] + pa, P[k, QBUF], y)
        if qb >= 0:
            qmatvec(desc, P, P[k, qb], b, P[k, QPAR] + pb, P[k, QBUF], y)
