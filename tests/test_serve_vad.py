"""The daemon's VAD stage (``[vad]``) on real speech: the speech start and end events it
sends over a real mosquitto, to stdout and to a file equal ``silero_vad.VADIterator`` (the
streaming rules' own code) run over ``edgernn.audio.VAD``'s offline probabilities of the
same samples; its config is checked like the rest; a reload changes it or keeps it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.real_models import model_file, need_module, silero_vad_file, speech_16k
from tests.serve_helpers import ROOT, Broker, Daemon, Subscriber, free_port, make_model, wait_until

CHUNK = 512


@pytest.fixture(scope="module")
def vad_file(tmp_path_factory):
    return silero_vad_file(tmp_path_factory.mktemp("vad"))


@pytest.fixture(scope="module")
def speech():
    x = speech_16k()
    assert x.size > 10 * 16000  # several recordings, with the pauses between them
    return x


def _wav(path, x) -> None:
    sf = need_module("soundfile", "soundfile (the audio extra)")
    sf.write(path, x, 16000, subtype="FLOAT")  # float: the daemon reads the exact samples


def _probabilities(vad_file, x, hop=160) -> np.ndarray:
    """edgernn.audio.VAD's offline probabilities of the whole chunks of ``x`` the daemon
    steps (its WAV source cuts hops of the denoiser's ``hop``: the tail is not stepped)."""
    from edgernn.audio import VAD

    n = x.size // hop * hop // CHUNK
    probs = VAD(vad_file).probabilities(x[:n * CHUNK])
    assert probs.size == n
    return probs


def _oracle(vad_file, x, threshold=0.5, min_silence_ms=100, pad_ms=30, switch=None,
            probs=None, hop=160) -> tuple:
    """silero's VADIterator over those probabilities; ``switch = (k, threshold)``: the
    threshold changes from chunk ``k`` on (VADIterator reads it at every call)."""
    silero_vad = need_module("silero_vad", "silero-vad (the dev extra)")
    probs = _probabilities(vad_file, x, hop) if probs is None else probs
    n = probs.size

    class Replay:  # VADIterator's model: the offline probabilities, one per call
        i = 0

        def reset_states(self):
            pass

        def __call__(self, chunk, rate):
            p, Replay.i = probs[Replay.i], Replay.i + 1
            return np.float32(p)

    it = silero_vad.VADIterator(Replay(), threshold=threshold, sampling_rate=16000,
                                min_silence_duration_ms=min_silence_ms, speech_pad_ms=pad_ms)
    events = []
    for k in range(n):
        if switch is not None and k == switch[0]:
            it.threshold = switch[1]
        ev = it(np.zeros(CHUNK, np.float32))
        if ev:
            (kind, sample), = ev.items()
            events.append((f"speech_{kind}", sample))
    if it.triggered:
        events.append(("speech_end", n * CHUNK))  # the daemon's last end, "at_stop"
    return events, probs


def _config(tmp_path, vad_file, sinks: str, vad: str = "", model=None, **source) -> object:
    cfg = tmp_path / "e.toml"
    src = "".join(f"{k} = {json.dumps(v)}\n" for k, v in source.items())
    model = f'[model]\npath = "{model}"\n' if model else ""
    cfg.write_text(f'device = "mic"\n{model}[source]\nkind = "wav"\npath = "speech.wav"\n'
                   f'denoise = true\n{src}[metrics]\nlisten = ""\n'
                   f'[vad]\nmodel = "{vad_file}"\n{vad}{sinks}')
    return cfg


def _events(records) -> list:
    return [(r["event"], r["sample"]) for r in records
            if r.get("event") in ("speech_start", "speech_end")]


@pytest.fixture(params=["bundled", "dtln"])
def denoiser(request, tmp_path_factory):
    """(model file or None for the bundled denoiser, its hop)."""
    if request.param == "bundled":
        return None, 160
    from edgernn.cli import main

    p1, p2 = model_file("dtln", "model_1.onnx"), model_file("dtln", "model_2.onnx")
    model = tmp_path_factory.mktemp("dtln") / "dtln.ernn"
    assert main(["convert", str(p1), str(p2), "--state", "input_5=tf_op_layer_stack_5",
                 "--audio", "dtln", "-o", str(model)]) == 0
    return model, 128


def test_vad_events_over_mqtt_stdout_and_file_equal_silero_rules_on_the_same_samples(
        tmp_path, vad_file, speech, denoiser):
    """A denoiser (bundled or DTLN) + VAD stage on a WAV of real speech with pauses: every
    sink gets the events VADIterator gives on the same samples, and the probabilities on
    request."""
    model, hop = denoiser
    _wav(tmp_path / "speech.wav", speech)
    want, probs = _oracle(vad_file, speech, hop=hop)
    starts = [s for e, s in want if e == "speech_start"]
    assert len(starts) >= 4, want  # real pauses: several segments
    broker = Broker(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgernn/#")
    try:
        cfg = _config(tmp_path, vad_file,
                      f'[[sink]]\ntype = "stdout"\n[[sink]]\ntype = "file"\npath = "out.jsonl"\n'
                      f'[[sink]]\ntype = "mqtt"\nurl = "mqtt://127.0.0.1:{broker.port}"\n',
                      vad="report_probabilities = true\nprobabilities_every = 7\n",
                      model=model)
        d = Daemon(cfg)
        try:
            assert d.proc.wait(120) == 0, d.stderr()  # the end of the file stops it
        finally:
            d.kill()
        n_vad = len(want) + -(-probs.size // 7)
        wait_until(lambda: sum(t.endswith("/vad") for t, _ in sub.messages) >= n_vad,
                   timeout=20, what=f"{n_vad} VAD messages")
    finally:
        sub.close()
        broker.stop()
    got = {"stdout": d.results(),
           "file": [json.loads(s) for s in (tmp_path / "out.jsonl").read_text().splitlines()],
           "mqtt": [json.loads(m) for t, m in sub.messages if t == "edgernn/mic/0/vad"]}
    assert not [t for t, m in sub.messages if t != "edgernn/mic/0/vad"
                and "event" in json.loads(m)]  # VAD records only on the VAD topic
    for where, records in got.items():
        assert _events(records) == want, where
        p = [v for r in records if r.get("event") == "speech_probabilities"
             for v in r["probabilities"]]
        np.testing.assert_allclose(p, probs, atol=1e-5, err_msg=where)
        ev = [r for r in records if r.get("event") == "speech_start"]
        assert all(r["stream"] == 0 and r["device"] == "mic" and r["sample_rate"] == 16000
                   and r["time_s"] == r["sample"] / 16000 and r["t"] == r["sample"] * 1000 // 16
                   for r in ev), where
    reports = [json.loads(m) for t, m in sub.messages if t == "edgernn/mic/0"]
    assert reports and all("gain_db" in r for r in reports)  # the denoiser's, as before


def test_a_source_of_sample_frames_for_any_model_gets_the_same_events(tmp_path, vad_file,
                                                                      speech):
    """No denoiser: a WAV source feeding a model frames of 400 samples; the stage takes
    those frames and finds VADIterator's events on the same samples."""
    make_model(n_in=400).save(tmp_path / "m.ernn")
    _wav(tmp_path / "speech.wav", speech)
    want, _ = _oracle(vad_file, speech, hop=400, min_silence_ms=250, pad_ms=0)
    cfg = _config(tmp_path, vad_file, '[[sink]]\ntype = "stdout"\n',
                  vad="min_silence_ms = 250\npad_ms = 0\n", model=tmp_path / "m.ernn")
    cfg.write_text(cfg.read_text().replace("denoise = true\n", "frame = 400\n"))
    d = Daemon(cfg)
    try:
        assert d.proc.wait(120) == 0, d.stderr()
    finally:
        d.kill()
    records = d.results()
    assert len(want) >= 4 and _events(records) == want
    assert sum(len(r["y"]) == 4 for r in records if "y" in r) == speech.size // 400


def _run_cli(cfg) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgernn", "serve", "--config", str(cfg),
                           "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("vad, words", [
    ("threshold = 1.5\n", "vad.threshold: expected a probability in (0, 1), got 1.5"),
    ("pad_ms = -1\n", "vad.pad_ms: expected 0 to 10000 ms, got -1"),
    ("min_silence = 5\n", "vad.min_silence: unknown key"),
])
def test_a_bad_vad_table_is_one_line_and_exit_2(tmp_path, vad_file, vad, words):
    _wav(tmp_path / "speech.wav", np.zeros(1600, np.float32))
    r = _run_cli(_config(tmp_path, vad_file, '[[sink]]\ntype = "stdout"\n', vad=vad))
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.splitlines()) == 1, \
        r.stderr


