"""edgernn.audio.Denoiser: latency, block sizes, attenuation limit, model checks."""

import subprocess
import sys

import numpy as np
import pytest

import edgernn
from edgernn.audio import Denoiser, FrontEndConfig

CFG = FrontEndConfig()


def gain_model(value, bands=CFG.num_bands, features=None):
    """A model whose band gains are the constant `value` (Dense with zero weights)."""
    f = 2 * bands + 1 if features is None else features
    w = np.zeros((bands, f), np.float32)
    return edgernn.Model([edgernn.Dense(w, np.full(bands, value, np.float32))])


def gru_model(rng):
    f, b = CFG.num_features, CFG.num_bands
    s = 0.2
    return edgernn.Model([
        edgernn.GRU(rng.normal(0, s, (48, f)).astype(np.float32),
                    rng.normal(0, s, (48, 16)).astype(np.float32)),
        edgernn.Dense(rng.normal(0, s, (b, 16)).astype(np.float32), activation="sigmoid")])


def _blocks(x, sizes):
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append(x[i:i + n])
        i, k = i + n, k + 1
    return out


@pytest.mark.parametrize("sizes", [[1], [37], [160], [333], [4000], [0, 5, 1000, 2, 161]])
def test_unity_gains_output_is_input_delayed_by_latency(rng, sizes):
    d = Denoiser(gain_model(1.0))
    assert d.latency == CFG.win - 1 == 319 and d.sample_rate == 16000
    x = rng.uniform(-1, 1, 8000).astype(np.float32)
    y = np.concatenate([d.process(b) for b in _blocks(x, sizes)])
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y[d.latency:], x[:-d.latency], atol=1e-5)
    np.testing.assert_allclose(y[:d.latency], 0.0, atol=1e-12)


def test_any_block_sizes_give_the_same_bits_and_reset_restarts(rng):
    d = Denoiser(gru_model(rng))
    x = (0.1 * rng.standard_normal(6000)).astype(np.float32)
    whole = d.process(x)
    assert np.abs(whole).max() > 1e-3
    d.reset()
    pieces = np.concatenate([d.process(b) for b in _blocks(x, [1, 159, 7, 480, 2])])
    assert np.array_equal(whole, pieces)
    assert d.frames == len(x) // d.hop


def test_attenuation_limit_floors_the_gains(rng):
    x = rng.uniform(-1, 1, 4000).astype(np.float32)
    assert np.abs(Denoiser(gain_model(0.0)).process(x)).max() < 1e-12
    d = Denoiser(gain_model(0.0), attenuation_limit_db=12)
    y = d.process(x)
    np.testing.assert_allclose(y[d.latency:], 10 ** (-12 / 20) * x[:-d.latency], atol=1e-5)
    d.attenuation_limit_db = None
    assert d.attenuation_limit_db is None
    with pytest.raises(edgernn.EdgeRNNError, match=">= 0 dB"):
        d.attenuation_limit_db = -3


def test_gains_above_one_or_nan_are_clipped(rng):
    x = rng.uniform(-1, 1, 3000).astype(np.float32)
    d = Denoiser(gain_model(7.0))
    np.testing.assert_allclose(d.process(x)[d.latency:], x[:-d.latency], atol=1e-5)


def test_nonfinite_samples_are_counted_and_replaced(rng):
    d = Denoiser(gain_model(1.0))
    x = rng.uniform(-1, 1, 1000).astype(np.float32)
    x[[10, 500]] = [np.nan, np.inf]
    y = d.process(x)
    assert d.nonfinite_samples == 2 and np.isfinite(y).all()


@pytest.mark.parametrize("model, match", [
    (lambda: gain_model(1.0, features=64), "2 x bands \\+ 1 features"),
    (lambda: gain_model(1.0, bands=16, features=CFG.num_features), "must output 32 band gains"),
])
def test_models_of_the_wrong_shape_are_refused(model, match):
    with pytest.raises(edgernn.EdgeRNNError, match=match):
        Denoiser(model())


def test_block_must_be_one_channel_of_floats():
    d = Denoiser(gain_model(1.0))
    with pytest.raises(edgernn.EdgeRNNError, match="1-D float array"):
        d.process(np.zeros((10, 2), np.float32))
    with pytest.raises(edgernn.EdgeRNNError, match="1-D float array"):
        d.process(np.zeros(10, np.int16))


def test_sample_rate_comes_from_the_model_provenance():
    m = gain_model(1.0)
    m.provenance["audio.sample_rate"] = 48000
    d = Denoiser(m)
    assert (d.sample_rate, d.hop, d.latency) == (48000, 480, 959)
    with pytest.raises(edgernn.EdgeRNNError, match="trained at 48000 Hz"):
        Denoiser(m, sample_rate=16000)


def test_importing_edgernn_audio_loads_no_file_or_device_library():
    code = ("import sys, edgernn.audio; bad = [m for m in ('soundfile', 'soxr', 'sounddevice', "
            "'torch', 'converters', 'matplotlib') if m in sys.modules]; print(bad)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == "[]"


def graph_model(first="vad", gains_name="gains"):
    """Graph model: gains = 0.5 everywhere, vad = sigmoid(8 voicing - 4), outputs in any order."""
    f, b = CFG.num_features, CFG.num_bands
    x = edgernn.Input(f, name="features")
    wv = np.zeros((1, f), np.float32)
    wv[0, -1] = 8.0
    vad = edgernn.Dense(wv, np.array([-4.0], np.float32), activation="sigmoid")(x, name="vad")
    gains = edgernn.Dense(np.zeros((b, f), np.float32), np.full(b, 0.5, np.float32))(
        x, name=gains_name)
    outs = [vad, gains] if first == "vad" else [gains, vad]
    return edgernn.Model(inputs=x, outputs=outs)


def test_graph_model_gains_by_name_and_voice_activity_output(rng):
    d = Denoiser(graph_model(first="vad"))
    assert d.vad is None
    t = np.arange(1600) / 16000
    x = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    y = d.process(x)
    voicing = float(d.frontend.features[-1])
    assert voicing > 0.9
    assert d.vad == pytest.approx(1 / (1 + np.exp(-(8 * voicing - 4))), abs=1e-6)
    np.testing.assert_allclose(y[d.latency:], 0.5 * x[:-d.latency], atol=1e-5)
    noise = rng.standard_normal(1600).astype(np.float32)
    d.process(noise)
    assert d.vad < 0.2


def test_graph_model_without_a_gains_output_uses_the_first_output():
    with pytest.raises(edgernn.EdgeRNNError, match="output 'vad' has 1 values"):
        Denoiser(graph_model(first="vad", gains_name="g"))
    d = Denoiser(graph_model(first="g", gains_name="g"))
    assert d.process(np.zeros(480, np.float32)).shape == (480,) and d.vad is not None
