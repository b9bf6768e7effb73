"""converters.tflite on a Keras-style sequence model: causal Conv1D front end
(CONV_2D and a dilated DEPTHWISE_CONV_2D between PAD/EXPAND_DIMS/SQUEEZE), a
LayerNormalization as LiteRT writes it (MEAN, SQUARED_DIFFERENCE, RSQRT, MUL, SUB,
ADD), a fused LSTM and a Dense, on real speech features: streamed step by step,
against LiteRT on the whole sequence and a plain-numpy oracle from the equations;
int8-weights; what is refused over time and why."""

from __future__ import annotations

import numpy as np
import pytest

import edgernn
from converters import from_tflite
from converters.quantize import quantize
from edgernn.errors import UnsupportedOpError
from tests.real_models import speech_16k
from tests.tflite_build import Graph, LiteRT

T, F, C, H, O = 250, 40, 32, 24, 8
EPS = 1e-3


def features(steps=T, bands=F):
    """Log band energies of real speech: 25 ms frames, 10 ms hop, float32[steps, bands]."""
    x = speech_16k(steps * 0.01 + 0.03)
    frames = np.stack([x[k * 160:k * 160 + 400] for k in range(steps)])
    mag = np.abs(np.fft.rfft(frames * np.hanning(400), axis=1))[:, :200]
    return np.log(mag.reshape(steps, bands, -1).sum(-1) + 1e-3).astype(np.float32)


def weights(seed=0):
    r = np.random.default_rng(seed)

    def w(*shape, s=0.3):
        return (r.standard_normal(shape) * s).astype(np.float32)
    return {"conv": w(C, 1, 3, F, s=0.1), "conv_b": w(C), "dw": w(1, 1, 3, C), "dw_b": w(C),
            "gamma": 1 + w(C, s=0.1), "beta": w(C, s=0.1),
            "wi": w(4, H, C, s=0.2), "wh": w(4, H, H, s=0.2), "b": w(4, H, s=0.1),
            "fc": w(O, H), "fc_b": w(O)}


def _causal(g, x, t_in, ch, k, dil, weight, bias, depthwise, fused):
    """Keras Conv1D(padding="causal") as LiteRT lays it out."""
    p = g.op("PAD", [x, g.ints([[0, 0], [(k - 1) * dil, 0], [0, 0]])],
             (1, t_in + (k - 1) * dil, ch))
    e = g.op("EXPAND_DIMS", [p, g.ints([1])], (1, 1, t_in + (k - 1) * dil, ch))
    name = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    extra = {"depthMultiplier": 1} if depthwise else {}
    y = g.op(name, [e, g.const(weight), g.const(bias)], (1, 1, t_in, weight.shape[-1] if
                                                          depthwise else weight.shape[0]),
             padding=1, strideW=1, strideH=1, dilationWFactor=dil, dilationHFactor=1,
             fusedActivationFunction=fused, **extra)
    return g.op("SQUEEZE", [y], (1, t_in, weight.shape[-1] if depthwise else weight.shape[0]),
                squeezeDims=[1])


def _layer_norm(g, x, n, gamma, beta, steps):
    """Keras LayerNormalization(epsilon=EPS) as LiteRT writes it."""
    m = g.op("MEAN", [x, g.ints([-1])], (1, steps, 1), keepDims=True)
    d = g.op("SQUARED_DIFFERENCE", [x, m], (1, steps, n))
    v = g.op("MEAN", [d, g.ints([-1])], (1, steps, 1), keepDims=True)
    inv = g.op("RSQRT", [g.op("ADD", [v, g.const(np.float32(EPS))], (1, steps, 1))],
               (1, steps, 1))
    inv_g = g.op("MUL", [inv, g.const(gamma)], (1, steps, n))
    a = g.op("MUL", [x, inv_g], (1, steps, n))
    b = g.op("MUL", [m, inv_g], (1, steps, n))
    return g.op("ADD", [a, g.op("SUB", [g.const(beta), b], (1, steps, n))], (1, steps, n))


def crnn(w, steps=T) -> bytes:
    g = Graph()
    x = g.input("features", (1, steps, F))
    y = _causal(g, x, steps, F, 3, 1, w["conv"], w["conv_b"], False, 1)       # RELU
    y = _causal(g, y, steps, C, 3, 2, w["dw"], w["dw_b"], True, 3)            # RELU6
    y = _layer_norm(g, y, C, w["gamma"], w["beta"], steps)
    ins = [y, *(g.const(w["wi"][k]) for k in range(4)), *(g.const(w["wh"][k]) for k in range(4)),
           -1, -1, -1, *(g.const(w["b"][k]) for k in range(4)), -1, -1,
           g.tensor("h", (1, H), variable=True), g.tensor("c", (1, H), variable=True),
           -1, -1, -1, -1]
    h = g.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, (1, steps, H), fusedActivationFunction=4,
             timeMajor=False)
    out = g.op("FULLY_CONNECTED", [h, g.const(w["fc"]), g.const(w["fc_b"])], (1, steps, O),
               name_out="logits", keepNumDims=True)
    return g.build([x], [out])


