"""converters.tflite on a Silero-like model called once per 32 ms chunk, its LSTM
state fed back by hand (``states=``) and a gain input given as a constant
(``constants=``): reflect MIRROR_PAD, an STFT as a strided CONV_2D, magnitude
(STRIDED_SLICE, MUL, ADD, SQRT), CONV_2D with SAME padding and stride 2, a
DEPTHWISE_CONV_2D with RELU6, MAX_POOL_2D, MEAN over the length, an unrolled LSTM
cell, Dense + sigmoid. Streamed over 250 chunks of real speech against LiteRT and a
plain-numpy oracle; int8-weights; an input of the wrong shape refused."""

from __future__ import annotations

import numpy as np
import pytest

from converters import from_tflite
from converters.quantize import quantize
from edgernn.errors import UnsupportedOpError
from tests.real_models import speech_16k
from tests.tflite_build import Graph, LiteRT

N, CTX, NFFT, HOP, B, C, H = 512, 64, 128, 64, 65, 24, 32
STEPS, GAIN = 250, 0.5


def weights(seed=1):
    r = np.random.default_rng(seed)
    n = np.arange(NFFT)
    basis = np.concatenate([np.cos(2 * np.pi * np.outer(np.arange(B), n) / NFFT),
                            -np.sin(2 * np.pi * np.outer(np.arange(B), n) / NFFT)])
    win = np.hanning(NFFT)

    def w(*shape, s=0.2):
        return (r.standard_normal(shape) * s).astype(np.float32)
    return {"stft": (basis * win).astype(np.float32)[:, None, :, None],   # [2B, 1, K, 1]
            "c1": w(C, 1, 3, B, s=1.0), "c1_b": w(C), "c2": w(C, 1, 3, C), "c2_b": w(C),
            "dw": w(1, 1, 3, C), "dw_b": w(C), "wi": w(4 * H, C), "wh": w(4 * H, H),
            "b": w(4 * H, s=0.1), "fc": w(1, H, s=2.0), "fc_b": w(1)}


