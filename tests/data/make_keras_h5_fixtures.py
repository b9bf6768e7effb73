"""Make the Keras 2 ``.h5`` fixtures of ``tests/test_convert_keras.py``.

Runs in a separate TensorFlow environment with tf-keras (Keras 2), never in
tests::

    /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /work/tfvenv/bin/python tests/data/make_keras_h5_fixtures.py

Each ``keras/<case>.h5`` (``model.save(..., save_format="h5")``) has a
``<case>.npz`` beside it with fixed-seed random weights' reference outputs:

``x``  float32[T, I] (int32[T] for Embedding inputs)  one sequence
``y``  float32[T, O] ``model.predict(x[None])[0]``, or float32[1, O] when the
       last layer has ``return_sequences=False``
For the stateful case ``x`` is two chunks fed one after the other with state
carried, and ``y`` their outputs stacked.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tf_keras as K  # noqa: E402

OUT = Path(__file__).resolve().parent / "keras"
L = K.layers
I = 3
T = 12


def _cases():
    return {
        "simplernn": [L.SimpleRNN(6, return_sequences=True), L.Dense(3, activation="softmax")],
        "lstm": [L.LSTM(8), L.Dense(2, activation="sigmoid")],
        "gru_reset_after": [L.GRU(8, return_sequences=True), L.Dense(2)],
        "gru_reset_before": [L.GRU(8, reset_after=False), L.Dense(2, activation="tanh")],
        "bidir_concat": [L.Bidirectional(L.LSTM(4, return_sequences=True)), L.Dense(2)],
        "bidir_sum": [L.Bidirectional(L.GRU(4), merge_mode="sum"), L.Dense(2)],
        "dense_activation_dropout": [L.Dense(8), L.Activation("relu"), L.Dropout(0.3),
                                     L.SimpleRNN(5, activation="relu"), L.Dense(3),
                                     L.Activation("softmax")],
        "stack": [L.LSTM(8, return_sequences=True), L.GRU(6, return_sequences=True),
                  L.Dense(2, activation="sigmoid")],
        "hard_sigmoid_gates": [L.GRU(5, recurrent_activation="hard_sigmoid",
                                     return_sequences=True), L.Dense(2)],
    }


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(np.float32)
                       for w in model.get_weights()])


def _save(model, name, x, y):
    model.save(OUT / f"{name}.h5", save_format="h5")
    np.savez_compressed(OUT / f"{name}.npz", x=x, y=np.asarray(y, np.float32))
    print(f"{name}: x {x.shape} y {np.shape(y)}")


def main():
    OUT.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for seed, (name, layers) in enumerate(_cases().items()):
        K.utils.set_random_seed(seed)
        model = K.Sequential([K.Input(shape=(None, I))] + layers)
        _randomise(model, seed)
        x = rng.standard_normal((T, I)).astype(np.float32)
        y = model.predict(x[None], verbose=0)[0]
        _save(model, name, x, y.reshape(-1, y.shape[-1]))

    K.utils.set_random_seed(20)
    model = K.Sequential([K.Input(shape=(None,), dtype="int32"), L.Embedding(20, 5),
                          L.GRU(6), L.Dense(2)])
    _randomise(model, 20)
    x = rng.integers(0, 20, T).astype(np.int32)
    _save(model, "embedding", x, model.predict(x[None], verbose=0))

    K.utils.set_random_seed(21)
    model = K.Sequential([K.Input(batch_shape=(1, None, I)), L.LSTM(6, stateful=True,
                          return_sequences=True), L.Dense(2)])
    _randomise(model, 21)
    x = rng.standard_normal((2 * T, I)).astype(np.float32)
    y = [model.predict(x[None, :T], verbose=0)[0], model.predict(x[None, T:], verbose=0)[0]]
    _save(model, "stateful", x, np.concatenate(y))

    K.utils.set_random_seed(22)
    model = K.Sequential([K.Input(shape=(None, I)), L.Conv1D(2, 2)])
    model.save(OUT / "unsupported_conv1d.h5", save_format="h5")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