def oracle(w, xs):
    """The model's equations in float64, one step at a time."""
    def sig(v):
        return 1 / (1 + np.exp(-v))
    k1 = w["conv"][:, 0].astype(np.float64)            # [C, 3, F]
    k2 = w["dw"][0, 0].astype(np.float64)              # [3, C]
    hist1, hist2 = np.zeros((2, F)), np.zeros((4, C))
    h, c = np.zeros(H), np.zeros(H)
    ys = []
    for x in xs.astype(np.float64):
        win = np.vstack([hist1, x])                    # steps t-2, t-1, t
        hist1 = win[1:]
        a = np.maximum(np.einsum("okf,kf->o", k1, win) + w["conv_b"], 0)
        win2 = np.vstack([hist2, a])                   # t-4 .. t, taps at t-4, t-2, t
        hist2 = win2[1:]
        b = np.clip((k2 * win2[::2]).sum(0) + w["dw_b"], 0, 6)
        ln = (b - b.mean()) / np.sqrt(b.var() + EPS) * w["gamma"] + w["beta"]
        gi, gf, gc, go = (w["wi"][q] @ ln + w["wh"][q] @ h + w["b"][q] for q in range(4))
        c = sig(gf) * c + sig(gi) * np.tanh(gc)
        h = sig(go) * np.tanh(c)
        ys.append(w["fc"] @ h + w["fc_b"])
    return np.array(ys)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    w = weights()
    buf = crnn(w)
    path = tmp_path_factory.mktemp("crnn") / "crnn.tflite"
    path.write_bytes(buf)
    xs = features()
    return w, buf, path, xs, LiteRT(buf)(xs[None])[0][0]


def test_keras_crnn_streams_within_1e5_of_litert_and_the_numpy_oracle(case):
    w, buf, path, xs, ref = case
    model = from_tflite(path)
    kinds = [type(op).__name__ for op in model.layers]
    assert kinds == ["CausalConv1d", "CausalConv1d", "Unary", "LayerNorm", "LSTM", "Dense"]
    ln = model.layers[3]
    assert ln.eps == pytest.approx(EPS) and np.array_equal(ln.weight, w["gamma"])
    np.testing.assert_allclose(ln.bias, w["beta"], rtol=0, atol=1e-7)
    stream = model.stream("exact")
    ys = np.stack([stream.step(x) for x in xs])
    assert ys.shape == (T, O) and np.abs(ref).max() > 0.5
    assert np.abs(ys - ref).max() <= 1e-5
    assert np.abs(ys - oracle(w, xs)).max() <= 1e-4
    np.testing.assert_array_equal(model.stream("exact").run(xs), ys)   # step == run


def test_keras_crnn_int8_weights_converts_and_reports_its_error(case):
    w, buf, path, xs, ref = case
    model = from_tflite(path)
    q = quantize(model, xs, mode="int8-weights", min_macs=0, held_out=xs[None])
    err = np.abs(q.stream().run(xs) - model.stream().run(xs)).max()
    reported = q.quantization["end_to_end"]["held_out"]["max_abs"]
    assert reported == pytest.approx(err, rel=1e-3, abs=1e-6)
    assert 0 < err < 0.1 * np.abs(ref).max()


@pytest.mark.parametrize(("pad", "padding", "match"), [
    (0, 1, r"CONV_2D \(operator \d+\): a convolution over time.*valid.*drops the first 2"),
    (0, 0, r"CONV_2D \(operator \d+\).*SAME padding looks 1 steps ahead"),
    (1, 1, r"after 1 zero steps.*2 zeros before")])
def test_conv_over_time_that_is_not_causal_is_refused_with_the_reason(tmp_path, pad, padding,
                                                                      match):
    g = Graph()
    x = g.input("x", (1, 20, 4))
    p = g.op("PAD", [x, g.ints([[0, 0], [pad, 0], [0, 0]])], (1, 20 + pad, 4)) if pad else x
    e = g.op("EXPAND_DIMS", [p, g.ints([1])], (1, 1, 20 + pad, 4))
    y = g.op("CONV_2D", [e, g.const(np.ones((3, 1, 3, 4))), g.const(np.zeros(3))],
             (1, 1, 20, 3), padding=padding, strideW=1, strideH=1)
    y = g.op("SQUEEZE", [y], (1, 20, 3), squeezeDims=[1])
    (tmp_path / "m.tflite").write_bytes(g.build([x], [y]))
    with pytest.raises(UnsupportedOpError, match=match):
        from_tflite(tmp_path / "m.tflite")