def silero_like(w) -> bytes:
    g = Graph()
    inp = g.input("input", (1, CTX + N))
    state = g.input("state", (2, 1, H))
    gain = g.input("gain", (1,))
    x = g.op("MUL", [inp, gain], (1, CTX + N))
    p = g.op("MIRROR_PAD", [x, g.ints([[0, 0], [0, CTX]])], (1, CTX + N + CTX), mode=0)
    p = g.op("RESHAPE", [p, g.ints([1, 1, -1, 1])], (1, 1, 640, 1))
    frames = (640 - NFFT) // HOP + 1
    spec = g.op("CONV_2D", [p, g.const(w["stft"]), g.const(np.zeros(2 * B))],
                (1, 1, frames, 2 * B), padding=1, strideW=HOP, strideH=1)
    re = g.op("STRIDED_SLICE", [spec, g.ints([0, 0, 0, 0]), g.ints([1, 1, frames, B]),
                                g.ints([1, 1, 1, 1])], (1, 1, frames, B))
    im = g.op("STRIDED_SLICE", [spec, g.ints([0, 0, 0, B]), g.ints([1, 1, frames, 2 * B]),
                                g.ints([1, 1, 1, 1])], (1, 1, frames, B))
    power = g.op("ADD", [g.op("MUL", [re, re], (1, 1, frames, B)),
                         g.op("MUL", [im, im], (1, 1, frames, B))], (1, 1, frames, B))
    mag = g.op("SQRT", [power], (1, 1, frames, B))
    y = g.op("CONV_2D", [mag, g.const(w["c1"]), g.const(w["c1_b"])], (1, 1, frames, C),
             padding=0, strideW=1, strideH=1, fusedActivationFunction=1)
    y = g.op("CONV_2D", [y, g.const(w["c2"]), g.const(w["c2_b"])], (1, 1, 5, C), padding=0,
             strideW=2, strideH=1, fusedActivationFunction=1)
    y = g.op("DEPTHWISE_CONV_2D", [y, g.const(w["dw"]), g.const(w["dw_b"])], (1, 1, 3, C),
             padding=1, strideW=1, strideH=1, depthMultiplier=1, fusedActivationFunction=3)
    y = g.op("MAX_POOL_2D", [y], (1, 1, 2, C), padding=1, strideW=1, strideH=1,
             filterWidth=2, filterHeight=1)
    feat = g.op("MEAN", [y, g.ints([2])], (1, 1, C), keepDims=False)
    feat = g.op("RESHAPE", [feat, g.ints([1, C])], (1, C))
    h0, c0 = g.op("UNPACK", [state], None, outputs=[g.tensor("h0", (1, H)),
                                                    g.tensor("c0", (1, H))], num=2, axis=0)
    gates = g.op("ADD", [g.op("FULLY_CONNECTED", [feat, g.const(w["wi"]), g.const(w["b"])],
                              (1, 4 * H)),
                         g.op("FULLY_CONNECTED", [h0, g.const(w["wh"]), -1], (1, 4 * H))],
                 (1, 4 * H))
    i, f, c, o = g.op("SPLIT", [g.ints(1), gates], None, outputs=[
        g.tensor(f"gate{k}", (1, H)) for k in range(4)], numSplits=4)
    i, f, o = (g.op("LOGISTIC", [v], (1, H)) for v in (i, f, o))
    c1 = g.op("ADD", [g.op("MUL", [f, c0], (1, H)),
                      g.op("MUL", [i, g.op("TANH", [c], (1, H))], (1, H))], (1, H))
    h1 = g.op("MUL", [o, g.op("TANH", [c1], (1, H))], (1, H))
    new_state = g.op("PACK", [h1, c1], (2, 1, H), name_out="stateN", valuesCount=2, axis=0)
    logit = g.op("FULLY_CONNECTED", [g.op("RELU", [h1], (1, H)), g.const(w["fc"]),
                                     g.const(w["fc_b"])], (1, 1))
    prob = g.op("LOGISTIC", [logit], (1, 1), name_out="output")
    return g.build([inp, state, gain], [prob, new_state])


def chunks(steps=STEPS):
    """Silero's input: 64 samples of context before each 512-sample chunk, float32[steps, 576]."""
    s = speech_16k((steps + 1) * N / 16000)
    return np.stack([s[k * N:k * N + CTX + N] for k in range(steps)]).astype(np.float32)


