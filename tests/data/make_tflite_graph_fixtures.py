"""Make the LiteRT fixtures of ``tests/test_convert_tflite_graph.py``: graphs
(two inputs, two outputs, CONCATENATION, ADD/SUB/MUL of data and constants).

Runs in a separate TensorFlow environment, never in tests::

    /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 ai-edge-litert==2.3.0
    /work/tfvenv/bin/python tests/data/make_tflite_graph_fixtures.py

Keras 2 functional models, weights N(0, 1 / fan_in). Each ``graph/<case>.tflite``
has a ``graph/<case>.npz`` beside it: ``x`` float32[T, I], the main subgraph's
inputs concatenated in its order; ``y`` float32[T, O], LiteRT's outputs
concatenated in its order, from one ``invoke`` over the sequence (``mode ==
"sequence"``) or one per step (``"stream"``, a stateful GRU).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as K  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

OUT = Path(__file__).resolve().parent / "tflite" / "graph"
L = K.layers
T = 40


def _model(steps, stateful):
    a = K.Input(batch_shape=(1, steps, 3), name="a")
    b = K.Input(batch_shape=(1, steps, 2), name="b")
    d = L.Dense(4, activation="tanh", name="d")(a)
    g = L.GRU(4, return_sequences=True, stateful=stateful, name="g")(d)
    c = L.Concatenate(name="cat")([a, g, b])
    s = L.ReLU(name="relu")(L.Add(name="add")([d, g]))      # ADD with a fused RELU
    m = L.Multiply(name="mul")([s, g])
    sub = L.Subtract(name="sub")([m, d])
    scaled = 1.0 - (sub * 2.0 + 0.5)                         # constants, one on the left
    return K.Model([a, b], [L.Dense(2, name="o1")(c), scaled])


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, (1 / w.shape[0]) ** 0.5 if w.ndim == 2 else 0.1,
                                  w.shape).astype(np.float32) for w in model.get_weights()])


def _run(buf, xs, stream):
    it = Interpreter(model_content=buf, num_threads=1)
    it.allocate_tensors()
    ins, outs = it.get_input_details(), it.get_output_details()
    parts = np.split(xs, np.cumsum([d["shape"][2] for d in ins])[:-1], axis=-1)
    rows = []
    for t in range(len(xs)) if stream else [slice(None)]:
        for d, x in zip(ins, parts, strict=True):
            it.set_tensor(d["index"], np.ascontiguousarray(x[t].reshape(1, -1, x.shape[-1])))
        it.invoke()
        rows.append(np.concatenate([it.get_tensor(d["index"])[0] for d in outs], axis=-1))
    return np.concatenate(rows)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(300)
    for seed, (name, steps, stateful) in enumerate([("graph_sequence", T, False),
                                                    ("graph_stream", 1, True)], start=300):
        K.utils.set_random_seed(seed)
        model = _model(steps, stateful)
        _randomise(model, seed)
        buf = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        x = rng.standard_normal((T, 5)).astype(np.float32)
        y = _run(buf, x, stateful)
        (OUT / f"{name}.tflite").write_bytes(buf)
        np.savez_compressed(OUT / f"{name}.npz", x=x, y=y,
                            mode="stream" if stateful else "sequence")
        print(f"{name}: x {x.shape} y {y.shape}")


if __name__ == "__main__":
    main()
