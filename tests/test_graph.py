"""Graph models: the functional API, buffer placement, several inputs and outputs."""

import numpy as np
import pytest

import edgernn
from edgernn.kernels import optable as T
from tests import naive


def _r(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _gru(rng, i, h):
    return edgernn.GRU(_r(rng, 3 * h, i), _r(rng, 3 * h, h), _r(rng, 3 * h), _r(rng, 3 * h))


def rnnoise_like(rng, n_in=42):
    """Dense 42->24 tanh; GRU 24; GRU(concat(x, d, g1)) 48; GRU(concat(x, g1, g2)) 96;
    gains (22, sigmoid) from g3 and VAD (1, sigmoid) from g1 (RNNoise v0.1's shape)."""
    x = edgernn.Input(n_in, name="features")
    d = edgernn.Dense(_r(rng, 24, n_in), _r(rng, 24), "tanh")(x, name="dense")
    g1 = _gru(rng, 24, 24)(d, name="vad_gru")
    g2 = _gru(rng, n_in + 24 + 24, 48)(edgernn.concat([x, d, g1]), name="noise_gru")
    g3 = _gru(rng, n_in + 24 + 48, 96)(edgernn.concat([x, g1, g2]), name="denoise_gru")
    gains = edgernn.Dense(_r(rng, 22, 96), _r(rng, 22), "sigmoid")(g3, name="gains")
    vad = edgernn.Dense(_r(rng, 1, 24), _r(rng, 1), "sigmoid")(g1, name="vad")
    return edgernn.Model(inputs=x, outputs=[gains, vad])


def test_rnnoise_shaped_graph_matches_oracle_and_step_equals_run(rng, tmp_path):
    model = rnnoise_like(rng)
    assert model.outputs == (("gains", 22), ("vad", 1))
    xs = _r(rng, 300, 42, scale=1.5)
    ys = model.stream().run(xs)
    np.testing.assert_allclose(ys, naive.run(model, xs), atol=1e-5, rtol=0)
    s = model.stream()
    out = np.empty(23, np.float32)
    np.testing.assert_array_equal(np.stack([s.step(x, out=out).copy() for x in xs]), ys)
    parts = model.split(ys)
    np.testing.assert_array_equal(parts["vad"], ys[:, 22:])
    model.save(tmp_path / "g.ernn")
    again = edgernn.load(tmp_path / "g.ernn")
    assert [t.name for t in again.graph.nodes] == [t.name for t in model.graph.nodes]
    np.testing.assert_array_equal(again.stream().run(xs), ys)


def test_concat_inputs_are_written_in_place_and_shared_ones_copied(rng):
    """Each Concat input gets its slot inside the Concat's buffer (no copy) unless it
    already lives elsewhere: RNNoise's x and g1 feed two Concats -> two copies."""
    model = rnnoise_like(rng)
    P = model._segments()[0].plans[0].P
    ops = P[1:, T.OP]
    assert (ops == T.COPY).sum() == 2
    assert (ops == T.INPUT).sum() == 1 and (ops == T.OUTPUT).sum() == 2
    x = edgernn.Input(4)
    a = edgernn.Dense(_r(rng, 3, 4))(x)
    b = edgernn.Dense(_r(rng, 5, 4))(x)
    c = edgernn.Activation("tanh")(edgernn.concat([a, b]))
    P = edgernn.Model(inputs=x, outputs=c)._segments()[0].plans[0].P
    assert (P[1:, T.OP] == T.COPY).sum() == 0


def test_slices_adds_muls_and_two_inputs_match_the_oracle(rng):
    a = edgernn.Input(6, name="a")
    b = edgernn.Input(4, name="b")
    h = edgernn.LSTM(_r(rng, 32, 6), _r(rng, 32, 8))(a, name="lstm")
    lo, hi = edgernn.split(h, [4, 4])
    s = edgernn.add(lo, b)
    m = edgernn.mul(hi, _r(rng, 4))
    d = edgernn.sub(edgernn.mul(s, 0.5), m)
    r = edgernn.Activation("relu")(d, name="r")
    y = edgernn.Dense(_r(rng, 3, 12), None, "softmax")(edgernn.concat([r, hi, b]), name="y")
    model = edgernn.Model(inputs=[a, b], outputs=[y, lo])
    assert model.input_size == 10 and model.output_size == 7
    xs = _r(rng, 200, 10, scale=2)
    ys = model.stream().run(xs)
    np.testing.assert_allclose(ys, naive.run(model, xs), atol=1e-5, rtol=0)
    st = model.stream()
    np.testing.assert_array_equal(np.stack([st.step(x) for x in xs]), ys)


def test_batch_equals_single_streams_and_streams_subset(rng):
    model = rnnoise_like(rng)
    xs = _r(rng, 50, 5, 42, scale=1.5)
    singles = np.stack([model.stream().run(np.ascontiguousarray(xs[:, i])) for i in range(5)],
                       axis=1)
    batch = model.streams(5)
    np.testing.assert_array_equal(np.stack([batch.step(x).copy() for x in xs]), singles)
    np.testing.assert_array_equal(model.streams(5).run(xs), singles)
    # advancing a subset leaves the others untouched and matches single streams
    sub = model.streams(5)
    ref = [model.stream() for _ in range(5)]
    order = [np.array([4, 1]), np.array([0, 1, 2, 3, 4]), np.array([2])]
    for t in range(30):
        idx = order[t % 3]
        got = sub.step(xs[t, idx], streams=idx)
        want = np.stack([ref[i].step(xs[t, i]) for i in idx])
        np.testing.assert_array_equal(got, want)
    for i in range(5):
        np.testing.assert_array_equal(sub.get_state(i).arrays[0], ref[i].get_state().arrays[0])


def test_state_absmax_per_stream(rng):
    model = rnnoise_like(rng)
    batch = model.streams(3)
    X = _r(rng, 3, 42, scale=1)
    for _ in range(5):
        batch.step(X)
    want = [max(np.abs(a).max() for a in batch.get_state(i).arrays) for i in range(3)]
    np.testing.assert_array_equal(batch.state_absmax(), np.float32(want))


@pytest.mark.parametrize("streams,match", [
    (np.array([1, 1]), "listed once"), (np.array([5]), r"lie in \[0, 5\)"),
    (np.array([], np.int64), "non-empty"), (np.array([[0]]), "1-D"),
])
def test_streams_subset_is_checked(rng, streams, match):
    batch = rnnoise_like(rng).streams(5)
    with pytest.raises(edgernn.StreamError, match=match):
        batch.step(np.zeros((max(len(streams), 1), 42), np.float32), streams=streams)


@pytest.mark.parametrize("build,match", [
    (lambda x: edgernn.Dense(np.zeros((2, 5), np.float32))(x), "expects input size 5, got 4"),
    (lambda x: edgernn.add(x, edgernn.Input(3)), "operand sizes differ"),
    (lambda x: edgernn.slice(x, 2, 9), "out of range"),
    (lambda x: edgernn.split(x, [1, 2]), "do not add up"),
    (lambda x: edgernn.mul(x, np.ones(3, np.float32)), "constant has 3 values"),
    (lambda x: edgernn.concat([]), "one or more"),
])
def test_graph_building_errors_name_the_problem(build, match):
    with pytest.raises(edgernn.ModelFormatError, match=match):
        build(edgernn.Input(4))


def test_model_errors_name_the_problem(rng):
    x, y = edgernn.Input(4, name="x"), edgernn.Input(4, name="y")
    out = edgernn.add(x, y)
    with pytest.raises(edgernn.ModelFormatError, match="not among the model's inputs"):
        edgernn.Model(inputs=x, outputs=out)
    a = edgernn.Activation("relu")(x, name="same")
    b = edgernn.Activation("tanh")(a, name="same")
    with pytest.raises(edgernn.ModelFormatError, match="unique"):
        edgernn.Model(inputs=x, outputs=b)


def test_nonfinite_dense_output_is_counted_in_int64(rng):
    x = edgernn.Input(3)
    y = edgernn.Dense(_r(rng, 2, 3))(x)
    model = edgernn.Model(inputs=x, outputs=y)
    s = model.stream()
    s.step(np.ones(3, np.float32))
    assert s.nonfinite_steps == 0
    out = s.step(np.array([np.inf, 0, 0], np.float32))
    assert not np.isfinite(out).all() and s.nonfinite_steps == 1
    runner = s._segments[0][1][0]
    runner.L[0, T.S_NONFINITE] = 2**40
    s.step(np.array([np.nan, 0, 0], np.float32))
    assert s.nonfinite_steps == 2**40 + 1
