"""Make the Keras 2 ``.h5`` fixtures of functional (graph) models.

Like ``make_keras_h5_fixtures.py`` (same ``<case>.h5`` + ``<case>.npz``
layout, picked up by ``tests/test_convert_keras.py``), for models whose
layers form a graph: Keras 2 writes the graph in its own node format. Runs in
a separate TensorFlow environment with tf-keras (Keras 2), never in tests::

    /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /work/tfvenv/bin/python tests/data/make_keras_graph_fixtures.py

``x`` float32[T, I]: the model's inputs concatenated along the features;
``y`` float32[T, O]: ``model.predict`` of its outputs, concatenated in order.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tf_keras as K  # noqa: E402

OUT = Path(__file__).resolve().parent / "keras"
L = K.layers
T = 100


def rnnoise():
    """RNNoise v0.1's shape (see tests/test_convert_keras_graph.py)."""
    x = K.Input((None, 42), name="features")
    d = L.Dense(24, activation="tanh", name="input_dense")(x)
    g1 = L.GRU(24, return_sequences=True, name="vad_gru")(d)
    g2 = L.GRU(48, return_sequences=True, name="noise_gru")(
        L.Concatenate(name="noise_input")([x, d, g1]))
    g3 = L.GRU(96, return_sequences=True, name="denoise_gru")(
        L.Concatenate(name="denoise_input")([x, g1, g2]))
    gains = L.Dense(22, activation="sigmoid", name="gains")(g3)
    vad = L.Dense(1, activation="sigmoid", name="vad")(g1)
    return K.Model(x, [gains, vad])


def merges():
    """Two inputs; Add of three, Subtract, Multiply, Average; a shared Dense."""
    a = K.Input((None, 3), name="a")
    b = K.Input((None, 2), name="b")
    shared = L.Dense(4, name="shared")
    pa = shared(L.Dense(3, name="pre_a")(a))
    g = L.LSTM(4, return_sequences=True, name="lstm")(a)
    pb = shared(L.Concatenate(name="cat_b")([b, L.Dense(1, name="one")(b)]))
    s = L.Add(name="sum3")([pa, g, pb])
    d = L.Subtract(name="diff")([s, pb])
    m = L.Multiply(name="gain")([d, L.Dense(4, activation="sigmoid", name="mask")(g)])
    avg = L.Average(name="avg")([m, g])
    return K.Model([a, b], [avg, L.Dense(2, name="head")(s)])


def _randomise(model, seed):
    """Weights ~ N(0, 1 / fan_in) (biases N(0, 0.1)), as trained nets have them.
    With N(0, 0.5) the 90- and 114-input GRUs are chaotic: tf-keras in float32
    and edgernn then both differ from a float64 run by ~1e-2, and a 1e-5
    comparison would test nothing."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, (1 / w.shape[0]) ** 0.5 if w.ndim == 2 else 0.1,
                                  w.shape).astype(np.float32) for w in model.get_weights()])


def main():
    rng = np.random.default_rng(100)
    for seed, (name, make) in enumerate({"graph_rnnoise": rnnoise,
                                         "graph_merges": merges}.items(), start=100):
        K.utils.set_random_seed(seed)
        model = make()
        _randomise(model, seed)
        xs = [rng.standard_normal((1, T, int(i.shape[-1]))).astype(np.float32)
              for i in model.inputs]
        ys = model.predict(xs, verbose=0)
        model.save(OUT / f"{name}.h5", save_format="h5")
        x = np.concatenate([v[0] for v in xs], axis=-1)
        y = np.concatenate([v[0] for v in ys], axis=-1)
        np.savez_compressed(OUT / f"{name}.npz", x=x, y=y.astype(np.float32))
        print(f"{name}: x {x.shape} y {y.shape}")


if __name__ == "__main__":
    main()
