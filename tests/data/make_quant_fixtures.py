"""Make the already-quantised LiteRT fixtures of ``tests/test_quantized_sources.py``.

Runs in a separate TensorFlow environment, never in tests::

    python3 -m venv /work/tfvenv
    /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 ai-edge-litert==2.3.0
    /work/tfvenv/bin/python tests/data/make_quant_fixtures.py

tf-keras models with input (1, 1, I) (one step per ``invoke``; the fused LSTM
keeps its state in variable tensors, the GRU is ``stateful=True``), random
weights (fixed seeds), converted by the real ``TFLiteConverter``:

``q_lstm_drq``   dynamic range: int8 weights, float activations (hybrid kernels)
``q_gru_drq``    dynamic range GRU (a ``WHILE`` loop with hybrid FULLY_CONNECTEDs)
``q_lstm_int8``  full integer: int8 weights and activations, int16 cell state
                 (LiteRT's 8x8_16 LSTM), float input/output through QUANTIZE /
                 DEQUANTIZE, from a representative dataset of sines plus noise
``q_rnnoise_drq`` dynamic range, a graph: the RNNoise-v0.1-shaped denoiser (Dense,
                 three stateful GRUs fed by CONCATENATIONs, two heads); LiteRT
                 quantises the tensors of 1024 elements or more and leaves the
                 others (the 42x24 Dense, the VAD head) float

Each ``<case>.tflite`` has ``<case>.npz`` beside it: ``x`` float32[T, I] (sines plus
noise, not the calibration data), ``y`` LiteRT's outputs one ``invoke`` per step,
``y_float`` the float Keras model's outputs (the same weights before conversion).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as K  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

OUT = Path(__file__).resolve().parent / "tflite_quant"
I, H, O = 32, 32, 4
STEPS = 400


def signal(T, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    f, ph = rng.uniform(0.02, 0.3, I), rng.uniform(0, 6.3, I)
    return (np.sin(f * t + ph) + 0.3 * rng.standard_normal((T, I))).astype(np.float32)


def build(kind, seed):
    rnn = (K.layers.LSTM(H) if kind == "lstm" else
           K.layers.GRU(H, stateful=True, reset_after=True))
    m = K.Sequential([K.Input(batch_shape=(1, 1, I)), rnn, K.layers.Dense(O)])
    rng = np.random.default_rng(seed)
    m.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in m.get_weights()])
    return m


def convert(model, full_int8=False):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if full_int8:
        def rep():
            for k in range(8):
                for x in signal(100, 100 + k):
                    yield [x.reshape(1, 1, I)]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def stream(buf, xs):
    it = Interpreter(model_content=buf, num_threads=1)
    it.allocate_tensors()
    i = it.get_input_details()[0]["index"]
    o = it.get_output_details()[0]["index"]
    ys = []
    for x in xs:
        it.set_tensor(i, x.reshape(1, 1, -1))
        it.invoke()
        ys.append(it.get_tensor(o).reshape(-1).copy())
    return np.stack(ys)


def rnnoise():
    L = K.layers
    x = K.Input(batch_shape=(1, 1, 42), name="features")
    d = L.Dense(24, activation="tanh", name="input_dense")(x)
    g1 = L.GRU(24, return_sequences=True, stateful=True, name="vad_gru")(d)
    g2 = L.GRU(48, return_sequences=True, stateful=True, name="noise_gru")(
        L.Concatenate(name="noise_input")([x, d, g1]))
    g3 = L.GRU(96, return_sequences=True, stateful=True, name="denoise_gru")(
        L.Concatenate(name="denoise_input")([x, g1, g2]))
    m = K.Model(x, [L.Dense(22, activation="sigmoid", name="gains")(g3),
                    L.Dense(1, activation="sigmoid", name="vad")(g1)])
    rng = np.random.default_rng(500)
    m.set_weights([rng.normal(0.0, (1 / w.shape[0]) ** 0.5 if w.ndim == 2 else 0.1,
                              w.shape).astype(np.float32) for w in m.get_weights()])
    return m


def stream_graph(buf, xs):
    """LiteRT one invoke per step; the outputs concatenated in the model's order."""
    it = Interpreter(model_content=buf, num_threads=1)
    it.allocate_tensors()
    i = it.get_input_details()[0]["index"]
    outs = it.get_output_details()
    ys = []
    for x in xs:
        it.set_tensor(i, x.reshape(1, 1, -1))
        it.invoke()
        ys.append(np.concatenate([it.get_tensor(o["index"]).reshape(-1) for o in outs]))
    return np.stack(ys), [o["name"] for o in outs]


def make_rnnoise():
    model = rnnoise()
    buf = convert(model)  # before any call: the stateful GRUs' variables start at zero
    xs = (0.8 * np.random.default_rng(501).standard_normal((STEPS, 42))).astype(np.float32)
    model.reset_states()
    y_float = np.stack([np.concatenate([np.asarray(v).reshape(-1) for v in
                                        model(x.reshape(1, 1, -1), training=False)])
                        for x in xs])
    (OUT / "q_rnnoise_drq.tflite").write_bytes(buf)
    y, names = stream_graph(buf, xs)
    np.savez_compressed(OUT / "q_rnnoise_drq.npz", x=xs, y=y, y_float=y_float,
                        outputs=np.array(names))
    print(f"q_rnnoise_drq: {len(buf)} bytes, outputs {names}; max |LiteRT - float| = "
          f"{np.abs(y - y_float).max():.3g}")


def main():
    OUT.mkdir(exist_ok=True)
    make_rnnoise()
    xs = signal(STEPS, 7)
    for name, kind, full in (("q_lstm_drq", "lstm", False), ("q_gru_drq", "gru", False),
                             ("q_lstm_int8", "lstm", True)):
        model = build(kind, seed=len(name))
        seq = K.Sequential([K.Input(shape=(None, I)),
                            (K.layers.LSTM(H, return_sequences=True) if kind == "lstm" else
                             K.layers.GRU(H, reset_after=True, return_sequences=True)),
                            K.layers.Dense(O)])
        seq.set_weights(model.get_weights())
        y_float = seq(xs[None], training=False).numpy()[0]
        buf = convert(model, full)
        (OUT / f"{name}.tflite").write_bytes(buf)
        y = stream(buf, xs)
        np.savez_compressed(OUT / f"{name}.npz", x=xs, y=y, y_float=y_float)
        print(f"{name}: {len(buf)} bytes; max |LiteRT - float| = "
              f"{np.abs(y - y_float).max():.3g}")


if __name__ == "__main__":
    main()
