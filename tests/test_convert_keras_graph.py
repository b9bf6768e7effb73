"""converters.keras for functional models whose layers form a graph: an
RNNoise-v0.1-shaped denoiser (Concatenate feeding GRUs, two heads), merge layers
and ops, several inputs and outputs -- against Keras 3 itself (torch backend),
and the committed Keras 2 fixtures of ``tests/data/make_keras_graph_fixtures.py``."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import edgernn  # noqa: E402
from converters import from_keras  # noqa: E402
from edgernn.errors import UnsupportedOpError  # noqa: E402

DATA = Path(__file__).parent / "data" / "keras"
TOL = 1e-5


@pytest.fixture(scope="module")
def keras():
    import keras
    assert keras.backend.backend() == "torch", (
        f"these tests run Keras 3 on the torch backend, got {keras.backend.backend()!r}")
    return keras


def _randomise(model, seed):
    """Weights ~ N(0, 1 / fan_in), biases N(0, 0.1) (see make_keras_graph_fixtures.py)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, (1 / w.shape[0]) ** 0.5 if w.ndim == 2 else 0.1,
                                  w.shape).astype(np.float32) for w in model.get_weights()])


def _rnnoise(keras):
    L = keras.layers
    keras.utils.set_random_seed(0)
    x = keras.Input((None, 42), name="features")
    d = L.Dense(24, activation="tanh", name="input_dense")(x)
    g1 = L.GRU(24, return_sequences=True, name="vad_gru")(d)
    g2 = L.GRU(48, return_sequences=True, name="noise_gru")(
        L.Concatenate(name="noise_input")([x, d, g1]))
    g3 = L.GRU(96, return_sequences=True, name="denoise_gru")(
        L.Concatenate(name="denoise_input")([x, g1, g2]))
    model = keras.Model(x, [L.Dense(22, activation="sigmoid", name="gains")(g3),
                            L.Dense(1, activation="sigmoid", name="vad")(g1)])
    _randomise(model, 0)
    return model


@pytest.fixture(scope="module")
def rnnoise(keras, tmp_path_factory):
    """(Keras model, x [1000, 42], Keras' outputs [1000, 23], {format: loaded model})."""
    net = _rnnoise(keras)
    x = (np.random.default_rng(1).standard_normal((1000, 42)) * 0.8).astype(np.float32)
    y = np.concatenate([np.asarray(v)[0] for v in net.predict(x[None], verbose=0)], -1)
    d = tmp_path_factory.mktemp("rnnoise_keras")
    models = {}
    for fmt in ("keras", "h5"):
        net.save(d / f"m.{fmt}")
        from_keras(d / f"m.{fmt}").save(d / f"{fmt}.ernn")
        models[fmt] = edgernn.load(d / f"{fmt}.ernn")
    return net, x, y, models


def test_rnnoise_functional_converts_to_a_graph_named_after_the_layers(rnnoise):
    _, _, _, models = rnnoise
    for model in models.values():
        assert [type(op).__name__ for op in model.layers] == [
            "Dense", "GRU", "Concat", "GRU", "Concat", "GRU", "Dense", "Dense"]
        assert model.inputs == (("features", 42),)
        assert model.outputs == (("gains", 22), ("vad", 1))
        assert model.stream().get_state().names == ("vad_gru.h", "noise_gru.h",
                                                    "denoise_gru.h")


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_rnnoise_saved_and_loaded_matches_keras_over_1000_steps(rnnoise, fmt):
    _, x, y, models = rnnoise
    ys = models[fmt].stream().run(x)
    assert np.abs(ys - y).max() <= TOL
    assert np.abs(models[fmt].split(ys)["vad"] - y[:, 22:]).max() <= TOL


def test_rnnoise_step_equals_run_and_batch_equals_single_streams(rnnoise):
    _, x, _, models = rnnoise
    model = models["keras"]
    s = model.stream()
    steps = np.stack([s.step(xt) for xt in x[:300]])
    np.testing.assert_array_equal(steps, model.stream().run(x[:300]))
    xb = np.stack([x[:200], x[200:400], x[400:600], x[600:800]])
    batch = model.streams(4)
    got = np.stack([batch.step(np.ascontiguousarray(xb[:, t])) for t in range(200)], axis=1)
    for i in range(4):
        np.testing.assert_array_equal(got[i], model.stream().run(xb[i]))


