"""Stream semantics: step == run bit for bit, state snapshots, batches, generate, errors."""

import gc
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pytest

import edgernn
from edgernn.engine import entry
from tests import naive


def _r(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _lstm_gru_model(rng, i=10, h=24, o=6):
    return edgernn.Model([
        edgernn.LSTM(_r(rng, 4 * h, i), _r(rng, 4 * h, h), _r(rng, 4 * h), _r(rng, 4 * h)),
        edgernn.GRU(_r(rng, 3 * h, h), _r(rng, 3 * h, h), _r(rng, 3 * h), _r(rng, 3 * h)),
        edgernn.RNN(_r(rng, h, h), _r(rng, h, h)),
        edgernn.Dense(_r(rng, o, h), _r(rng, o), "softmax")])


def test_step_equals_run_bit_for_bit(rng):
    model = _lstm_gru_model(rng)
    xs = _r(rng, 500, 10, scale=1)
    ys = model.stream().run(xs)
    s = model.stream()
    out = np.empty(6, np.float32)
    stepped = np.stack([s.step(x, out=out).copy() for x in xs])
    np.testing.assert_array_equal(stepped, ys)
    s2 = model.stream()
    np.testing.assert_array_equal(np.stack([s2.step(x) for x in xs]), ys)


def test_run_in_chunks_equals_one_run(rng):
    model = _lstm_gru_model(rng)
    xs = _r(rng, 300, 10, scale=1)
    s = model.stream()
    parts = [s.run(xs[a:b]) for a, b in ((0, 1), (1, 128), (128, 300))]
    np.testing.assert_array_equal(np.concatenate(parts), model.stream().run(xs))


def test_state_snapshot_round_trips(rng):
    model = _lstm_gru_model(rng)
    xs = _r(rng, 200, 10, scale=1)
    s = model.stream()
    s.run(xs[:100])
    snap = s.get_state()
    assert snap.names == ("0.h", "0.c", "1.h", "2.h")
    tail = s.run(xs[100:])
    s.run(xs)  # move on
    s.set_state(snap)
    np.testing.assert_array_equal(s.run(xs[100:]), tail)
    other = model.stream()
    other.set_state(snap.copy())
    np.testing.assert_array_equal(other.run(xs[100:]), tail)
    s.reset()
    np.testing.assert_array_equal(s.run(xs), model.stream().run(xs))


def test_state_hands_over_between_compatible_models(rng):
    """An encoder's final state seeds a decoder whose state has the same shapes."""
    enc = edgernn.Model([edgernn.LSTM(_r(rng, 32, 5), _r(rng, 32, 8))])
    dec = edgernn.Model([edgernn.LSTM(_r(rng, 32, 3), _r(rng, 32, 8)),
                         edgernn.Dense(_r(rng, 3, 8))])
    se = enc.stream()
    se.run(_r(rng, 40, 5, scale=1))
    state = se.get_state()
    sd = dec.stream()
    sd.set_state(state)
    x = _r(rng, 1, 3)
    h, c = state.arrays
    st = {"h": h.astype(np.float64), "c": c.astype(np.float64)}
    ref = dec.layers[1].weight @ naive.step(dec.layers[0], x[0].astype(np.float64), st)
    np.testing.assert_allclose(sd.step(x[0]), ref, atol=1e-5)
    bad = edgernn.Model([edgernn.GRU(_r(rng, 24, 3), _r(rng, 24, 8))]).stream()
    with pytest.raises(edgernn.StreamError, match="shapes"):
        bad.set_state(state)


@pytest.mark.parametrize("h", [24, 48, 72])
def test_batch_of_streams_equals_single_streams(rng, h):
    """A lone stream's products take several 32-row tiles per pass (on AVX-512: 4, 3 or 2
    tiles share each input load; h = 24, 48, 72 give LSTMs of 3, 6 and 9 tiles), a batch's
    one tile at a time for two streams: the same sums in the same order, bit for bit."""
    model = _lstm_gru_model(rng, h=h)
    n, T = 5, 120
    XS = _r(rng, T, n, 10, scale=1)
    batch = model.streams(n)
    stepped = np.stack([batch.step(XS[t]).copy() for t in range(T)])
    for i in range(n):
        np.testing.assert_array_equal(stepped[:, i], model.stream().run(XS[:, i].copy()))
    batch.reset(2)
    single = model.stream()
    single.run(XS[:, 3].copy())
    np.testing.assert_array_equal(batch.get_state(3).arrays[0], single.get_state().arrays[0])
    assert not batch.get_state(2).arrays[0].any()
    batch.reset()
    np.testing.assert_array_equal(batch.run(XS), stepped)
    with pytest.raises(edgernn.StreamError, match="out of range"):
        batch.reset(n)


def test_generate_matches_python_loop(rng):
    model = edgernn.Model([edgernn.GRU(_r(rng, 48, 4), _r(rng, 48, 16)),
                           edgernn.Dense(_r(rng, 4, 16), activation="tanh")])
    x0 = _r(rng, 4, scale=1)
    got = model.stream().generate(x0, 50)
    s, x, ref = model.stream(), x0, []
    for _ in range(50):
        x = s.step(x)
        ref.append(x)
    np.testing.assert_array_equal(got, np.stack(ref))


def test_generate_argmax_feeds_tokens_through_embedding(rng):
    model = edgernn.Model([edgernn.Embedding(_r(rng, 12, 6, scale=1)),
                           edgernn.LSTM(_r(rng, 40, 6), _r(rng, 40, 10)),
                           edgernn.Dense(_r(rng, 12, 10, scale=2))])
    got = model.stream().generate(3, 30, feedback="argmax")
    s, tok, ref = model.stream(), 3, []
    for _ in range(30):
        y = s.step(np.array([tok]))
        ref.append(y)
        tok = int(np.argmax(y))
    np.testing.assert_array_equal(got, np.stack(ref))
    with pytest.raises(edgernn.StreamError, match="output_size == input_size"):
        model.stream().generate(3, 5)


def test_step_accepts_strided_views(rng):
    model = _lstm_gru_model(rng)
    xs = _r(rng, 20, 20, scale=1)
    a, b = model.stream(), model.stream()
    out = np.zeros(12, np.float32)[::2]
    for x in xs:
        want = a.step(np.ascontiguousarray(x[::2]))
        np.testing.assert_array_equal(b.step(x[::2], out=out), want)


@pytest.mark.parametrize("bad,match", [
    (np.zeros(9, np.float32), r"shape \(10,\), got float32 array of shape \(9,\)"),
    (np.zeros(10, np.float64), r"expected float32 array of shape \(10,\), got float64"),
    (np.zeros((1, 10), np.float32), r"shape \(1, 10\)"),
    ([0.0] * 10, "got list"),
])
def test_step_rejects_wrong_input(rng, bad, match):
    s = _lstm_gru_model(rng).stream()
    with pytest.raises(ValueError, match=match):
        s.step(bad)


def test_step_rejects_bad_out_and_tokens(rng):
    s = _lstm_gru_model(rng).stream()
    with pytest.raises(ValueError, match="out"):
        s.step(np.zeros(10, np.float32), out=np.zeros(5, np.float32))
    ro = np.zeros(6, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        s.step(np.zeros(10, np.float32), out=ro)
    emb = edgernn.Model([edgernn.Embedding(_r(rng, 5, 3))]).stream()
    with pytest.raises(ValueError, match=r"out of range \[0, 5\)"):
        emb.step(np.array([5]))
    with pytest.raises(ValueError, match="token ids"):
        emb.run(np.array([1, 2, 7]))


def test_trusted_out_changed_in_place_is_refused_before_stepping(rng):
    """``step`` checks a new ``out`` fully once; reshaped afterwards, it is refused with a
    clear error and the stream does not advance; made read-only, too, where the native
    image's entry checks it on every call (numba's entry, without the image, writes it:
    that check would cost the Pi's ``step`` a tenth)."""
    model = _lstm_gru_model(rng)
    xs = _r(rng, 3, 10, scale=1)
    s, ref = model.stream(), model.stream()
    out = np.zeros(6, np.float32)
    np.testing.assert_array_equal(s.step(xs[0], out=out), ref.step(xs[0]))
    out.shape = (2, 3)
    with pytest.raises(edgernn.StreamError, match=r"out: expected float32 array of shape \(6,\)"):
        s.step(xs[1], out=out)
    out.shape = (6,)
    if entry.checks_arrays(entry.native()):
        out.flags.writeable = False
        with pytest.raises(edgernn.StreamError, match="read-only"):
            s.step(xs[1], out=out)
    np.testing.assert_array_equal(s.step(xs[1]), ref.step(xs[1]))   # not advanced twice


def test_a_bad_out_of_any_kind_is_a_stream_error_and_a_stream_is_freed_by_refcount(rng):
    model = _lstm_gru_model(rng)
    s = model.stream()
    x = _r(rng, 10, scale=1)
    for bad in (False, 0, "out", [0.0] * 6):
        with pytest.raises(edgernn.StreamError, match="out"):
            s.step(x, out=bad)
    gc.disable()
    try:
        ref = weakref.ref(s)
        del s
        assert ref() is None   # no cycle: freed at once, not by the cyclic collector
    finally:
        gc.enable()


def test_a_token_models_error_names_the_out_that_no_longer_fits(rng):
    emb = edgernn.Model([edgernn.Embedding(_r(rng, 5, 3))]).stream()
    out = np.zeros(3, np.float32)
    emb.step(np.array([1]), out=out)
    out.resize(2, refcheck=False)   # the trusted out, shrunk in place
    with pytest.raises(edgernn.StreamError, match=r"step: out: .*shape \(3,\), got .*\(2,\)"):
        emb.step(np.array([2]), out=out)


def test_nonfinite_state_is_counted_and_reset(rng):
    model = edgernn.Model([edgernn.LSTM(_r(rng, 16, 3), _r(rng, 16, 4))])
    s = model.stream()
    s.step(np.ones(3, np.float32))
    y = s.step(np.array([np.nan, 0, 0], np.float32))
    assert np.isnan(y).all()
    assert s.nonfinite_steps == 1
    assert all(np.all(a == 0) for a in s.get_state().arrays)
    y = s.step(np.ones(3, np.float32))
    assert np.isfinite(y).all()
    fresh = model.stream()
    np.testing.assert_array_equal(y, fresh.step(np.ones(3, np.float32)))


def test_step_with_out_allocates_nothing(rng):
    model = _lstm_gru_model(rng)
    s = model.stream()
    x, out = _r(rng, 10), np.empty(6, np.float32)
    for _ in range(100):
        s.step(x, out=out)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(20000):
            s.step(x, out=out)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    pkg = str(Path(edgernn.__file__).resolve().parent)  # the runtime's own files only
    grown = [d for d in after.compare_to(before, "lineno")
             if d.size_diff > 0 and any(f.filename.startswith(pkg) for f in d.traceback)]
    assert not grown, grown[:3]


def test_model_rejects_mismatched_layers(rng):
    with pytest.raises(edgernn.ModelFormatError, match="expects input size 7"):
        edgernn.Model([edgernn.Dense(_r(rng, 5, 3)), edgernn.Dense(_r(rng, 2, 7))])
    with pytest.raises(ValueError, match=r"weight_hh: expected shape \(32, 8\)"):
        edgernn.LSTM(_r(rng, 32, 3), _r(rng, 24, 8))
    with pytest.raises(ValueError, match="unknown activation"):
        edgernn.Dense(_r(rng, 2, 2), activation="swish")
    with pytest.raises(edgernn.ModelFormatError, match="first layer"):
        edgernn.Model([edgernn.Dense(_r(rng, 3, 3)), edgernn.Embedding(_r(rng, 4, 3))])


def test_describe_reports_gate_ratio(rng):
    text = _lstm_gru_model(rng).describe()
    assert "LSTM" in text and "GRU" in text and "MISMATCH" not in text
    lstm_params = 4 * (24 * 10 + 24 * 24 + 2 * 24)
    assert f"{lstm_params} ok" in text


def test_reverse_layer_runs_backwards_in_time(rng):
    inner = edgernn.GRU(_r(rng, 24, 3), _r(rng, 24, 8), _r(rng, 24), _r(rng, 24))
    model = edgernn.Model([edgernn.Reverse(inner), edgernn.Dense(_r(rng, 2, 8))])
    xs = _r(rng, 60, 3, scale=1)
    ref = naive.run(edgernn.Model([inner, edgernn.Dense(model.layers[1].weight)]), xs[::-1])[::-1]
    np.testing.assert_allclose(model.stream().run(xs), ref, atol=1e-5)
    with pytest.raises(edgernn.StreamError, match="whole sequence"):
        model.stream().step(xs[0])


def test_return_sequences_false_and_initial_state_survive_save(rng, tmp_path):
    lstm = edgernn.LSTM(_r(rng, 16, 3), _r(rng, 16, 4))
    h0, c0 = _r(rng, 4, scale=1), _r(rng, 4, scale=1)
    init = edgernn.StreamState(("0.h", "0.c"), (h0, c0))
    model = edgernn.Model([lstm], return_sequences=False, initial_state=init)
    xs = _r(rng, 30, 3, scale=1)
    st = {"h": h0.astype(np.float64), "c": c0.astype(np.float64)}
    ref = [naive.step(lstm, x.astype(np.float64), st) for x in xs][-1]
    s = model.stream()
    np.testing.assert_allclose(s.run(xs), ref[None], atol=1e-5)
    s.reset()
    np.testing.assert_array_equal(s.get_state().arrays[0], h0)
    model.save(tmp_path / "m.ernn")
    loaded = edgernn.load(tmp_path / "m.ernn")
    np.testing.assert_array_equal(loaded.stream().run(xs), model.stream().run(xs))
    batch = loaded.streams(2)
    np.testing.assert_array_equal(batch.get_state(1).arrays[1], c0)
    with pytest.raises(edgernn.ModelFormatError, match="initial_state"):
        edgernn.Model([lstm], initial_state=edgernn.StreamState(("0.h",), (h0,)))


def test_step_accepts_read_only_input(rng):
    model = _lstm_gru_model(rng)
    x = _r(rng, 10)
    ro = np.frombuffer(x.tobytes(), dtype=np.float32)
    assert not ro.flags.writeable
    np.testing.assert_array_equal(model.stream().step(ro), model.stream().step(x))


def test_length_one_views_with_any_stride_step_and_run(rng):
    """numpy calls an axis of length 1 contiguous whatever its stride (a row of a
    transposed column, a one-column slice); step and run take them like any array."""
    model = edgernn.Model([edgernn.GRU(_r(rng, 12, 1), _r(rng, 12, 4)),
                           edgernn.Dense(_r(rng, 2, 4))])
    col = np.ascontiguousarray(_r(rng, 1, 30, scale=1).T)        # (30, 1)
    odd = np.ascontiguousarray(_r(rng, 1, 30, scale=1)).T[:, :1]  # (30, 1), strides (4, 120)
    for xs in (col, odd):
        want = model.stream().run(np.array(xs, copy=True, order="C"))
        s = model.stream()
        rows = [xs[i] for i in range(len(xs))]
        assert rows[3].flags.c_contiguous
        np.testing.assert_array_equal(np.stack([s.step(r).copy() for r in rows]), want)
        np.testing.assert_array_equal(model.stream().run(xs), want)
