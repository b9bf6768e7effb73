"""A slow, obvious oracle of LiteRT's builtin kernels as its x86-64 wheel computes them
(ai-edge-litert 2.3, no delegate): Eigen's float32 approximations built for SSE without
fused multiply-adds, float32 sums in order, the hybrid (dynamic-range int8) products.

Written from the sources, independent of edgernn and its converters. Every step is a
numpy float32 array operation, rounded on its own; numpy never fuses a multiply-add, so
the oracle computes the same bits on every CPU, an x86-64 or a Raspberry Pi. LiteRT's
aarch64 build computes others: Eigen's NEON ``pmadd`` is a fused ``vfmaq`` (one rounding),
``ptanh_float`` clamps at 8.01773357 under ``EIGEN_VECTORIZE_FMA``, the hybrid kernels
fuse their bias (measured under QEMU with LiteRT 2.3's aarch64 wheel: the
docstrings of tests/test_litert_math.py and tests/test_real_dtln_tflite.py).

Eigen (gitlab.com/libeigen/eigen; read from ``eigen-mirror/eigen``):

- ``Eigen/src/Core/arch/Default/GenericPacketMathFunctions.h``, ``ptanh_float``
  (``EIGEN_FAST_MATH``, no FMA): clamp to +-7.90738964080810547, then
  ``(x^3 P(x^2) + x) / Q(x^2)``, P of degree 3 and Q of degree 4 in x^2, each evaluated
  by ``ppolevl`` (Horner: ``pmadd(p, x2, c)``), the scalar tail the same formula;
- ``Eigen/src/Core/functors/UnaryFunctors.h``, ``scalar_logistic_op<float>``: the packet
  op (4 floats on SSE) ``e / (1 + e)`` with ``e = exp(x / 2)^2``, ``exp`` from Cephes'
  range reduction and a degree-5 polynomial, 0 below -104, the input capped at
  16.6355324; the scalar op (an array's last ``n % 4`` elements)
  ``e = expf(min(x, 16.6355324))``, ``e / (1 + e)``, ``expf`` glibc's (:func:`expf`).

Without FMA ``pmadd(a, b, c)`` is ``padd(pmul(a, b), c)``: two roundings.

TFLite (tensorflow/lite/kernels): ``MEAN`` sums a float32 accumulator in order and
divides by the count; the hybrid ``FULLY_CONNECTED``/``CONV_2D``
(``internal/reference/portable_tensor_utils.cc``, ``SymmetricQuantizeFloats``) quantises
each input row with ``range = max|x|``, ``scale = range / 127``,
``q = clip(round_half_away(x * (127 / range)), -127, 127)`` (``range == 0``: q = 0,
scale 1), multiplies ``acc * (scale * s_w)`` (``MatrixBatchVectorMultiplyAccumulate``,
the output pre-set to the bias: the bias is added after the rounded product).
:class:`Interpreter` runs a TFLite graph of the ops DTLN's int8 stages hold with these.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np

F = np.float32

# ptanh_float, no FMA: the clamp and the coefficients, highest degree first (ppolevl)
TANH_CLAMP = F(7.90738964080810547)
TANH_ALPHA = F([1.394553628e-8, 2.102733560e-5, 3.520756727e-3, 1.340216100e-1])
TANH_BETA = F([8.015776984e-7, 3.326951409e-4, 2.597254514e-2, 4.673548340e-1, 1.0])
# scalar_logistic_op<float>::packetOp
LOGISTIC_HI, LOGISTIC_LO = F(16.6355324), F(-104.0)
CEPHES_LOG2EF = F(1.44269504088896341)
CEPHES_C1, CEPHES_C2 = F(-0.693359375), F(2.12194440e-4)
EXP_P2, EXP_P3 = F(0.49999141693115234375), F(0.16666877269744873046875)
EXP_P4, EXP_P5 = F(4.1898667812347412109375e-2), F(8.33471305668354034423828125e-3)
PACKET = 4   # floats in an SSE packet


def _madd(a, b, c):
    """Eigen's ``pmadd`` without FMA: ``a * b`` rounded, then ``+ c`` rounded."""
    return F(a) * F(b) + F(c)


def _polevl(x, coeffs):
    p = np.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        p = _madd(p, x, c)
    return p


def tanh(a):
    """LiteRT's float ``TANH`` of float32 ``a`` (any shape)."""
    x = np.clip(np.asarray(a, F), -TANH_CLAMP, TANH_CLAMP)
    x2 = x * x
    x3 = x2 * x
    p = _madd(x3, _polevl(x2, TANH_ALPHA), x)
    return p / _polevl(x2, TANH_BETA)


def _logistic_packet(a):
    one, half = F(1.0), F(0.5)
    x = np.minimum(a, LOGISTIC_HI) * half
    m = np.floor(_madd(x, CEPHES_LOG2EF, half))
    r = _madd(m, CEPHES_C1, x)
    r = _madd(m, CEPHES_C2, r)
    r2 = r * r
    p = _madd(r, _madd(r2, EXP_P5, EXP_P3), _madd(r2, EXP_P4, EXP_P2))
    p = _madd(r2, p, r + one)
    # pldexp_fast_impl: p * 2^m, the biased exponent clamped to [0, 255], from its bits
    two_m = ((np.clip(m + F(127), 0, 255).astype(np.int32)) << 23).view(F)
    e = p * two_m
    e = e * e
    return np.where(a < LOGISTIC_LO, F(0.0), e / (one + e))


