"""Activation functions over slices of the state arena.

Fast path (default): ``tanh`` is the rational approximation used by Eigen
(odd polynomial of degree 13 over an even one of degree 6, input clamped to
+-7.90531110763549805); ``sigmoid(x) = 0.5 + 0.5 * tanh(x / 2)``. Both are
branch-free arithmetic that LLVM vectorises. Max abs error against float64,
measured on a dense grid over [-20, 20] by ``tests/test_mathfn.py``:
tanh < 3e-7 (one float32 ulp of 1 where the clamp saturates), sigmoid < 1.5e-7.

Exact path (``math="exact"``): libm ``tanh``/``exp`` per element.

LiteRT path (activations ``tanh_litert``, ``sigmoid_litert``, whatever the stream's
math): the float32 approximations of Eigen that LiteRT's builtin ``TANH`` and
``LOGISTIC`` kernels run, operation for operation and without fused multiply-adds
(LiteRT's x86-64 wheel is built for SSE, 4-float packets, no FMA): tanh a 9/8
rational, the logistic ``e / (1 + e)`` with ``e = exp(x / 2)**2`` from a degree-5
polynomial; a slice's last ``n % 4`` elements take Eigen's scalar logistic
(libm ``expf``). Checked bit for bit against ``tests/litert_oracle.py`` (numpy, every CPU)
and against LiteRT's x86-64 wheel by ``tests/test_litert_math.py``.

Activation codes are named below (:mod:`edgernn.ops.activation` maps names to
them); ``code + EXACT`` selects the exact variant of tanh, sigmoid and scaled_tanh.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .abi import call_ptr, kernel, views
from .cache import CACHE
from .linalg import U
from .optable import H_ACT
from .spec.mathfn import (  # noqa: F401
    AFFINE,
    ELU,
    EXACT,
    HARD_SIGMOID,
    L2_NORMALIZE,
    LEAKY_RELU,
    LINEAR,
    LOG_SOFTMAX,
    RELU,
    SCALED_TANH,
    SIGMOID,
    SIGMOID_LITERT,
    SOFTMAX,
    SOFTPLUS,
    SOFTSIGN,
    TANH,
    TANH_LITERT,
    THRESHOLDED_RELU,
)

_F = {"reassoc", "contract"}
_f32 = np.float32

_TANH_CLAMP = _f32(7.90531110763549805)
_A1 = _f32(4.89352455891786e-03)
_A3 = _f32(6.37261928875436e-04)
_A5 = _f32(1.48572235717979e-05)
_A7 = _f32(5.12229709037114e-08)
_A9 = _f32(-8.60467152213735e-11)
_A11 = _f32(2.00018790482477e-13)
_A13 = _f32(-2.76076847742355e-16)
_B0 = _f32(4.89352518554385e-03)
_B2 = _f32(2.26843463243900e-03)
_B4 = _f32(1.18534705686654e-04)
_B6 = _f32(1.19825839466702e-06)


@njit(cache=CACHE, error_model="numpy", fastmath=_F, inline="always")
def tanh_fast(x):
    """Rational tanh for float32 ``x``; |error| < 3e-7."""
    x = min(max(x, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = x * x
    p = _A13
    p = p * x2 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    p = p * x
    q = _B6
    q = q * x2 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    return p / q


@njit(cache=CACHE, error_model="numpy", fastmath=_F, inline="always")
def sigmoid_fast(x):
    """``0.5 + 0.5 * tanh_fast(x / 2)``; |error| < 1.5e-7."""
    return _f32(0.5) + _f32(0.5) * tanh_fast(_f32(0.5) * x)


# Eigen's float tanh (ptanh_float, EIGEN_FAST_MATH, no FMA): clamp, then
# x + x^3 P(x^2) over Q(x^2)
_TL_CLAMP = _f32(7.90738964080810547)
_TL_P = (_f32(1.394553628e-8), _f32(2.102733560e-5), _f32(3.520756727e-3), _f32(1.340216100e-1))
_TL_Q = (_f32(8.015776984e-7), _f32(3.326951409e-4), _f32(2.597254514e-2), _f32(4.673548340e-1))
# Eigen's float logistic (scalar_logistic_op<float>::packetOp)
_SL_HI, _SL_LO = _f32(16.6355324), _f32(-104.0)
_SL_LOG2E, _SL_C1, _SL_C2 = _f32(1.44269504088896341), _f32(-0.693359375), _f32(2.12194440e-4)
_SL_P2, _SL_P3 = _f32(0.49999141693115234375), _f32(0.16666877269744873046875)
_SL_P4, _SL_P5 = _f32(4.1898667812347412109375e-2), _f32(8.33471305668354034423828125e-3)


def _strict(opname):
    """float32 ``a <op> b`` rounded on its own: the instruction carries LLVM's ``nsz``
    flag, so the fastmath of a kernel that calls it (Numba gives a callee its caller's
    flags, filling only instructions without any) can neither contract it into a fused
    multiply-add nor reassociate it."""

    @intrinsic
    def op(typingctx, a, b):
        def codegen(context, builder, signature, args):
            return getattr(builder, opname)(*args, flags=("nsz",))

        return types.float32(types.float32, types.float32), codegen

    return op


_mul, _add, _div = _strict("fmul"), _strict("fadd"), _strict("fdiv")
strict_mul, strict_add, strict_div = _mul, _add, _div


@njit(cache=CACHE, error_model="numpy")
def tanh_litert(a):
    """LiteRT's builtin float ``TANH`` of float32 ``a`` (Eigen's, without FMA)."""
    x = max(min(a, _TL_CLAMP), -_TL_CLAMP)
    x2 = _mul(x, x)
    p = _add(_mul(_TL_P[0], x2), _TL_P[1])
    p = _add(_mul(p, x2), _TL_P[2])
    p = _add(_mul(p, x2), _TL_P[3])
    q = _add(_mul(_TL_Q[0], x2), _TL_Q[1])
    q = _add(_mul(q, x2), _TL_Q[2])
    q = _add(_mul(q, x2), _TL_Q[3])
    q = _add(_mul(q, x2), _f32(1.0))
    return _div(_add(_mul(_mul(x2, x), p), x), q)


@intrinsic
def _pow2(typingctx, m):
    """float32 ``2**m`` for an integral float32 ``m`` in [-126, 127], from its bits."""

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        e = builder.add(builder.fptosi(args[0], i32), ir.Constant(i32, 127))
        return builder.bitcast(builder.shl(e, ir.Constant(i32, 23)), ir.FloatType())

    return types.float32(types.float32), codegen


@njit(cache=CACHE, error_model="numpy")
def sigmoid_litert(a):
    """LiteRT's builtin float ``LOGISTIC`` of float32 ``a``: Eigen's packet formula
    (branch-free, so a loop of it vectorises)."""
    one = _f32(1.0)
    x = _mul(min(a, _SL_HI), _f32(0.5))
    m = max(np.floor(_add(_mul(x, _SL_LOG2E), _f32(0.5))), _f32(-126.0))
    r = _add(_mul(m, _SL_C1), x)
    r = _add(_mul(m, _SL_C2), r)
    r2 = _mul(r, r)
    p = _add(_mul(r, _add(_mul(r2, _SL_P5), _SL_P3)), _add(_mul(r2, _SL_P4), _SL_P2))
    p = _add(_mul(r2, p), _add(r, one))
    e = _mul(p, _pow2(m))   # times a power of two: exact
    e = _mul(e, e)
    return _f32(0.0) if a < _SL_LO else _div(e, _add(one, e))


@njit(cache=CACHE, error_model="numpy")
def sigmoid_litert_tail(a):
    """Eigen's scalar logistic, which LiteRT runs past the last whole packet of 4."""
    e = _f32(math.exp(min(a, _SL_HI)))
    return _div(e, _add(_f32(1.0), e))


