"""converters.keras against Keras itself.

Two references: the committed Keras 2 ``.h5`` fixtures with the outputs
tf-keras' ``predict`` gave (``tests/data/make_keras_h5_fixtures.py``), and
Keras 3 run live here on the torch backend (models built with fixed seeds,
saved as ``.keras``, converted, compared). Float parity: 1e-5 absolute.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import edgernn  # noqa: E402
from converters import from_keras  # noqa: E402
from edgernn.errors import ModelFormatError, UnsupportedOpError  # noqa: E402

DATA = Path(__file__).parent / "data" / "keras"
TOL = 1e-5
H5_CASES = sorted(p.stem for p in DATA.glob("*.h5") if not p.stem.startswith("unsupported"))


def _run(model, x):
    return model.stream().run(x)


def _check_rows(model, ys, y_ref, t):
    """``run`` gives every step, or only the last for return_sequences=False, as Keras."""
    assert t > 1 and model.return_sequences is (y_ref.shape[0] == t)
    assert model.provenance["output"] == ("every_step" if model.return_sequences
                                          else "last_step")
    assert ys.shape == y_ref.shape


# --- committed Keras 2 fixtures ------------------------------------------------

def test_h5_fixtures_present():
    assert len(H5_CASES) >= 10, H5_CASES


@pytest.mark.parametrize("case", H5_CASES)
def test_from_keras_h5_matches_keras2_predict(case):
    ref = np.load(DATA / f"{case}.npz")
    model = from_keras(DATA / f"{case}.h5")
    ys = _run(model, ref["x"])
    _check_rows(model, ys, ref["y"], len(ref["x"]))
    np.testing.assert_allclose(ys, ref["y"], rtol=0, atol=TOL)
    assert model.provenance["source"] == "keras"
    assert model.provenance["keras_version"].startswith("2.")


@pytest.mark.parametrize("case", [c for c in H5_CASES if not c.startswith("bidir")])
def test_from_keras_h5_step_equals_run(case):
    ref = np.load(DATA / f"{case}.npz")
    model = from_keras(DATA / f"{case}.h5")
    s = model.stream()
    stepped = np.stack([s.step(x.reshape(-1)) for x in ref["x"]])
    ys = _run(model, ref["x"])
    np.testing.assert_array_equal(stepped if model.return_sequences else stepped[-1:], ys)


@pytest.mark.parametrize("case", ["gru_reset_before", "bidir_concat", "embedding"])
def test_from_keras_h5_save_load_same_outputs(case, tmp_path):
    ref = np.load(DATA / f"{case}.npz")
    model = from_keras(DATA / f"{case}.h5")
    model.save(tmp_path / "m.ernn")
    loaded = edgernn.load(tmp_path / "m.ernn")
    np.testing.assert_array_equal(_run(loaded, ref["x"]), _run(model, ref["x"]))
    assert loaded.provenance["sha256"] == model.provenance["sha256"]


def _h5_arrays(path):
    """Raw arrays of a Keras 2 .h5 by short name ('kernel', 'recurrent_kernel', ...)."""
    out = {}
    with h5py.File(path) as f:
        mw = f["model_weights"]
        for layer in mw.attrs["layer_names"]:
            g = mw[layer]
            for n in g.attrs["weight_names"]:
                n = n.decode() if isinstance(n, bytes) else n
                kind = "dense" if n.startswith("dense") else "rnn"
                out[f"{kind}/{n.rsplit('/', 1)[1][:-2]}"] = np.asarray(g[n], np.float64)
    return out


def test_from_keras_gru_reset_before_matches_numpy_oracle():
    """Keras 2 GRU(reset_after=False) -> Dense(tanh), written from Keras' equations."""
    w = _h5_arrays(DATA / "gru_reset_before.h5")
    kern, rec, bias = w["rnn/kernel"], w["rnn/recurrent_kernel"], w["rnn/bias"]
    H = rec.shape[0]
    xs = np.load(DATA / "gru_reset_before.npz")["x"]
    h = np.zeros(H)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for x in xs.astype(np.float64):
        xz, xr, xh = np.split(x @ kern + bias, 3)
        z = sig(xz + h @ rec[:, :H])
        r = sig(xr + h @ rec[:, H:2 * H])
        h = z * h + (1 - z) * np.tanh(xh + (r * h) @ rec[:, 2 * H:])
    y = np.tanh(h @ w["dense/kernel"] + w["dense/bias"])
    ys = _run(from_keras(DATA / "gru_reset_before.h5"), xs)
    np.testing.assert_allclose(ys[-1], y, rtol=0, atol=TOL)