def test_keras2_rnnoise_fixture_has_the_same_graph_and_batches_like_singles():
    ref = np.load(DATA / "graph_rnnoise.npz")
    model = from_keras(DATA / "graph_rnnoise.h5")
    assert model.provenance["keras_version"].startswith("2.")
    assert model.outputs == (("gains", 22), ("vad", 1))
    assert [type(op).__name__ for op in model.layers].count("Concat") == 2
    xb = np.stack([ref["x"][:50], ref["x"][50:]])
    batch = model.streams(2)
    got = np.stack([batch.step(np.ascontiguousarray(xb[:, t])) for t in range(50)], axis=1)
    assert np.abs(got[0] - ref["y"][:50]).max() <= TOL
    np.testing.assert_array_equal(got[1], model.stream().run(xb[1]))


def test_merge_layers_ops_shared_layers_and_several_inputs_match_keras(keras, tmp_path):
    L, ops = keras.layers, keras.ops
    keras.utils.set_random_seed(3)
    a = keras.Input((None, 3), name="a")
    b = keras.Input((None, 2), name="b")
    shared = L.Dense(4, name="shared")
    pa = shared(L.Dense(3, name="pre_a")(a))
    g = L.LSTM(4, return_sequences=True, name="lstm")(a)
    pb = shared(L.Concatenate(name="cat_b")([b, L.Dense(1, name="one")(b)]))
    s = L.Add(name="sum3")([pa, g, pb])
    d = L.Subtract(name="diff")([s, pb])
    m = L.Multiply(name="gain")([d, L.Dense(4, activation="sigmoid", name="mask")(g)])
    avg = L.Average(name="avg")([m, g, pa])
    expr = 1.0 - (ops.concatenate([g, pa], axis=-1) * 0.5 + 2.0)
    last = L.Dense(2, name="last_head")(L.GRU(3, name="summary")(g))
    net = keras.Model([a, b], [avg, expr, last])
    _randomise(net, 3)
    xa, xb = (np.random.default_rng(4).standard_normal((1, 60, n)).astype(np.float32)
              for n in (3, 2))
    want = [np.asarray(v)[0] for v in net.predict([xa, xb], verbose=0)]
    net.save(tmp_path / "m.keras")
    model = from_keras(tmp_path / "m.keras")
    assert model.inputs == (("a", 3), ("b", 2))
    assert [n for n, _ in model.outputs][::2] == ["avg", "last_head"]
    assert model.return_sequences  # two outputs are per step, one the last step only
    assert model.provenance["last_step_outputs"] == ["last_head"]
    assert "shared@1.0" not in [t.name for t in model.graph.nodes]
    assert {"shared", "shared@1"} <= {t.name for t in model.graph.nodes}
    parts = model.split(model.stream().run(np.concatenate([xa[0], xb[0]], axis=-1)))
    got = list(parts.values())
    assert np.abs(got[0] - want[0]).max() <= TOL
    assert np.abs(got[1] - want[1]).max() <= TOL
    assert np.abs(got[2][-1] - want[2]).max() <= TOL


def test_unsupported_graph_constructs_name_the_layer(keras, tmp_path):
    L, ops = keras.layers, keras.ops
    x = keras.Input((None, 3), name="x")
    g = L.GRU(3, return_sequences=True, name="g")(x)
    last = L.GRU(3, name="last")(x)
    cases = {
        "time_axis": (L.Concatenate(axis=1, name="cat_t")([x, g]), r"'cat_t'.*axis 1"),
        "maximum": (L.Maximum(name="mx")([x, g]), r"'mx'.*'Maximum'"),
        "op": (ops.maximum(x, g), r"keras.src.ops.*Maximum"),
        "mixed": (L.Add(name="mix")([L.Dense(3)(last), L.Dense(3)(g)]),
                  r"'mix'.*last-step"),
        "initial_state": (L.GRU(3, name="g2")(x, initial_state=last), r"'g2'.*keyword"),
    }
    for name, (out, pattern) in cases.items():
        keras.Model(x, out).save(tmp_path / f"{name}.keras")
        with pytest.raises(UnsupportedOpError, match=pattern):
            from_keras(tmp_path / f"{name}.keras")


def test_merge_of_broadcast_sizes_is_refused_naming_the_layer(keras, tmp_path):
    L = keras.layers
    x = keras.Input((None, 3), name="x")
    keras.Model(x, L.Multiply(name="scale")([x, L.Dense(1)(x)])).save(tmp_path / "b.keras")
    with pytest.raises(UnsupportedOpError, match=r"'scale'.*broadcasting"):
        from_keras(tmp_path / "b.keras")
