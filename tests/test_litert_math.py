"""``from_tflite(arithmetic="litert")``: LOGISTIC, TANH, MEAN and the hybrid
FULLY_CONNECTED computed as LiteRT's builtin kernels compute them on x86-64; edgernn's
own arithmetic stays as it was.

Two references. :mod:`tests.litert_oracle` (numpy, written from Eigen's and TFLite's
sources) computes LiteRT's x86-64 arithmetic with the same bits on every CPU: edgernn
equals it bit for bit everywhere. Live LiteRT (builtin kernels, no delegate): on x86-64,
whose wheel builds Eigen without fused multiply-adds, the oracle and edgernn equal it bit
for bit, so the oracle cannot drift. Elsewhere LiteRT is another arithmetic, held within
a tolerance (:func:`_near_litert`): its aarch64 build fuses Eigen's multiply-adds (NEON)
and clamps tanh at 8.01773 instead of 7.90739. Measured under QEMU (cortex-a72) with
LiteRT 2.3's aarch64 wheel on a grid of 400 003 points over [-20, 20]: TANH differs from
the x86-64 results at 17 % of them, by up to 7 ulp (1 - 7 ulp against 1 near the clamp),
LOGISTIC at 0.6 %, by up to 4 ulp, MEAN nowhere; the hybrid FULLY_CONNECTED by 1.9e-6.
"""

import platform

import numpy as np
import pytest

import edgernn
from tests import litert_oracle as oracle
from tests.helpers import need_module
from tests.tflite_build import Graph

#: LiteRT's arithmetic here is the one the oracle emulates (its x86-64 wheel, no FMA)
EMULATED_HERE = platform.machine() in ("x86_64", "AMD64")
#: elsewhere: LiteRT's activations within this many ulp of x86-64's (measured 7 and 4)
MAX_ULP = 8


def _builtin(buf, *feeds):
    """LiteRT's builtin kernels (no XNNPack delegate), one thread."""
    litert = need_module("ai_edge_litert.interpreter", "ai-edge-litert (the dev extra)")
    it = litert.Interpreter(model_content=buf, num_threads=1,
                            experimental_op_resolver_type=litert.OpResolverType
                            .BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds, strict=True):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def _near_litert(ours, want, max_ulp=MAX_ULP, atol=0.0):
    """``ours`` (the oracle's or edgernn's) against live LiteRT: bit for bit where LiteRT
    computes the emulated arithmetic (x86-64), else within ``max_ulp`` ulp (or ``atol``)."""
    if EMULATED_HERE:
        np.testing.assert_array_equal(ours, want)
    elif atol:
        np.testing.assert_allclose(ours, want, rtol=0, atol=atol)
    else:
        np.testing.assert_array_max_ulp(ours, want, maxulp=max_ulp)