def test_a_model_that_is_not_a_vad_is_refused_in_one_line(tmp_path):
    from edgernn.audio.denoiser import BUNDLED

    _wav(tmp_path / "speech.wav", np.zeros(1600, np.float32))
    r = _run_cli(_config(tmp_path, BUNDLED, '[[sink]]\ntype = "stdout"\n'))
    assert r.returncode == 2 and "vad.model" in r.stderr and "not a VAD model" in r.stderr \
        and len(r.stderr.splitlines()) == 1, r.stderr


def test_a_vad_table_without_audio_samples_is_refused(tmp_path, vad_file):
    cfg = tmp_path / "e.toml"
    cfg.write_text(f'[model]\npath = "m.ernn"\n[source]\nkind = "stdin"\n'
                   f'[vad]\nmodel = "{vad_file}"\n[[sink]]\ntype = "stdout"\n')
    from edgernn_serve.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="a \\[vad\\] table needs an audio source .* "
                                          "got kind 'stdin'"):
        load_config(cfg)
    _wav(tmp_path / "speech.wav", np.zeros(1600, np.float32))
    cfg.write_text(cfg.read_text().replace('kind = "stdin"', 'kind = "wav"\npath = '
                                           '"speech.wav"\nframe = 160\nfeatures = "stft"'))
    with pytest.raises(ConfigError, match="got kind 'wav' with features 'stft'"):
        load_config(cfg)