def test_from_keras_unknown_layer_names_layer_and_class():
    with pytest.raises(UnsupportedOpError, match=r"'conv1d'.*'Conv1D'.*supported"):
        from_keras(DATA / "unsupported_conv1d.h5")


def test_from_keras_rejects_non_keras_file(tmp_path):
    p = tmp_path / "x.h5"
    p.write_bytes(b"not a model")
    with pytest.raises(ModelFormatError):
        from_keras(p)


# --- Keras 3, live on the torch backend ---------------------------------------

@pytest.fixture(scope="module")
def keras():
    import keras
    assert keras.backend.backend() == "torch", (
        f"these tests run Keras 3 on the torch backend, got {keras.backend.backend()!r}; "
        f"set KERAS_BACKEND=torch before keras is first imported")
    return keras


def _k3_cases(k):
    L = k.layers
    return {
        "lstm_1000": ([L.LSTM(8, return_sequences=True), L.Dense(2)], 1000),
        "gru_reset_after": ([L.GRU(8), L.Dense(3, activation="softmax")], 100),
        "gru_reset_before": ([L.GRU(6, reset_after=False, return_sequences=True),
                              L.Dense(2, activation="sigmoid")], 100),
        "simplernn_relu": ([L.SimpleRNN(5, activation="relu", return_sequences=True),
                            L.Dense(2)], 100),
        "lstm_hard_sigmoid": ([L.LSTM(4, recurrent_activation="hard_sigmoid",
                                      return_sequences=True)], 100),
        "bidir_ave": ([L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="ave"),
                       L.Dense(2)], 50),
        "bidir_mul": ([L.Bidirectional(L.SimpleRNN(3), merge_mode="mul")], 50),
        "bidir_concat_last": ([L.Bidirectional(L.LSTM(4)), L.Dense(2)], 50),
        "dense_activation_dropout": ([L.Dense(6), L.Activation("tanh"), L.Dropout(0.5),
                                      L.LeakyReLU(), L.LSTM(4), L.Dense(3), L.Softmax()], 100),
        "time_distributed": ([L.LSTM(4, return_sequences=True),
                              L.TimeDistributed(L.Dense(2, activation="sigmoid"))], 100),
        "log_softmax_unit_norm": ([L.GRU(4, return_sequences=True),
                                   L.Dense(3, activation="log_softmax"), L.Dense(3),
                                   L.UnitNormalization()], 100),
        "unit_norm_last": ([L.LSTM(4), L.Dense(3), L.UnitNormalization()], 60),
        "stack_no_bias": ([L.LSTM(4, use_bias=False, return_sequences=True),
                           L.GRU(3, use_bias=False, return_sequences=True),
                           L.Dense(2, use_bias=False), L.ReLU()], 100),
    }


def _k3_model(keras, layers, seed, inp=None):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([inp if inp is not None else keras.Input((None, 3)), *layers])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


CASES3 = ["lstm_1000", "gru_reset_after", "gru_reset_before", "simplernn_relu",
          "lstm_hard_sigmoid", "bidir_ave", "bidir_mul", "bidir_concat_last",
          "dense_activation_dropout", "stack_no_bias", "time_distributed",
          "log_softmax_unit_norm", "unit_norm_last"]


@pytest.mark.parametrize("case", CASES3)
def test_from_keras_keras3_matches_predict(keras, case, tmp_path):
    layers, T = _k3_cases(keras)[case]
    model = _k3_model(keras, layers, seed=CASES3.index(case))
    x = np.random.default_rng(1).standard_normal((T, 3)).astype(np.float32)
    y = np.asarray(model.predict(x[None], verbose=0))[0]
    y = y.reshape(-1, y.shape[-1])
    model.save(tmp_path / "m.keras")
    ours = from_keras(tmp_path / "m.keras")
    assert ours.provenance["format"] == "keras"
    ys = _run(ours, x)
    _check_rows(ours, ys, y, T)
    np.testing.assert_allclose(ys, y, rtol=0, atol=TOL)