def _values(n):
    """Gate pre-activations and beyond: normal, wide uniform, a dense grid, and the
    edges (saturation, zero, tiny); LOGISTIC's results stay normal floats (edgernn
    flushes subnormals while a stream runs)."""
    rng = np.random.default_rng(0)
    parts = [rng.normal(0, 2, n), rng.uniform(-20, 20, n), np.linspace(-18, 18, n),
             [0.0, -0.0, 1e-30, -1e-30, 3e-4, -3e-4, 7.9073896, -7.9073896, 8.5, 16.6355324,
              16.7, -80.0, 80.0]]
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("n", [40003, 257, 7])   # packets of 4 and a tail (LOGISTIC: scalar)
def test_activations_equal_litert_bit_for_bit(op, n, tmp_path):
    from converters import from_tflite

    x = _values(n // 3 + 1)[:n]
    g = Graph()
    inp = g.input("x", (1, 1, n))
    buf = g.build([inp], [g.op(op, [inp], (1, 1, n))])
    want = {"LOGISTIC": oracle.logistic, "TANH": oracle.tanh}[op](x)
    path = tmp_path / "act.tflite"
    path.write_bytes(buf)
    own = from_tflite(path)
    mine = from_tflite(path, arithmetic="litert")
    assert own.provenance.get("arithmetic") is None and mine.provenance["arithmetic"] == "litert"
    for math in ("fast", "exact"):
        np.testing.assert_array_equal(mine.stream(math=math).step(x), want)
    _near_litert(want, _builtin(buf, x[None, None])[0, 0])
    # the oracle has teeth: libm's correctly rounded values are not LiteRT's
    assert (own.stream(math="exact").step(x) != want).sum() > n // 10


def test_the_logistic_tail_is_glibc_expf_not_a_correctly_rounded_exp(tmp_path):
    """Past the last packet of 4 Eigen calls libm's ``expf``, which is not correctly
    rounded: glibc's algorithm (the oracle's) gives LiteRT's bits, and edgernn's (which
    calls libm too), where float64's ``exp`` rounded once does not (measured: at 49 of
    90 000 random tail values)."""
    from converters import from_tflite

    rng = np.random.default_rng(5)
    x = rng.uniform(-103, 17, 200_000).astype(np.float32)
    cr = np.exp(np.minimum(x, oracle.LOGISTIC_HI).astype(np.float64)).astype(np.float32)
    differ = x[oracle.expf(np.minimum(x, oracle.LOGISTIC_HI)) != cr][:3]
    assert differ.size == 3
    for v in differ:   # each alone: a tail of one
        g = Graph()
        inp = g.input("x", (1, 1, 1))
        buf = g.build([inp], [g.op("LOGISTIC", [inp], (1, 1, 1))])
        (tmp_path / "tail.tflite").write_bytes(buf)
        mine = from_tflite(tmp_path / "tail.tflite", arithmetic="litert").stream()
        np.testing.assert_array_equal(mine.step(np.array([v])), oracle.logistic(np.array([v])))
        want = _builtin(buf, np.full((1, 1, 1), v, np.float32)).reshape(-1)
        _near_litert(oracle.logistic(np.array([v])), want)
        if EMULATED_HERE:   # a correctly rounded exp would have failed here
            e = np.exp(np.float64(min(v, oracle.LOGISTIC_HI))).astype(np.float32)
            assert e / (np.float32(1) + e) != want[0]


def test_mean_sums_in_float32_in_order_as_litert(tmp_path):
    from converters import from_tflite

    rng = np.random.default_rng(1)
    g = Graph()
    inp = g.input("x", (1, 1, 256))
    buf = g.build([inp], [g.op("MEAN", [inp, g.ints([2])], (1, 1, 1), keepDims=True)])
    path = tmp_path / "mean.tflite"
    path.write_bytes(buf)
    edgernn.save(from_tflite(path, arithmetic="litert"), tmp_path / "mean.ernn")
    mine = edgernn.load(tmp_path / "mean.ernn").stream()   # "mean_litert" survives the file
    own = from_tflite(path).stream()
    same_own = 0
    for _ in range(200):
        x = (rng.normal(0, 1, 256) * 10.0 ** rng.integers(-6, 3)).astype(np.float32)
        want = oracle.mean(x)
        np.testing.assert_array_equal(mine.step(x), want)
        # bit for bit on every CPU: a sum in order has no multiply-add to fuse (measured
        # equal on aarch64 too)
        np.testing.assert_array_equal(want, _builtin(buf, x[None, None]).reshape(-1))
        same_own += bool(own.step(x)[0] == want[0])
    assert same_own < 150   # edgernn's own mean (float64 sum) is another rounding


def _hybrid_fc(w_q, s_w, bias) -> bytes:
    """``float32[1, 1, K] -> FULLY_CONNECTED`` with int8 weights ``w_q`` [R, K] of
    per-tensor scale ``s_w`` and a float bias: LiteRT's hybrid kernel."""
    from ai_edge_litert import schema_py_generated as S

    g = Graph()
    rows, k = w_q.shape
    x = g.input("x", (1, 1, k))
    w = g.tensor("w", (rows, k))
    t = g.sg.tensors[w]
    t.type = S.TensorType.INT8
    g.model.buffers[t.buffer].data = np.ascontiguousarray(w_q, np.int8).view(np.uint8) \
        .reshape(-1).tolist()
    t.quantization = S.QuantizationParametersT()
    t.quantization.scale, t.quantization.zeroPoint = [float(s_w)], [0]
    y = g.op("FULLY_CONNECTED", [x, w, g.const(bias)], (1, 1, rows), keepNumDims=True)
    return g.build([x], [y])


def _near_ties(rng, k, n):
    """``n`` rows of ``k`` where ``x * (127 / max|x|)`` and ``x / (max|x| / 127)`` round to
    different integers: one element moved, ulp by ulp, onto a half step."""
    f32 = np.float32

    def rnd(t):
        return np.sign(t) * np.floor(np.abs(t) + f32(0.5))

    rows = []
    while len(rows) < n:
        v = rng.normal(0, 1, k).astype(f32)
        m = np.abs(v).max()
        j = int(np.argmin(np.abs(v)))
        c = f32((rng.integers(0, 126) + 0.5) * float(m) / 127)
        for x in c + np.arange(-30, 31) * np.spacing(c):
            if rnd(f32(x) * (f32(127) / m)) != rnd(f32(x) / (m / f32(127))):
                v[j] = x
                rows.append(v)
                break
    return np.array(rows)


def test_hybrid_fully_connected_quantises_and_adds_bias_as_litert(tmp_path):
    """LiteRT's hybrid FC: ``q = round_half_away(x * (127 / max|x|))`` and ``acc * (s_x *
    s_w)`` rounded before the bias is added; random rows and rows on a near-tie of that
    product (where the quotient ``x / (max|x| / 127)`` rounds the other way)."""
    from converters import from_tflite

    rng = np.random.default_rng(3)
    w_q = rng.integers(-127, 128, (48, 40)).astype(np.int8)
    s_w = np.float32(0.0123)
    bias = rng.normal(0, 0.5, 48).astype(np.float32)
    buf = _hybrid_fc(w_q, s_w, bias)
    path = tmp_path / "fc.tflite"
    path.write_bytes(buf)
    mine = from_tflite(path)   # arithmetic="litert", the default for a hybrid file
    own = from_tflite(path, arithmetic="edgernn")
    assert mine.provenance["arithmetic"] == "litert"
    ties = _near_ties(rng, 40, 20)
    xs = np.concatenate([rng.normal(0, 1, (100, 40)).astype(np.float32), ties])
    want = oracle.hybrid_product(xs, w_q, s_w, bias)
    for math in ("fast", "exact"):
        s = mine.stream(math=math)
        np.testing.assert_array_equal(np.stack([s.step(x).copy() for x in xs]), want)
    # off x86-64 LiteRT's NEON kernel fuses the scaling with the bias (one rounding:
    # measured 1.9e-6 apart under QEMU, no near-tie input moved); held within one
    # quantisation step of one input, should its quantisation round a near-tie otherwise
    _, s_x = oracle.quantize_input(xs)
    step = float(np.abs(w_q.astype(np.int64)).max() * s_w * s_x.max()) * 1.01
    got = np.stack([_builtin(buf, x[None, None]).reshape(-1) for x in xs])
    _near_litert(want, got, atol=step)
    # the oracle has teeth: the quotient moves a near-tie row's input, and edgernn's own
    # arithmetic (bias inside the product's rounding) leaves LiteRT
    t = ties / (np.abs(ties).max(axis=1, keepdims=True) / np.float32(127))
    by_quotient = np.sign(t) * np.floor(np.abs(t) + np.float32(0.5))
    assert (by_quotient != oracle.quantize_input(ties)[0]).any(axis=1).all()
    s = own.stream()
    assert (np.stack([s.step(x).copy() for x in xs]) != want).any(axis=1).mean() > 0.5


def test_arithmetic_names_what_it_takes(tmp_path):
    from converters import from_tflite

    g = Graph()
    inp = g.input("x", (1, 1, 4))
    path = tmp_path / "tanh.tflite"
    path.write_bytes(g.build([inp], [g.op("TANH", [inp], (1, 1, 4))]))
    with pytest.raises(ValueError, match="arithmetic: expected 'litert', 'edgernn' or None"):
        from_tflite(path, arithmetic="eigen")
