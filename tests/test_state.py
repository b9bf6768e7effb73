"""Generic state (edgernn.state / edgernn.State): any tensor carried from one step to
the next, read at the start of a step, written at its end, zeroed by reset(), exposed
by name in get_state/set_state, stored in files (format 2.1)."""

import numpy as np
import pytest

import edgernn
from edgernn.errors import ModelFormatError
from tests.helpers import weights

F32 = np.float32


def unrolled_lstm(rng, n_in=5, hidden=6):
    """An LSTM cell written out as exporters unroll it (Keras/torch LSTMCell: gates
    i, f, g, o), with its h and c as generic state tensors."""
    W, U, b = weights(rng, 4 * hidden, n_in), weights(rng, 4 * hidden, hidden), \
        weights(rng, 4 * hidden)
    x = edgernn.Input(n_in, name="x")
    h = edgernn.state(hidden, name="h")
    c = edgernn.state(hidden, name="c")
    z = edgernn.add(edgernn.Dense(W, b)(x), edgernn.Dense(U)(h))
    zi, zf, zg, zo = edgernn.split(z, [hidden] * 4)
    i, f, o = (edgernn.Activation("sigmoid")(t) for t in (zi, zf, zo))
    g = edgernn.Activation("tanh")(zg)
    c_new = edgernn.add(edgernn.mul(f, c), edgernn.mul(i, g), name="c_new")
    h_new = edgernn.mul(o, edgernn.Activation("tanh")(c_new), name="h_new")
    model = edgernn.Model(inputs=x, outputs=h_new, updates={h: h_new, c: c_new})
    return model, (W, U, b)