def test_a_reload_changes_the_vad_rules_and_a_bad_vad_table_keeps_the_old(
        tmp_path, vad_file, speech):
    """realtime WAV: a reload to another threshold applies from the next chunk; a reload
    with a bad [vad] fails, and the events go on."""
    _wav(tmp_path / "speech.wav", speech)
    port = free_port()
    sinks = '[[sink]]\ntype = "stdout"\n'
    cfg = _config(tmp_path, vad_file, sinks, realtime=True)
    cfg.write_text(cfg.read_text().replace('listen = ""', f'listen = "127.0.0.1:{port}"'))
    d = Daemon(cfg)
    try:
        d.wait_ready()
        wait_until(lambda: _starts(port) >= 2, timeout=20, what="two speech starts counted")
        cfg.write_text(cfg.read_text().replace('[vad]\n', '[vad]\nthreshold = 7\n'))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("reload failed")
        assert "vad.threshold: expected a probability in (0, 1), got 7" in d.stderr()
        cfg.write_text(cfg.read_text().replace('threshold = 7', 'threshold = 0.99'))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("reloaded")
        wait_until(lambda: d.proc.poll() is not None, timeout=60, what="the end of the file")
    finally:
        d.kill()
    assert d.proc.returncode == 0, d.stderr()
    got = _events(d.results())
    probs = _probabilities(vad_file, speech)
    before, _ = _oracle(vad_file, speech, probs=probs)
    assert got != before  # the new threshold changed them
    switched = [k for k in range(2, probs.size) if _oracle(
        vad_file, speech, switch=(k, 0.99), probs=probs)[0] == got]
    assert switched, (got, before)  # 0.5 up to some chunk after the 2nd start, 0.99 after


def _starts(port) -> float:
    """edgernn_vad_events_total{event="speech_start"} from the daemon's /metrics."""
    import re
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        m = re.search(r'^edgernn_vad_events_total\{event="speech_start"\} (\S+)$',
                      r.read().decode(), re.M)
    return float(m.group(1)) if m else 0.0