def test_from_keras_keras3_embedding_and_save_load(keras, tmp_path):
    L = keras.layers
    model = _k3_model(keras, [L.Embedding(30, 4), L.GRU(5), L.Dense(2)], seed=40,
                      inp=keras.Input((None,), dtype="int32"))
    x = np.random.default_rng(2).integers(0, 30, 60).astype(np.int32)
    y = np.asarray(model.predict(x[None], verbose=0))
    model.save(tmp_path / "m.keras")
    ours = from_keras(tmp_path / "m.keras")
    ours.save(tmp_path / "m.ernn")
    loaded = edgernn.load(tmp_path / "m.ernn")
    assert loaded.return_sequences is False  # GRU(5) returns its last step only
    s = loaded.stream()
    stepped = np.stack([s.step(np.array([t])) for t in x])
    np.testing.assert_allclose(stepped[-1:], y, rtol=0, atol=TOL)
    np.testing.assert_array_equal(stepped[-1:], _run(loaded, x))
    np.testing.assert_array_equal(_run(ours, x), _run(loaded, x))


def test_from_keras_keras3_stateful_carries_state(keras, tmp_path):
    L = keras.layers
    model = _k3_model(keras, [L.GRU(6, stateful=True, return_sequences=True), L.Dense(2)],
                      seed=41, inp=keras.Input(batch_shape=(1, None, 3)))
    x = np.random.default_rng(3).standard_normal((40, 3)).astype(np.float32)
    y = np.concatenate([np.asarray(model.predict(x[None, :20], verbose=0))[0],
                        np.asarray(model.predict(x[None, 20:], verbose=0))[0]])
    model.save(tmp_path / "m.keras")
    s = from_keras(tmp_path / "m.keras").stream()
    got = np.concatenate([s.run(x[:20]), s.run(x[20:])])
    np.testing.assert_allclose(got, y, rtol=0, atol=TOL)


def test_from_keras_keras3_functional_chain_and_legacy_h5(keras, tmp_path):
    L = keras.layers
    keras.utils.set_random_seed(42)
    inp = keras.Input((None, 3))
    out = L.Dense(2, activation="sigmoid")(L.LSTM(5, return_sequences=True)(inp))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(42)
    model.set_weights([rng.normal(0, 0.5, w.shape) for w in model.get_weights()])
    x = rng.standard_normal((30, 3)).astype(np.float32)
    y = np.asarray(model.predict(x[None], verbose=0))[0]
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    for name in ("m.keras", "m.h5"):
        np.testing.assert_allclose(_run(from_keras(tmp_path / name), x), y, rtol=0, atol=TOL)


def test_from_keras_keras3_unsupported_constructs_name_the_layer(keras, tmp_path):
    L = keras.layers
    bad = {
        "mask_zero": ([L.Embedding(10, 3, mask_zero=True, name="emb"), L.GRU(2)],
                      keras.Input((None,), dtype="int32"), r"'emb'.*mask_zero"),
        "gelu": ([L.Dense(3, activation="gelu", name="d1")], None, r"'d1'.*'gelu'"),
        "go_backwards": ([L.GRU(3, go_backwards=True, name="g1")], None,
                         r"'g1'.*go_backwards=True.*reversed time order"),
        "go_backwards_seq": ([L.GRU(3, go_backwards=True, return_sequences=True,
                                    name="g2")], None, r"'g2'.*go_backwards=True"),
        "conv": ([L.Conv1D(2, 2, name="c1")], None, r"'c1'.*'Conv1D'"),
    }
    for name, (layers, inp, pattern) in bad.items():
        _k3_model(keras, layers, seed=0, inp=inp).save(tmp_path / f"{name}.keras")
        with pytest.raises(UnsupportedOpError, match=pattern):
            from_keras(tmp_path / f"{name}.keras")