def oracle(xs, W, U, b, h=None, c=None):
    """The cell's equations in float64 numpy."""
    H = U.shape[1]
    h = np.zeros(H) if h is None else h.astype(np.float64)
    c = np.zeros(H) if c is None else c.astype(np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    out = []
    for x in xs.astype(np.float64):
        z = W @ x + U @ h + b
        i, f, g, o = sig(z[:H]), sig(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), sig(z[3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.array(out), h, c


def test_an_unrolled_lstm_with_state_tensors_matches_its_equations(rng):
    model, (W, U, b) = unrolled_lstm(rng)
    xs = rng.normal(0, 1, (300, 5)).astype(F32)
    want, h, c = oracle(xs, W, U, b)
    ys = model.stream().run(xs)
    np.testing.assert_allclose(ys, want, atol=2e-6)
    s = model.stream()
    np.testing.assert_array_equal(np.stack([s.step(x).copy() for x in xs]), ys)  # step == run
    st = s.get_state()
    assert st.names == ("h", "c")
    np.testing.assert_allclose(st.arrays[0], h, atol=2e-6)
    np.testing.assert_allclose(st.arrays[1], c, atol=2e-6)


def test_state_is_zeroed_by_reset_and_set_by_name(rng):
    model, (W, U, b) = unrolled_lstm(rng)
    xs = rng.normal(0, 1, (20, 5)).astype(F32)
    s = model.stream()
    first = s.run(xs)
    s.reset()
    np.testing.assert_array_equal(s.run(xs), first)
    h0, c0 = rng.normal(0, 0.5, 6).astype(F32), rng.normal(0, 0.5, 6).astype(F32)
    s.set_state(edgernn.StreamState(("c", "h"), (c0, h0)))  # by name, in any order
    np.testing.assert_allclose(s.run(xs), oracle(xs, W, U, b, h0, c0)[0], atol=2e-6)


def test_batched_streams_keep_their_own_state(rng):
    model, _ = unrolled_lstm(rng)
    xs = rng.normal(0, 1, (30, 3, 5)).astype(F32)
    batch = model.streams(3)
    got = np.stack([batch.step(x).copy() for x in xs])
    for k in range(3):
        np.testing.assert_array_equal(got[:, k], model.stream().run(xs[:, k]))


def test_a_state_output_shows_the_value_from_before_the_step():
    x = edgernn.Input(2, name="x")
    prev = edgernn.state(2, name="prev")
    model = edgernn.Model(inputs=x, outputs=prev, updates={prev: x})  # a one-step delay
    xs = np.arange(10, dtype=F32).reshape(5, 2)
    ys = model.stream().run(xs)
    np.testing.assert_array_equal(ys[1:], xs[:-1])
    np.testing.assert_array_equal(ys[0], 0)


def test_state_round_trips_through_a_file_and_an_initial_state(tmp_path, rng):
    model, _ = unrolled_lstm(rng)
    xs = rng.normal(0, 1, (40, 5)).astype(F32)
    edgernn.save(model, tmp_path / "cell.ernn")
    again = edgernn.load(tmp_path / "cell.ernn")
    assert again.manifest["format_version"] == "2.1"
    np.testing.assert_array_equal(again.stream().run(xs), model.stream().run(xs))
    init = edgernn.StreamState(("h", "c"), (np.full(6, 0.5, F32), np.full(6, -0.5, F32)))
    g = model.graph
    started = edgernn.Model(inputs=g.inputs, outputs=g.outputs, updates=dict(g.updates),
                            initial_state=init)
    edgernn.save(started, tmp_path / "started.ernn")
    s = edgernn.load(tmp_path / "started.ernn").stream()
    np.testing.assert_array_equal(s.get_state().arrays[0], init.arrays[0])


def test_a_non_finite_state_is_reset_after_the_step():
    x = edgernn.Input(2)
    acc = edgernn.state(2, name="acc")
    new = edgernn.add(acc, x)
    s = edgernn.Model(inputs=x, outputs=new, updates={acc: new}).stream()
    s.step(np.array([np.inf, 1], F32))
    assert s.nonfinite_steps == 1
    np.testing.assert_array_equal(s.get_state().arrays[0], 0)  # both spans' values reset
    np.testing.assert_array_equal(s.step(np.array([1, 1], F32)), [1, 1])


@pytest.mark.parametrize("case, match", [
    ("no update", "have no update"),
    ("size", "has size 3, its update 2"),
    ("not a state", "is not a state tensor"),
    ("twice", "given two updates"),
])
def test_bad_updates_are_refused(case, match):
    x = edgernn.Input(2)
    s = edgernn.state(3, name="s")
    t = edgernn.state(2, name="t")
    y = edgernn.add(t, x)
    updates = {"no update": [(t, y)], "size": [(s, x), (t, y)], "not a state": [(y, x)],
               "twice": [(t, y), (t, x)]}[case]
    outs = [y, s] if case != "not a state" else [y]
    with pytest.raises(ModelFormatError, match=match):
        edgernn.Model(inputs=x, outputs=outs, updates=updates)


def test_quantize_keeps_the_state_updates_with_and_without_data(rng):
    from tests.helpers import need_module

    quantize = need_module("converters.quantize", "the converters").quantize
    model, _ = unrolled_lstm(rng)
    xs = rng.normal(0, 1, (200, 5)).astype(F32)
    for q in (quantize(model, mode="int8-weights", progress=False, min_macs=0),
              quantize(model, xs, mode="int8", progress=False, min_macs=0)):
        assert len(q.graph.updates) == 2
        assert any(type(op).__name__ == "Dense" and op.quant is not None for op in q.layers)
        np.testing.assert_allclose(q.stream().run(xs), model.stream().run(xs), atol=0.05)


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_every_update_reads_the_values_of_its_own_step(order):
    """A delay line (d2 <- d1 <- x) gives x two steps late whatever the order the
    updates are listed in; a swap (a <- b, b <- a) alternates: every update reads the
    step's values, none an already updated state."""
    x = edgernn.Input(1)
    d1, d2 = edgernn.state(1, name="d1"), edgernn.state(1, name="d2")
    ups = [(d1, x), (d2, d1)]
    m = edgernn.Model(inputs=x, outputs=d2, updates=dict(ups if order == "forward"
                                                         else ups[::-1]))
    xs = np.arange(1, 7, dtype=F32)[:, None]
    np.testing.assert_array_equal(m.stream().run(xs).ravel(), [0, 0, 1, 2, 3, 4])
    a, b = edgernn.state(1, name="a"), edgernn.state(1, name="b")
    swap = edgernn.Model(inputs=x, outputs=[edgernn.add(a, x), b], updates={a: b, b: a},
                         initial_state=edgernn.StreamState(("a", "b"), (np.ones(1, F32),
                                                                        np.full(1, 2, F32))))
    ys = swap.stream().run(np.zeros((4, 1), F32))
    np.testing.assert_array_equal(ys, [[1, 2], [2, 1], [1, 2], [2, 1]])