def oracle(w, xs):
    """The equations in float64: STFT magnitude, convolutions, LSTM, sigmoid."""
    def sig(v):
        return 1 / (1 + np.exp(-v))

    def conv(x, k, b, stride, pad):          # x [L, Cin], k [O, K, Cin]
        x = np.vstack([np.zeros((pad[0], x.shape[1])), x, np.zeros((pad[1], x.shape[1]))])
        n = (len(x) - k.shape[1]) // stride + 1
        return np.stack([np.einsum("okc,kc->o", k, x[j * stride:j * stride + k.shape[1]])
                         for j in range(n)]) + b
    h, c = np.zeros(H), np.zeros(H)
    basis = w["stft"][:, 0, :, 0].astype(np.float64)
    out = []
    for x in xs.astype(np.float64) * GAIN:
        x = np.concatenate([x, x[-2:-CTX - 2:-1]])            # reflect, 64 after
        frames = np.stack([x[j * HOP:j * HOP + NFFT] for j in range((640 - NFFT) // HOP + 1)])
        spec = frames @ basis.T
        mag = np.sqrt(spec[:, :B] ** 2 + spec[:, B:] ** 2)
        y = np.maximum(conv(mag, w["c1"][:, 0], w["c1_b"], 1, (1, 1)), 0)
        y = np.maximum(conv(y, w["c2"][:, 0], w["c2_b"], 2, (1, 1)), 0)
        dw = w["dw"][0, 0]
        y = np.clip(np.stack([(dw * y[j:j + 3]).sum(0) for j in range(3)]) + w["dw_b"], 0, 6)
        feat = np.maximum(y[:-1], y[1:]).mean(0)
        gi, gf, gc, go = np.split(w["wi"] @ feat + w["b"] + w["wh"] @ h, 4)
        c = sig(gf) * c + sig(gi) * np.tanh(gc)
        h = sig(go) * np.tanh(c)
        out.append(sig(w["fc"] @ np.maximum(h, 0) + w["fc_b"]))
    return np.array(out)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    w = weights()
    buf = silero_like(w)
    path = tmp_path_factory.mktemp("vad") / "vad.tflite"
    path.write_bytes(buf)
    xs = chunks()
    rt, state, ref = LiteRT(buf), np.zeros((2, 1, H), np.float32), []
    for x in xs:                                           # the state fed back by hand
        prob, state = rt(x[None], state, np.float32([GAIN]))
        ref.append(prob.reshape(-1))
    return w, path, xs, np.array(ref)


def _convert(path):
    return from_tflite(path, states={"state": "stateN"}, input_shapes={"input": (1, 576)},
                       constants={"gain": GAIN})


def test_silero_like_chunks_stream_within_1e5_of_litert_and_the_numpy_oracle(case):
    w, path, xs, ref = case
    model = _convert(path)
    kinds = [type(op).__name__ for op in model.layers]
    assert {"Conv1d", "Pad", "Pool1d", "Reduce"} <= set(kinds), kinds
    assert model.inputs == (("input", 576),)
    stream = model.stream("exact")
    ys = np.stack([stream.step(x) for x in xs])
    assert ref.std() > 0.01, ref.std()                     # the probability moves
    assert np.abs(ys - ref).max() <= 1e-5
    assert np.abs(ys - oracle(w, xs)).max() <= 1e-5
    np.testing.assert_array_equal(model.stream("exact").run(xs), ys)


def test_silero_like_int8_weights_reports_its_error(case):
    w, path, xs, ref = case
    model = _convert(path)
    q = quantize(model, xs, mode="int8-weights", min_macs=0, held_out=xs[None])
    err = np.abs(q.stream().run(xs) - model.stream().run(xs)).max()
    assert q.quantization["end_to_end"]["held_out"]["max_abs"] == pytest.approx(
        err, rel=1e-3, abs=1e-6)
    assert 0 < err < 0.05 and np.abs(q.stream().run(xs) - ref).max() < 0.05


def test_options_that_do_not_fit_the_file_are_refused_naming_them(case):
    path = case[1]
    with pytest.raises(UnsupportedOpError, match=r"input_shapes: 'input' is \[1, 512\], the "
                                                 r"file's input is \[1, 576\]"):
        from_tflite(path, states={"state": "stateN"}, input_shapes={"input": (1, 512)})
    with pytest.raises(UnsupportedOpError, match=r"constants: 'sr' is not a graph input"):
        from_tflite(path, states={"state": "stateN"}, constants={"sr": 16000})
    with pytest.raises(UnsupportedOpError, match=r"input 'input' is float32\[1, 576\]; "
                                                 r"supported: float32\[1, T, I\].*pass "
                                                 r"input_shapes=\{'input': \(1, 576\)\}"):
        from_tflite(path)


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "edgernn", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_convert_takes_state_input_shape_and_constant_for_tflite(case, tmp_path):
    import edgernn

    path, xs, ref = case[1], case[2], case[3]
    out = tmp_path / "vad.ernn"
    r = _cli("convert", path, "--state", "state=stateN", "--input-shape", "input=1,576",
             "--constant", "gain=0.5", "-o", out)
    assert r.returncode == 0, r.stderr
    model = edgernn.load(out)
    assert model.provenance["constants"] == {"gain": 0.5}
    assert np.abs(model.stream("exact").run(xs[:50]) - ref[:50]).max() <= 1e-5
    r = _cli("convert", path, "--state", "state=stateN", "--input-shape", "input=1,512",
             "--constant", "gain=0.5", "-o", tmp_path / "bad.ernn")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "'input' is [1, 512], the file's input is [1, 576]" in r.stderr.strip().splitlines()[-1]


def _framed_lstm(variable: bool):
    """frame [1, 64] -> Conv1D(8, k 8, stride 4, relu) -> mean over the length -> a fused
    stateful LSTM(12) -> Dense(2); LiteRT keeps the LSTM state between calls."""
    r = np.random.default_rng(7)
    w = {"k": (r.standard_normal((8, 1, 8, 1)) * 2).astype(np.float32),
         "kb": (r.standard_normal(8) * 0.1).astype(np.float32),
         "wi": (r.standard_normal((4, 12, 8)) * 0.5).astype(np.float32),
         "wh": (r.standard_normal((4, 12, 12)) * 0.3).astype(np.float32),
         "b": (r.standard_normal((4, 12)) * 0.1).astype(np.float32),
         "fc": (r.standard_normal((2, 12)) * 0.5).astype(np.float32)}
    g = Graph()
    x = g.input("frame", (1, 64))
    y = g.op("RESHAPE", [x, g.ints([1, 1, 64, 1])], (1, 1, 64, 1))
    y = g.op("CONV_2D", [y, g.const(w["k"]), g.const(w["kb"])], (1, 1, 15, 8), padding=1,
             strideW=4, strideH=1, fusedActivationFunction=1)
    y = g.op("MEAN", [y, g.ints([2])], (1, 1, 8), keepDims=False)
    ins = [y, *(g.const(w["wi"][k]) for k in range(4)), *(g.const(w["wh"][k]) for k in range(4)),
           -1, -1, -1, *(g.const(w["b"][k]) for k in range(4)), -1, -1,
           g.tensor("h", (1, 12), variable=variable), g.tensor("c", (1, 12), variable=variable),
           -1, -1, -1, -1]
    h = g.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, (1, 1, 12), fusedActivationFunction=4)
    out = g.op("FULLY_CONNECTED", [h, g.const(w["fc"]), -1], (1, 1, 2), keepNumDims=True)
    return w, g.build([x], [out])


def test_stateful_fused_lstm_after_a_conv_within_a_step_streams_like_litert(tmp_path):
    w, buf = _framed_lstm(True)
    (tmp_path / "m.tflite").write_bytes(buf)
    model = from_tflite(tmp_path / "m.tflite", input_shapes={"frame": (1, 64)})
    assert [type(op).__name__ for op in model.layers] == ["Conv1d", "Reduce", "LSTM", "Dense"]
    xs = speech_16k(200 * 64 / 16000).reshape(200, 64) * 4
    rt = LiteRT(buf)
    ref = np.stack([rt(x[None])[0].reshape(-1) for x in xs])   # state kept by LiteRT
    stream = model.stream("exact")
    ys = np.stack([stream.step(x) for x in xs])
    assert ref.std() > 0.05
    assert np.abs(ys - ref).max() <= 1e-5

    def sig(v):
        return 1 / (1 + np.exp(-v))
    h, c, want = np.zeros(12), np.zeros(12), []
    for x in xs.astype(np.float64):
        frames = np.stack([x[j * 4:j * 4 + 8] for j in range(15)])
        feat = np.maximum(frames @ w["k"][:, 0, :, 0].T + w["kb"], 0).mean(0)
        gi, gf, gc, go = (w["wi"][q] @ feat + w["wh"][q] @ h + w["b"][q] for q in range(4))
        c = sig(gf) * c + sig(gi) * np.tanh(gc)
        h = sig(go) * np.tanh(c)
        want.append(w["fc"] @ h)
    assert np.abs(ys - np.array(want)).max() <= 1e-5


def test_fused_lstm_that_forgets_between_calls_is_refused_in_a_step_walk(tmp_path):
    (tmp_path / "m.tflite").write_bytes(_framed_lstm(False)[1])
    with pytest.raises(UnsupportedOpError, match=r"UNIDIRECTIONAL_SEQUENCE_LSTM \(operator 3\)"
                                                 r": its state is not kept between calls"):
        from_tflite(tmp_path / "m.tflite", input_shapes={"frame": (1, 64)})