def test_audio_at_another_rate_is_resampled_to_the_vads(vad_file, speech):
    """A denoiser at 48 kHz would hand the stage 48 kHz hops: it resamples them (soxr,
    streaming) and finds the 16 kHz oracle's events, each within one 32 ms chunk."""
    soxr = need_module("soxr", "soxr (the audio extra)")
    from edgernn_serve.items import Result
    from edgernn_serve.vad import VadConf, VadStage, load_vad

    want, _ = _oracle(vad_file, speech)
    hi = soxr.resample(speech, 16000, 48000, quality="HQ").astype(np.float32)
    stage = VadStage(load_vad(VadConf(model=vad_file), 48000))
    got = []
    for k in range(hi.size // 480):
        r = Result(0, k, 0, k + 1, None, "m", None, 0, 0)
        got += [(e.extra["event"], e.extra["sample"])
                for e in stage.feed(0, hi[k * 480:(k + 1) * 480].copy(), r)]
    got += [(e.extra["event"], e.extra["sample"]) for e in stage.final()]
    assert [e for e, _ in got] == [e for e, _ in want[:len(got)]]
    assert len(want) - len(got) in (0, 1)  # soxr holds back its last few samples
    assert max(abs(a - b) for (_, a), (_, b) in zip(got, want, strict=False)) <= CHUNK
    assert stage.counts["speech_start"] == sum(e == "speech_start" for e, _ in got)


def test_a_gap_restarts_the_streams_vad_like_its_denoiser(vad_file, speech):
    """The scheduler resets a stream on a sequence gap (reset_on_gap): the stream's VAD
    restarts with its denoiser. Before the gap: VADIterator's events on the samples before
    it, and an end at the last chunk ("reset": "gap") as the gap cuts a segment; after it:
    the events of the samples after the gap from a fresh VAD, at their place in the stream
    (the lost hops counted), and the audio the offline denoiser gives from silence."""
    from edgernn.audio import Denoiser
    from edgernn.audio.denoiser import BUNDLED
    from edgernn_serve.config import DenoiseConf, StreamsConf
    from edgernn_serve.denoise import DenoiseScheduler
    from edgernn_serve.items import Sample
    from edgernn_serve.metrics import Metrics
    from edgernn_serve.models import ModelHandle
    from edgernn_serve.vad import VadConf, load_vad
    from tests.test_serve_denoise import Capture

    x, hop = speech[:16000 * 12], 160
    whole, _ = _oracle(vad_file, x)
    start, end = next((a, b) for (e, a), (_, b) in zip(whole, whole[1:], strict=False)
                      if e == "speech_start" and b - a > 16000)  # a long segment
    k1 = (start + end) // 2 // hop  # the gap cuts it: hops k1 .. k2 - 1 never arrive
    k2, n = k1 + 50, x.size // hop
    pre, _ = _oracle(vad_file, x[:k1 * hop])
    post, _ = _oracle(vad_file, x[k2 * hop:])
    assert pre[-1] == ("speech_end", k1 * hop // CHUNK * CHUNK)  # cut in speech
    import edgernn

    handle = ModelHandle(edgernn.load(BUNDLED), "bundled", "b" * 64, str(BUNDLED))
    sink = Capture()
    sch = DenoiseScheduler(handle, StreamsConf(max=1, deadline_ms=1000.0), sink, Metrics(),
                           denoise=DenoiseConf(report_every=10 ** 6),
                           vad=load_vad(VadConf(model=vad_file), 16000))
    for k in [*range(k1), *range(k2, n)]:
        sch.process([Sample(0, k, k * hop * 1_000_000 // 16000, x[k * hop:(k + 1) * hop],
                            None, 0)])
    sch.stop(1.0)
    assert sch.resets == {"gap": 1}
    records = [r.extra for r in sink.reports if "event" in r.extra]
    got = [(r["event"], r["sample"]) for r in records if r["event"] != "speech_probabilities"]
    assert got == pre + [(e, s + k2 * hop) for e, s in post], (got, pre, post, k1, k2)
    assert [r.get("reset") for r in records if r["event"] == "speech_end"][len(
        [e for e, _ in pre if e == "speech_end"]) - 1] == "gap"
    y = np.concatenate([r.y for r in sink.audio])
    np.testing.assert_array_equal(y[:k1 * hop], Denoiser().process(x[:k1 * hop]))
    np.testing.assert_array_equal(y[k1 * hop:], Denoiser().process(x[k2 * hop:n * hop]))