def test_pointwise_conv1d_over_time_is_a_dense_on_each_step(tmp_path):
    w = weights(3)
    g = Graph()
    x = g.input("features", (1, T, F))
    e = g.op("EXPAND_DIMS", [x, g.ints([1])], (1, 1, T, F))
    y = g.op("CONV_2D", [e, g.const(w["conv"][:, :, :1]), g.const(w["conv_b"])], (1, 1, T, C),
             padding=1, strideW=1, strideH=1, fusedActivationFunction=1)
    y = g.op("SQUEEZE", [y], (1, T, C), squeezeDims=[1])
    buf = g.build([x], [y])
    (tmp_path / "m.tflite").write_bytes(buf)
    model = from_tflite(tmp_path / "m.tflite")
    assert [type(op).__name__ for op in model.layers] == ["Dense"]
    xs = features()
    want = np.maximum(xs.astype(np.float64) @ w["conv"][:, 0, 0].T + w["conv_b"], 0)
    ys = model.stream("exact").run(xs)
    assert np.abs(ys - LiteRT(buf)(xs[None])[0][0]).max() <= 1e-5
    assert np.abs(ys - want).max() <= 1e-5


def test_reduction_over_time_and_an_unknown_op_are_refused_naming_the_operator(tmp_path):
    g = Graph()
    x = g.input("x", (1, 20, 4))
    y = g.op("MEAN", [x, g.ints([1])], (1, 1, 4), keepDims=True)
    (tmp_path / "mean.tflite").write_bytes(g.build([x], [y]))
    with pytest.raises(UnsupportedOpError, match=r"MEAN \(operator 0\): reduces axes \[1\].*"
                                                 r"over time"):
        from_tflite(tmp_path / "mean.tflite")
    g = Graph()
    x = g.input("x", (1, 20, 4))
    y = g.op("SIN", [x], (1, 20, 4))
    (tmp_path / "sin.tflite").write_bytes(g.build([x], [y]))
    with pytest.raises(UnsupportedOpError, match=r"operator SIN \(index 0\).*not supported; "
                                                 r"supported: .*CONV_2D"):
        from_tflite(tmp_path / "sin.tflite")


def _keras3_layer_norm(g, x, n, gamma, beta, steps):
    """Keras 3: inv = rsqrt(var + eps) * gamma; res = -mean * inv + beta; x * inv + res."""
    m = g.op("MEAN", [x, g.ints([2])], (1, steps, 1), keepDims=True)
    v = g.op("MEAN", [g.op("SQUARED_DIFFERENCE", [x, m], (1, steps, n)), g.ints([2])],
             (1, steps, 1), keepDims=True)
    inv = g.op("RSQRT", [g.op("ADD", [v, g.const(np.float32(EPS))], (1, steps, 1))],
               (1, steps, 1))
    inv = g.op("MUL", [inv, g.const(gamma)], (1, steps, n)) if gamma is not None else inv
    res = g.op("NEG", [g.op("MUL", [m, inv], (1, steps, n if gamma is not None else 1))],
               (1, steps, n if gamma is not None else 1))
    res = g.op("ADD", [res, g.const(beta)], (1, steps, n)) if beta is not None else res
    return g.op("ADD", [g.op("MUL", [x, inv], (1, steps, n)), res], (1, steps, n))


@pytest.mark.parametrize("affine", [True, False])
def test_keras3_layer_norm_becomes_one_layer_norm_and_streams_like_litert(affine, tmp_path):
    w = weights(2)
    xs = features()
    g = Graph()
    x = g.input("x", (1, T, F))
    gamma, beta = (w["conv_b"][:1].repeat(F) + 1, w["dw_b"][:1].repeat(F)) if affine \
        else (None, None)
    y = _keras3_layer_norm(g, x, F, gamma, beta, T)
    y = g.op("ADD", [y, x], (1, T, F))              # a residual: not part of the norm
    buf = g.build([x], [y])
    (tmp_path / "m.tflite").write_bytes(buf)
    model = from_tflite(tmp_path / "m.tflite")
    assert [type(op).__name__ for op in model.layers] == ["LayerNorm", "Add"]
    assert (model.layers[0].weight is None) is (not affine)
    stream = model.stream("exact")
    ys = np.stack([stream.step(v) for v in xs])
    ref = LiteRT(buf)(xs[None])[0][0]
    v = xs.astype(np.float64)
    n = (v - v.mean(1, keepdims=True)) / np.sqrt(v.var(1, keepdims=True) + EPS)
    want = (n * gamma + beta if affine else n) + v
    assert np.abs(ys - want).max() <= 1e-6    # LayerNorm sums in float64
    # LiteRT's float32 ops are themselves 1.4e-5 (5e-6 without gamma) from the oracle on
    # the quiet frames (x near its mean, divided by sqrt(var + eps))
    assert np.abs(ref - want).max() > np.abs(ys - want).max()
    assert np.abs(ys - ref).max() <= 2e-5


def test_streamed_model_saves_and_loads_bit_for_bit(case, tmp_path):
    w, buf, path, xs, ref = case
    model = from_tflite(path)
    model.save(tmp_path / "m.ernn")
    np.testing.assert_array_equal(edgernn.load(tmp_path / "m.ernn").stream().run(xs[:50]),
                                  model.stream().run(xs[:50]))
