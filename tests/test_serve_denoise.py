"""The denoising scheduler in-process: reloads that rebuild its bank keep every stream's audio.

The oracle is ``edgernn.audio.Denoiser`` run offline on the same hops, with
``swap_model`` and ``attenuation_limit_db`` applied at the same frame.
"""

from __future__ import annotations

import time

import numpy as np

from edgernn.audio import Denoiser
from edgernn_serve.config import DenoiseConf, StreamsConf
from edgernn_serve.denoise import DenoiseScheduler
from edgernn_serve.items import Sample
from edgernn_serve.metrics import Metrics
from edgernn_serve.models import ModelHandle
from tests.test_audio_denoiser import gru_model

H = 160


class Capture:
    """A sink pair: the audio hops and the JSON reports."""

    def __init__(self):
        self.audio, self.reports = [], []

    def emit_audio(self, results):
        self.audio.extend(results)

    def emit(self, results):
        self.reports.extend(results)


def _hops(sch, xs, k0, k1, keys=None):
    for k in range(k0, k1):  # every stream's hop k in one read
        now = time.perf_counter_ns()
        sch.process([Sample(c, k, 0, xs[c][k * H:(k + 1) * H], None, now)
                     for c in (range(len(xs)) if keys is None else keys)])


def test_a_reload_of_math_or_streams_max_carries_each_streams_audio_over(rng):
    model = gru_model(rng)
    handle = ModelHandle(model, "m", "a" * 64, "m.ernn")
    xs = [rng.uniform(-0.5, 0.5, 60 * H).astype(np.float32) for _ in range(2)]
    sink = Capture()
    sch = DenoiseScheduler(handle, StreamsConf(max=2, deadline_ms=1000.0), sink, Metrics(),
                           denoise=DenoiseConf(report_every=7))
    _hops(sch, xs, 0, 20)
    # the same model file in exact math, more slots, a 3 dB limit: a new bank
    sch.request_swap(handle, StreamsConf(max=4, deadline_ms=1000.0), sink, "exact",
                     denoise=DenoiseConf(attenuation_limit_db=3.0, report_every=7))
    assert sch.batch.d[2] is None and sch.math == "exact"
    _hops(sch, xs, 20, 40)
    # only streams.max again (same file, same math): the model states go on too
    sch.request_swap(handle, StreamsConf(max=3, deadline_ms=1000.0), sink, "exact",
                     denoise=DenoiseConf(attenuation_limit_db=3.0, report_every=7))
    _hops(sch, xs, 40, 60)
    assert sch.resets == {} and sch.c["steps"] == 120
    for c, x in enumerate(xs):
        ref = Denoiser(model)
        a = ref.process(x[:20 * H])
        ref.swap_model(model, math="exact")  # the new math starts from the initial state
        ref.attenuation_limit_db = 3.0
        want = np.concatenate([a, ref.process(x[20 * H:])])
        got = [r for r in sink.audio if r.key == c]
        assert [r.n for r in got] == list(range(1, 61))
        np.testing.assert_array_equal(np.concatenate([r.y for r in got]), want)
        assert [r.n for r in sink.reports if r.key == c] == list(range(7, 61, 7))


def test_a_smaller_streams_max_evicts_the_least_recent_stream_and_keeps_the_others(rng):
    model = gru_model(rng)
    handle = ModelHandle(model, "m", "a" * 64, "m.ernn")
    xs = [rng.uniform(-0.5, 0.5, 30 * H).astype(np.float32) for _ in range(3)]
    sink = Capture()
    conf = DenoiseConf()
    sch = DenoiseScheduler(handle, StreamsConf(max=3, deadline_ms=1000.0), sink, Metrics(),
                           denoise=conf)
    _hops(sch, xs, 0, 10)
    _hops(sch, xs, 10, 11, keys=(1, 2))  # stream 0 is now the least recently heard
    sch.request_swap(handle, StreamsConf(max=2, deadline_ms=1000.0), sink, "fast",
                     denoise=conf)
    assert sch.resets == {"evicted": 1} and sorted(sch.slots) == [1, 2]
    _hops(sch, xs, 11, 30, keys=(1, 2))
    for c in (1, 2):  # untouched by the rebuild: as if no reload happened
        got = np.concatenate([r.y for r in sink.audio if r.key == c])
        np.testing.assert_array_equal(got, Denoiser(model).process(xs[c]))


