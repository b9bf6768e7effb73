"""The daemon's stepping loop: batched waves of many streams, stream policy, non-finite resets."""

from __future__ import annotations

import time

import numpy as np
import pytest

import edgernn
from edgernn_serve.config import StreamsConf
from edgernn_serve.items import Reset, Sample
from edgernn_serve.metrics import Metrics
from edgernn_serve.models import Batch, ModelHandle
from edgernn_serve.scheduler import Scheduler
from tests import naive
from tests.serve_helpers import make_model


class Capture:
    def __init__(self):
        self.results = []

    def emit(self, results):
        self.results.extend(results)


class Serial:
    seq_mod = 1 << 16


def _sched(model, **policy):
    sink = Capture()
    conf = StreamsConf(**{"deadline_ms": 1000.0, **policy})
    return Scheduler(ModelHandle(model, "m", "0" * 64, "m.ernn"), conf, sink, Metrics()), sink


def _s(key, x, seq=None, origin=None):
    return Sample(key, seq, 0, np.asarray(x, np.float32), origin, time.perf_counter_ns())


def test_scheduler_steps_ready_streams_together_bit_equal_to_single_streams():
    model = make_model()
    sch, sink = _sched(model)
    rng = np.random.default_rng(3)
    keys = ["a", 7, "b", 0, "c"]
    order = [keys[i] for i in rng.integers(0, 5, 400)]  # arrivals in any order, repeats too
    xs = rng.standard_normal((400, 16)).astype(np.float32)
    for i in range(0, 400, 37):  # frames arrive in bursts read together
        sch.process([_s(k, x) for k, x in zip(order[i:i + 37], xs[i:i + 37], strict=True)])
    assert len(sink.results) == 400 and sch.c["steps"] == 400
    assert sch.c["batches"] < 400 / 2.5  # ready streams really shared native calls
    for k in keys:
        got = [r for r in sink.results if r.key == k]
        mine = xs[[i for i, o in enumerate(order) if o == k]]
        assert [r.n for r in got] == list(range(1, len(mine) + 1))
        ys = np.stack([r.y for r in got])
        s = model.stream()
        np.testing.assert_array_equal(ys, np.stack([s.step(x) for x in mine]))
        np.testing.assert_allclose(ys, naive.run(model, mine), atol=2e-5)


def test_batch_subset_step_leaves_other_rows_untouched():
    model = make_model(kind="gru")
    b = Batch(model, 4)
    xs = np.random.default_rng(1).standard_normal((3, 2, 16)).astype(np.float32)
    rows = np.array([3, 1], np.int64)
    out = np.empty((2, 4), np.float32)
    s3, s1 = model.stream(), model.stream()
    for x in xs:
        b.step(x, out, rows)
        np.testing.assert_array_equal(out, np.stack([s3.step(x[0]), s1.step(x[1])]))
    for r in (0, 2):
        assert all(not a.any() for a in b.batch.get_state(r).arrays)


def test_scheduler_reset_applies_in_order_with_the_streams_frames():
    model = make_model()
    sch, sink = _sched(model)
    xs = np.random.default_rng(4).standard_normal((6, 16)).astype(np.float32)
    acks = []
    origin = type("O", (), {"reply": lambda self, b: acks.append(
        (b, [r.n for r in sink.results if r.key == 1]))})()
    sch.process([_s(1, xs[0]), _s(2, xs[1]), _s(1, xs[2]), Reset(1, origin, b"ack"),
                 _s(1, xs[3]), _s(2, xs[4])])
    s1, s2 = model.stream(), model.stream()
    want = {1: [s1.step(xs[0]), s1.step(xs[2])], 2: [s2.step(xs[1]), s2.step(xs[4])]}
    want[1].append(model.stream().step(xs[3]))  # after the reset: a fresh state
    for k in (1, 2):
        np.testing.assert_array_equal(np.stack([r.y for r in sink.results if r.key == k]),
                                      np.stack(want[k]))
    assert acks == [(b"ack", [1, 2])]  # after stream 1's results before it, not the one after
    assert sch.resets["control"] == 1


@pytest.mark.parametrize("reset_on_gap", [True, False])
def test_scheduler_sequence_gap_resets_per_policy_with_wrap(reset_on_gap):
    model = make_model()
    sch, sink = _sched(model, reset_on_gap=reset_on_gap)
    xs = np.random.default_rng(5).standard_normal((5, 16)).astype(np.float32)
    seqs = [65534, 65535, 0, 2, 3]  # wraps without a gap, then one gap
    for q, x in zip(seqs, xs, strict=True):
        sch.process([_s(9, x, q, Serial())])
    s = model.stream()
    want = []
    for i, x in enumerate(xs):
        if reset_on_gap and i == 3:
            s.reset()
        want.append(s.step(x))
    np.testing.assert_array_equal(np.stack([r.y for r in sink.results]), np.stack(want))
    assert sch.c["gaps"] == 1 and sch.resets["gap"] == (1 if reset_on_gap else 0)