@njit(cache=CACHE, error_model="numpy", inline="always")
def sigmoid_exact(x):
    if x >= 0:
        return _f32(1.0 / (1.0 + math.exp(-x)))
    e = math.exp(x)
    return _f32(e / (1.0 + e))


@njit(cache=CACHE, error_model="numpy", inline="always")
def softplus_exact(x):
    xd = float(x)
    if xd > 0:
        return _f32(xd + math.log1p(math.exp(-xd)))
    return _f32(math.log1p(math.exp(xd)))


@njit(cache=CACHE, error_model="numpy", inline="always")
def _logsumexp(S, o, N):
    """``log(sum(exp(S[o:o+N])))`` in float64, shifted by the max for range safety."""
    m = S[o]
    for i in range(N):
        m = max(m, S[o + i])
    tot = 0.0
    for i in range(N):
        tot += math.exp(float(S[o + i] - m))
    return float(m) + math.log(tot)


@njit(cache=CACHE, error_model="numpy", fastmath=_F, inline="always")
def _act1(t, code, alpha, beta):
    """One element of the less common elementwise activations (LEAKY_RELU to
    SCALED_TANH, and their EXACT variants)."""
    if code == LEAKY_RELU:
        return t if t >= 0 else alpha * t
    if code == ELU:
        return t if t >= 0 else _f32(alpha * (math.exp(float(t)) - 1.0))
    if code == HARD_SIGMOID:
        return min(max(alpha * t + beta, _f32(0.0)), _f32(1.0))
    if code == SOFTSIGN:
        return t / (_f32(1.0) + abs(t))
    if code == SOFTPLUS or code == EXACT + SOFTPLUS:
        return softplus_exact(t)
    if code == AFFINE:
        return alpha * t + beta
    if code == THRESHOLDED_RELU:
        return t if t > alpha else _f32(0.0)
    if code == SCALED_TANH:
        return alpha * tanh_fast(beta * t)
    if code == EXACT + SCALED_TANH:
        return _f32(alpha * math.tanh(beta * t))
    return _f32(np.nan)