def test_a_nan_sample_is_denoised_as_zero_and_the_report_stays_finite(rng):
    """The JSON sinks refuse NaN (allow_nan=False): a report must count a non-finite
    input sample as the 0 the denoiser took it for, never as NaN."""
    import json

    model = gru_model(rng)
    handle = ModelHandle(model, "m", "a" * 64, "m.ernn")
    x = rng.uniform(-0.5, 0.5, 10 * H).astype(np.float32)
    x[3 * H + 7], x[6 * H] = np.nan, np.inf
    sink = Capture()
    sch = DenoiseScheduler(handle, StreamsConf(max=1, deadline_ms=1000.0), sink, Metrics(),
                           denoise=DenoiseConf(report_every=10))
    _hops(sch, [x], 0, 10)
    (rep,) = sink.reports
    json.dumps(rep.extra, allow_nan=False)
    clean = np.where(np.isfinite(x), x, 0.0).astype(np.float64)
    want = max(10 * np.log10(np.dot(clean, clean) / clean.size + 1e-30), -100.0)
    assert rep.extra["in_dbfs"] == round(want, 2)
    np.testing.assert_array_equal(np.concatenate([r.y for r in sink.audio]),
                                  Denoiser(model).process(np.where(np.isfinite(x), x, 0)))


def _handed_over(x, segments) -> np.ndarray:
    """The oracle of hand-overs: ``segments`` [(model, first sample), ...]; each model
    denoises its samples from its initial state (offline, ``open_denoiser``), followed by
    its latency of silence unless it is the last, its output placed at its first sample
    and added up (the oldest added last, as the bank does)."""
    from edgernn.audio import open_denoiser

    y = np.zeros(x.size, np.float32)
    *older, (last, s) = segments
    y[s:] = open_denoiser(last).process(x[s:])
    for (m, a), (_, b) in zip(older, segments[1:], strict=True):
        d = open_denoiser(m)
        out = d.process(np.concatenate([x[a:b], np.zeros(d.latency, np.float32)]))
        y[a:a + out.size] += out[:x.size - a]
    return y


def test_a_reload_to_another_front_end_hands_each_streams_audio_over(tmp_path, rng):
    """DTLN (hops of 128, latency 511) -> the bundled model (hops of 160, latency 319) by a
    swap, then back to DTLN while the first hand-over still flushes, by a rebuild (another
    streams.max): every stream's audio equals the offline pipelines run on its samples
    split at the two switches, bit for bit."""
    import edgernn
    from edgernn.audio.denoiser import BUNDLED
    from edgernn.cli import main
    from tests.real_models import model_file, speech_16k

    p1, p2 = model_file("dtln", "model_1.onnx"), model_file("dtln", "model_2.onnx")
    path = tmp_path / "dtln.ernn"
    assert main(["convert", str(p1), str(p2), "--state", "input_5=tf_op_layer_stack_5",
                 "--audio", "dtln", "-o", str(path)]) == 0
    dtln = ModelHandle(edgernn.load(path), "dtln", "d" * 64, str(path))
    bundled = ModelHandle(edgernn.load(BUNDLED), "bundled", "b" * 64, str(BUNDLED))
    hop, n, k1, k2 = 128, 90, 30, 32  # k2: 256 samples into the 511 of the first flush
    speech = speech_16k(2 * n * hop / 16000)
    xs = [speech[:n * hop], speech[n * hop:] + 0.01 * rng.standard_normal(n * hop)]
    xs = [x.astype(np.float32) for x in xs]
    sink, conf = Capture(), DenoiseConf(report_every=10 ** 6)

    def hops(k0, k1):
        for k in range(k0, k1):
            sch.process([Sample(c, k, 0, x[k * hop:(k + 1) * hop], None, 0)
                         for c, x in enumerate(xs)])

    sch = DenoiseScheduler(dtln, StreamsConf(max=2, deadline_ms=1000.0), sink, Metrics(),
                           denoise=conf, hop=hop)
    hops(0, k1)
    sch.request_swap(bundled, StreamsConf(max=2, deadline_ms=1000.0), sink, "fast",
                     denoise=conf)
    hops(k1, k2)
    sch.request_swap(dtln, StreamsConf(max=3, deadline_ms=1000.0), sink, "fast",
                     denoise=conf)
    hops(k2, n)
    assert sch.resets == {} and sch.bad == {} and sch.c["steps"] == 2 * n
    assert all(not f for f in sch.batch.flush)  # both hand-overs done
    for c, x in enumerate(xs):
        got = [r for r in sink.audio if r.key == c]
        assert [r.seq for r in got] == list(range(n))
        want = _handed_over(x, [(dtln.model, 0), (bundled.model, k1 * hop),
                                (dtln.model, k2 * hop)])
        np.testing.assert_array_equal(np.concatenate([r.y for r in got]), want)