def test_scheduler_resets_a_stream_silent_longer_than_idle_reset():
    model = make_model()
    sch, sink = _sched(model, idle_reset_s=0.05)
    xs = np.random.default_rng(6).standard_normal((3, 16)).astype(np.float32)
    sch.process([_s(0, xs[0]), _s(0, xs[1])])
    time.sleep(0.08)
    sch.process([_s(0, xs[2])])
    np.testing.assert_array_equal(sink.results[2].y, model.stream().step(xs[2]))
    assert sch.resets["idle"] == 1


def test_scheduler_full_slot_table_drops_new_streams_then_evicts_idle_ones(monkeypatch):
    import edgernn_serve.scheduler as mod

    model = make_model()
    sch, sink = _sched(model, max=2)
    x = np.ones(16, np.float32)
    sch.process([_s("a", x), _s("b", x), _s("c", x)])
    assert [r.key for r in sink.results] == ["a", "b"] and sch.c["dropped_no_slot"] == 1
    monkeypatch.setattr(mod, "_EVICT_IDLE_NS", 0)  # as if a and b were silent for long
    sch.process([_s("c", x)])
    assert sink.results[-1].key == "c" and sch.resets["evicted"] == 1
    acc = sch.accounting()
    assert acc["accepted"] == 0 and acc["answered"] == 3  # process() bypasses the queue


def test_scheduler_answers_bad_frames_with_errors_in_order():
    model = make_model()
    sch, sink = _sched(model)
    good = np.zeros(16, np.float32)
    sch.process([_s(0, good), _s(0, [1.0, 2.0]), _s(0, np.full(16, np.nan)), _s(0, good)])
    errs = [r.error for r in sink.results]
    assert errs[0] is None and errs[3] is None
    assert errs[1] == "expected 16 values, got 2" and "NaN" in errs[2]
    assert sch.bad == {"size": 1, "nonfinite_input": 1} and sink.results[3].n == 2


def _rnn(u: float, hidden=8):
    """ReLU RNN h' = relu(x @ 1 + u * h): its state grows by u per step (explodes if u > 1)."""
    return edgernn.Model([edgernn.RNN(np.ones((hidden, 1), np.float32),
                                      u * np.eye(hidden, dtype=np.float32),
                                      nonlinearity="relu"),
                          edgernn.Dense(np.ones((1, hidden), np.float32))])


def test_scheduler_resets_a_stream_whose_state_or_output_goes_non_finite():
    model = _rnn(2.0)  # doubles every step: float32 overflows near step 128
    sch, sink = _sched(model, state_limit=0.0)
    for _ in range(200):
        sch.process([_s("boom", [1.0]), _s("calm", [0.0])])
    boom = [r for r in sink.results if r.key == "boom"]
    assert sch.c["nonfinite_resets"] >= 1 and sch.resets["nonfinite"] >= 1
    first = next(i for i, r in enumerate(boom) if r.error is not None)
    assert 100 < first < 140 and "non-finite output" in boom[first].error
    after = [r.y[0] for r in boom[first + 1:first + 4]]
    assert after == [8.0, 24.0, 56.0]  # restarted from zero: h = 1, 3, 7 per unit, times 8
    assert all(r.error is None and r.y[0] == 0.0 for r in sink.results if r.key == "calm")


def test_scheduler_state_limit_resets_a_growing_state():
    model = _rnn(1.5)
    sch, sink = _sched(model, state_limit=1e3)
    for _ in range(30):  # h_t = (1.5**t - 1) / 0.5 passes 1e3 near t = 16
        sch.process([_s(0, [1.0])])
    sch._check_states()
    assert sch.resets["state_limit"] == 1 and sch.c["nonfinite_resets"] == 1
    assert sch.batch.state_peaks([sch.slots[0].row])[0] == 0.0
    sch.process([_s(0, [1.0])])
    assert sink.results[-1].y[0] == 8.0


def test_scheduler_steps_token_models_and_refuses_ids_out_of_range():
    r = np.random.default_rng(0)
    model = edgernn.Model([edgernn.Embedding(r.standard_normal((10, 8)).astype(np.float32)),
                           edgernn.GRU(r.standard_normal((24, 8)).astype(np.float32) * 0.3,
                                       r.standard_normal((24, 8)).astype(np.float32) * 0.3)])
    sch, sink = _sched(model)
    toks = [3, 1, 4, 1, 5, 9, 2, 6]
    sch.process([_s(k % 2, [t]) for k, t in enumerate(toks)] + [_s(0, [10]), _s(1, [2.5])])
    for sid in (0, 1):
        s = model.stream()
        want = [s.step(np.array([t])) for t in toks[sid::2]]
        got = [r.y for r in sink.results if r.key == sid and r.error is None]
        np.testing.assert_array_equal(np.stack(got), np.stack(want))
    assert [r.error for r in sink.results if r.error] == [
        "expected one token id in [0, 10), got [10.0]",
        "expected one token id in [0, 10), got [2.5]"]