@njit(cache=CACHE, error_model="numpy", fastmath=_F, inline="always")
def apply_act(S, off, n, code, alpha, beta):
    """``S[off:off+n] = act(S[off:off+n])`` in place (float32), for every activation but
    linear, relu, tanh and sigmoid (:func:`act` runs those itself): the libm ones,
    the vector ones (softmax, log_softmax, l2_normalize) over the whole slice, the
    others one element at a time (:func:`_act1`).

    Parameters
    ----------
    S : float32[:]   arena
    off, n : int     slice
    code : int       activation code (+EXACT for the libm variants)
    alpha, beta : float32  activation parameters
    """
    o = U(off)
    N = U(n)
    if code <= SIGMOID:  # linear, relu, tanh, sigmoid: handled by act() without this call
        return
    if code == EXACT + TANH:
        for i in range(N):
            S[o + i] = _f32(math.tanh(S[o + i]))
    elif code == EXACT + SIGMOID:
        for i in range(N):
            S[o + i] = sigmoid_exact(S[o + i])
    elif code == TANH_LITERT:
        for i in range(N):
            S[o + i] = tanh_litert(S[o + i])
    elif code == SIGMOID_LITERT:
        n4 = N // U(4) * U(4)
        for i in range(n4):
            S[o + i] = sigmoid_litert(S[o + i])
        for i in range(n4, N):
            S[o + i] = sigmoid_litert_tail(S[o + i])
    elif code == SOFTMAX or code == LOG_SOFTMAX:
        lse = _logsumexp(S, o, N)
        for i in range(N):
            S[o + i] = _f32(math.exp(S[o + i] - lse)) if code == SOFTMAX else _f32(S[o + i] - lse)
    elif code == L2_NORMALIZE:
        ss = 0.0
        for i in range(N):
            ss += float(S[o + i]) * float(S[o + i])
        inv = 1.0 / math.sqrt(max(ss, float(alpha)))
        for i in range(N):
            S[o + i] = _f32(S[o + i] * inv)
    else:
        for i in range(N):
            S[o + i] = _act1(S[o + i], code, alpha, beta)


@kernel(types.int64(*[types.int64] * 5))
def act_kernel(desc, off, n, code, par):
    """:func:`apply_act` with the parameters at ``W[par:par+2]`` (called by address)."""
    P, W, S, L, A, idx, m = views(desc)
    apply_act(S, off, n, code, W[par], W[par + 1])
    return 0


@njit(cache=CACHE, error_model="numpy", fastmath=_F)
def act(desc, P, W, S, off, n, code, par):
    """``S[off:off+n] = act(S[off:off+n])``: linear, relu, tanh and sigmoid here; the
    others through :func:`act_kernel`, compiled only for models
    that use them."""
    o, N = U(off), U(n)
    if code == LINEAR:
        return
    if code == RELU:
        for i in range(N):
            S[o + i] = max(S[o + i], _f32(0.0))
    elif code == TANH:
        for i in range(N):
            S[o + i] = tanh_fast(S[o + i])
    elif code == SIGMOID:
        for i in range(N):
            S[o + i] = sigmoid_fast(S[o + i])
    else:
        call_ptr(P[0, H_ACT], desc, off, n, code, par)


@njit(cache=CACHE, error_model="numpy", fastmath=_F, inline="always")
def clip_inplace(S, off, n, lim):
    """``S[off:off+n] = clip(S[off:off+n], -lim, lim)``."""
    o = U(off)
    for i in range(U(n)):
        S[o + i] = min(max(S[o + i], -lim), lim)


@njit(cache=CACHE, error_model="numpy", fastmath={"contract"}, inline="always")
def all_finite(S, off, n):
    """True when ``S[off:off+n]`` holds no inf/nan (``v - v`` is 0 only for finite v)."""
    acc = _f32(0.0)
    o = U(off)
    for i in range(U(n)):
        acc += S[o + i] - S[o + i]
    return acc == 0