# glibc's expf (sysdeps/ieee754/flt-32/e_expf.c, e_exp2f_data.c; ARM's optimized-routines):
# x * 32 / ln2 = k + r, 2^(k/32) from a table of 32 doubles, a degree-3 polynomial in r,
# all in float64, rounded once to float32. The table: 2^(i/32) correctly rounded, minus
# i << 47 (its last entry is glibc's 0x3fefd0765b6e4540, checked below).
_EXP_N = 32
with localcontext() as _ctx:
    _ctx.prec = 60
    _EXP_TAB = np.array([np.float64(float(Decimal(2) ** (Decimal(i) / _EXP_N))).view(np.uint64)
                         for i in range(_EXP_N)], np.uint64)
_EXP_TAB -= np.arange(_EXP_N, dtype=np.uint64) << np.uint64(47)
assert int(_EXP_TAB[31]) == 0x3FEFD0765B6E4540
_EXP_INVLN2N = float.fromhex("0x1.71547652b82fep+0") * _EXP_N
_EXP_SHIFT = float.fromhex("0x1.8p+52")
_EXP_UFLOW = F(float.fromhex("-0x1.9fe368p6"))   # below: expf underflows to 0
_EXP_C = (float.fromhex("0x1.c6af84b912394p-5") / _EXP_N ** 3,
          float.fromhex("0x1.ebfce50fac4f3p-3") / _EXP_N ** 2,
          float.fromhex("0x1.62e42ff0c52d6p-1") / _EXP_N)


def expf(a):
    """glibc's ``expf`` of float32 ``a`` (``a`` < 88.7) as its C source reads, without
    fused multiply-adds; its FMA build (x86-64 with FMA, aarch64) rounds the float64
    steps differently, which moves the float32 result only at rare near-ties (an
    exact-FMA emulation agreed with this and with LiteRT at 90 000 of 90 000 values)."""
    z = _EXP_INVLN2N * np.asarray(a, F).astype(np.float64)
    kd = z + _EXP_SHIFT
    ki = kd.view(np.uint64)
    r = z - (kd - _EXP_SHIFT)
    s = (_EXP_TAB[ki % np.uint64(_EXP_N)] + (ki << np.uint64(52 - 5))).view(np.float64)
    y = (_EXP_C[0] * r + _EXP_C[1]) * (r * r) + (_EXP_C[2] * r + 1.0)
    return np.where(np.asarray(a) < _EXP_UFLOW, F(0.0), (y * s).astype(F))


def _logistic_scalar(a):
    """Eigen's scalar logistic: ``e = expf(min(a, 16.6355324))`` (libm), ``e / (1 + e)``.
    Not correctly rounded: taking ``exp`` in float64 instead differs from LiteRT at 49
    of 90 000 values."""
    a = np.asarray(a, F)
    e = expf(np.minimum(a, LOGISTIC_HI))
    return e / (F(1.0) + e)


def logistic(a):
    """LiteRT's float ``LOGISTIC`` of a float32 tensor ``a``: Eigen's packet op over its
    first ``size // 4 * 4`` elements (C order), the scalar op over the rest."""
    a = np.asarray(a, F)
    flat = a.reshape(-1)
    n4 = flat.size // PACKET * PACKET
    return np.concatenate([_logistic_packet(flat[:n4]),
                           _logistic_scalar(flat[n4:])]).reshape(a.shape)


def mean(x, axis=-1, keepdims=True):
    """LiteRT's float ``MEAN``: a float32 sum in order along ``axis``, over the count."""
    x = np.moveaxis(np.asarray(x, F), axis, -1)
    acc = np.zeros(x.shape[:-1], F)
    for k in range(x.shape[-1]):
        acc = acc + x[..., k]
    out = acc / F(x.shape[-1])
    return np.expand_dims(out, axis) if keepdims else out


def quantize_input(x):
    """(int32[..., K], float32[...]): each row of ``x`` as LiteRT's hybrid kernels quantise
    it, and its scale ``max|x| / 127`` (1 for a zero row)."""
    x = np.asarray(x, F)
    rng = np.max(np.abs(x), axis=-1, keepdims=True)
    zero = rng == 0
    safe = np.where(zero, F(1.0), rng)
    t = x * (F(127.0) / safe)
    q = np.clip(np.sign(t) * np.floor(np.abs(t) + F(0.5)), -127, 127).astype(np.int32)
    return np.where(zero, 0, q), np.where(zero, F(1.0), safe / F(127.0))[..., 0]


def hybrid_product(x, w_q, s_w, bias=None):
    """float32[..., R]: a hybrid ``FULLY_CONNECTED`` of rows ``x`` (float32[..., K]) with
    int8 weights ``w_q`` [R, K] of per-tensor scale ``s_w``: ``acc * (scale * s_w)``
    rounded, then the bias added."""
    q, scale = quantize_input(x)
    acc = q.astype(np.int64) @ np.asarray(w_q, np.int64).T
    assert np.abs(acc).max(initial=0) < 2 ** 24   # float(acc) exact, as LiteRT's cast
    y = acc.astype(F) * (scale * F(s_w))[..., None]
    return y if bias is None else y + np.asarray(bias, F)


class Interpreter:
    """A TFLite flatbuffer's one subgraph run op by op with the functions above: the
    float ops and layout ops of DTLN's stages and hybrid ``FULLY_CONNECTED``/1x1
    ``CONV_2D`` (no fused activation). Anything else raises ``NotImplementedError``.

    >>> it = Interpreter(buf); y, state = it(x, state)   # inputs, outputs in graph order
    """

    def __init__(self, buf: bytes):
        from ai_edge_litert import schema_py_generated as S

        m = S.ModelT.InitFromPackedBuf(buf, 0)
        self.sg = m.subgraphs[0]
        names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
        self.ops = [(names[max(m.operatorCodes[o.opcodeIndex].builtinCode,
                               m.operatorCodes[o.opcodeIndex].deprecatedBuiltinCode)], o)
                    for o in self.sg.operators]
        dtypes = {S.TensorType.FLOAT32: F, S.TensorType.INT32: np.int32,
                  S.TensorType.INT8: np.int8}
        self.consts, self.scales = {}, {}
        for i, t in enumerate(self.sg.tensors):
            data = m.buffers[t.buffer].data
            if data is not None and len(data):
                shape = [] if t.shape is None else [int(s) for s in t.shape]
                raw = np.asarray(data, np.uint8).tobytes()
                self.consts[i] = np.frombuffer(raw, dtypes[t.type]).reshape(shape)
                if t.quantization is not None and t.quantization.scale is not None:
                    assert len(t.quantization.scale) == 1, "per-tensor weight scales only"
                    self.scales[i] = F(t.quantization.scale[0])

    def __call__(self, *feeds):
        v = dict(self.consts)
        v.update({i: np.asarray(x, F) for i, x in zip(self.sg.inputs, feeds, strict=True)})
        for name, op in self.ops:
            outs = self._run(name, op, [v[i] if i >= 0 else None for i in op.inputs],
                             op.inputs, op.builtinOptions)
            v.update(zip(op.outputs, outs if isinstance(outs, list) else [outs], strict=True))
        return [v[i] for i in self.sg.outputs]

    def _run(self, name, op, a, idx, o):
        if getattr(o, "fusedActivationFunction", 0):
            raise NotImplementedError(f"{name} with a fused activation")
        if name in ("ADD", "SUB", "MUL"):
            return {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}[name](a[0], a[1])
        if name == "SQUARED_DIFFERENCE":
            d = a[0] - a[1]
            return d * d
        if name == "RSQRT":
            return F(1.0) / np.sqrt(a[0])
        if name == "LOGISTIC":
            return logistic(a[0])
        if name == "TANH":
            return tanh(a[0])
        if name == "MEAN":
            (axis,) = a[1].reshape(-1)
            return mean(a[0], int(axis), o.keepDims)
        if name == "FULLY_CONNECTED":
            x = a[0].reshape(-1, a[1].shape[1])
            y = hybrid_product(x, a[1], self.scales[idx[1]], a[2])
            return y.reshape(a[0].shape[:-1] + (-1,)) if o.keepNumDims else y
        if name == "CONV_2D":
            w = a[1]
            if w.shape[1:3] != (1, 1) or o.strideH != 1 or o.strideW != 1:
                raise NotImplementedError("CONV_2D: 1x1 kernels of stride 1 only")
            # a batch of one image is one row of SymmetricQuantizeFloats
            assert a[0].shape[0] == 1 and a[0].shape[1] * a[0].shape[2] == 1
            return hybrid_product(a[0], w.reshape(w.shape[0], -1), self.scales[idx[1]], a[2])
        if name == "RESHAPE":
            return a[0].reshape(a[1])
        if name == "PAD":
            return np.pad(a[0], a[1])
        if name == "SPLIT":
            return np.split(a[1], o.numSplits, axis=int(a[0]))
        if name == "PACK":
            return np.stack(a, axis=o.axis)
        if name == "UNPACK":
            return [np.take(a[0], k, axis=o.axis) for k in range(o.num)]
        if name == "STRIDED_SLICE":
            return _strided_slice(a[0], a[1], a[2], a[3], o)
        raise NotImplementedError(name)


def _strided_slice(x, begin, end, strides, o):
    if o.ellipsisMask or o.newAxisMask:
        raise NotImplementedError("STRIDED_SLICE with ellipsis or new axes")
    sl = []
    for d in range(x.ndim):
        b = None if o.beginMask >> d & 1 else int(begin[d])
        if o.shrinkAxisMask >> d & 1:
            sl.append(b)
            continue
        sl.append(slice(b, None if o.endMask >> d & 1 else int(end[d]), int(strides[d])))
    return x[tuple(sl)]
