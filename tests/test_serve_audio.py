"""edgernn serve with a denoising source: real WAV files (soundfile), the daemon as a subprocess.

The oracle is ``edgernn.audio.Denoiser.process`` run offline on the same samples.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families

from edgernn.audio import BUNDLED, Denoiser
from edgernn_serve.config import ConfigError, load_config
from tests.serve_helpers import ROOT, Daemon, free_port, require, wait_until

H = 160
DEMO = ROOT / "edgernn" / "data" / "denoise_demo.wav"


def _demo(seconds: float, offset: float = 0.0) -> np.ndarray:
    x, rate = sf.read(DEMO, dtype="float32")
    assert rate == 16000
    return x[int(offset * rate):int((offset + seconds) * rate)]


def _config(tmp_path, source: str, extra: str = "", metrics: str = '""') -> object:
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text(f'device = "mic-1"\n[source]\nkind = "wav"\npath = "noisy.wav"\n'
                   f'denoise = true\n{source}\n[[sink]]\ntype = "wav"\npath = "clean.wav"\n'
                   f'[[sink]]\ntype = "stdout"\n[metrics]\nlisten = {metrics}\n{extra}')
    return cfg


def _offline(x: np.ndarray, model=None, every=None):
    """Denoiser.process over the whole hops of x, and per hop (vad, gains, input)."""
    d = Denoiser(model)
    n = len(x) // H * H
    y = d.process(x[:n])
    d2, frames = Denoiser(model), []
    for k in range(n // H):
        d2.process(x[k * H:(k + 1) * H])
        g = np.clip(d2.gains, 0.0, 1.0)
        frames.append((d2.vad, 20 * np.log10(np.maximum(g, 1e-5)), x[k * H:(k + 1) * H]))
    return y, frames


def _want_report(frames):
    vad = np.array([f[0] for f in frames])
    db = np.stack([f[1] for f in frames])
    xin = np.concatenate([f[2] for f in frames]).astype(np.float64)
    return {"frames": len(frames), "vad": vad.mean(), "vad_max": vad.max(),
            "gain_db": db.mean(), "gain_min_db": db.min(),
            "in_dbfs": 10 * np.log10(np.mean(xin ** 2))}


def _check_report(r, frames):
    want = _want_report(frames)
    assert r["frames"] == want["frames"]
    for key, tol in (("vad", 1e-4), ("vad_max", 1e-4), ("gain_db", 0.01),
                     ("gain_min_db", 0.01), ("in_dbfs", 0.01)):
        assert r[key] == pytest.approx(want[key], abs=tol), key


def test_denoise_wav_to_wav_equals_the_offline_denoiser_with_vad_reports(tmp_path):
    # two channels, each denoised as its own stream; PCM_16 in, FLOAT out
    x = np.stack([_demo(3.0), 0.5 * _demo(3.0, offset=3.5)], axis=1)
    sf.write(tmp_path / "noisy.wav", x, 16000, subtype="PCM_16")
    x = sf.read(tmp_path / "noisy.wav", dtype="float32")[0]  # the quantised samples
    cfg = _config(tmp_path, 'channels = "each"', "[denoise]\nreport_every = 10\n")
    d = Daemon(cfg)
    d.run_to_end(60)
    y, rate = sf.read(tmp_path / "clean.wav", dtype="float32")
    assert rate == 16000 and y.shape == (300 * H, 2)
    reports = d.results()
    assert {r["stream"] for r in reports} == {0, 1} and len(reports) == 60
    for c in (0, 1):
        want, frames = _offline(np.ascontiguousarray(x[:, c]))
        np.testing.assert_array_equal(y[:, c], want)  # bit for bit
        mine = [r for r in reports if r["stream"] == c]
        assert [r["n"] for r in mine] == list(range(10, 301, 10))
        assert [r["seq"] for r in mine] == list(range(9, 300, 10))
        assert mine[1]["t"] == 190_000 and all(r["model"] == "denoiser" for r in mine)
        for i, r in enumerate(mine):
            _check_report(r, frames[10 * i:10 * (i + 1)])
            assert "y" not in r and r["latency_us"] > 0
        vads = [r["vad"] for r in mine]
        assert min(vads) < 0.3 and max(vads) > 0.7  # speech and pauses are told apart
    s = d.summary()
    assert s["accepted"] == s["answered_ok"] == 600 and s["unaccounted"] == 0
    assert s["sinks"]["wav0"] == {"delivered": 600, "dropped": 0, "pending": 0}
    assert s["sinks"]["stdout"]["delivered"] == 60
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_sigterm_mid_file_writes_a_valid_truncated_wav_and_metrics_count_frames(tmp_path):
    x = _demo(7.0)
    sf.write(tmp_path / "noisy.wav", x, 16000, subtype="FLOAT")
    port = free_port()
    cfg = _config(tmp_path, "realtime = true", "[denoise]\nreport_every = 20\n",
                  f'"127.0.0.1:{port}"')
    d = Daemon(cfg)
    try:
        d.wait_ready()
        wait_until(lambda: len(d.lines) >= 5, 30, "five reports (1 s of audio)")
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert not (tmp_path / "clean.wav").exists()  # written only when complete
        rc, elapsed = d.terminate()
    finally:
        d.kill()
    assert rc == 0 and elapsed < 2.0, (rc, elapsed, d.stderr()[-2000:])
    info = sf.info(tmp_path / "clean.wav")
    assert info.format == "WAV" and info.subtype == "FLOAT" and info.samplerate == 16000
    y = sf.read(tmp_path / "clean.wav", dtype="float32")[0]
    n = len(y)
    assert n % H == 0 and 5 * 20 * H <= n < len(x) - H, n
    want, _ = _offline(x)
    np.testing.assert_array_equal(y, want[:n])  # the frames answered before the stop
    s = d.summary()
    assert s["answered_ok"] == s["accepted"] == n // H and s["unaccounted"] == 0
    assert s["sinks"]["wav0"]["delivered"] == n // H
    reports = d.results()  # the last one covers the partial interval before the stop
    assert sum(r["frames"] for r in reports) == n // H and reports[-1]["n"] == n // H
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []

    fams = {f.name: f for f in text_string_to_metric_families(text.decode())}
    value = {(sm.name, tuple(sorted(sm.labels.items()))): sm.value
             for f in fams.values() for sm in f.samples}
    frames = value["edgernn_audio_frames_total", ()]
    assert frames >= 100 and value["edgernn_steps_total", ()] == frames
    hist = fams["edgernn_audio_frame_seconds"]
    assert hist.type == "histogram"
    count = [sm.value for sm in hist.samples if sm.name.endswith("_count")][0]
    assert count == frames
    assert value["edgernn_deadline_seconds", ()] == 0.01  # the 10 ms hop
    assert ("edgernn_deadline_misses_total", ()) in value
    for kind in ("overruns", "underruns"):
        assert value[f"edgernn_audio_{kind}_total", (("component", "source"),)] == 0
    assert 0.0 <= value["edgernn_audio_vad", (("stream", "0"),)] <= 1.0
    assert value["edgernn_frame_latency_seconds_count", ()] == frames


CAPTURE = """
[source]
kind = "audio"
denoise = true
[[sink]]
type = "wav"
path = "clean.wav"
[metrics]
listen = ""
"""


@pytest.mark.parametrize("check", [False, True])
def test_capture_without_sounddevice_is_one_line_and_exit_2(tmp_path, check):
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text(CAPTURE)
    # the package made unimportable, as on an install without the audio extra
    code = ("import sys; sys.modules['sounddevice'] = None\n"
            "from edgernn.cli import main; sys.exit(main())")
    out = subprocess.run([sys.executable, "-c", code, "serve", "--config", str(cfg),
                          *(["--check"] if check else [])],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith(f"edgernn: error: {cfg}: source.kind = 'audio' needs the "
                               f"sounddevice package (pip install 'edgernn[audio]')")
    assert not (tmp_path / "clean.wav").exists() and len(list(tmp_path.iterdir())) == 1


BASE = """
[source]
kind = "wav"
path = "in.wav"
denoise = true
[[sink]]
type = "stdout"
"""


def test_denoise_config_defaults(tmp_path):
    p = tmp_path / "e.toml"
    p.write_text(BASE)
    c = load_config(p)
    assert c.model.path == BUNDLED and c.model.id == "denoiser"  # the bundled denoiser
    assert c.streams.deadline_ms == 10.0 and c.denoise.report_every == 10
    assert c.denoise.attenuation_limit_db is None
    assert c.source.options == {"path": tmp_path / "in.wav", "realtime": False,
                                "denoise": True, "channels": "mix"}
    p.write_text(CAPTURE.replace("denoise = true", 'denoise = true\ndevice = "USB"\n'
                                 'sample_rate = 48000\ninput_channels = 2\nlatency = 0.02'))
    o = load_config(p).source.options
    assert (o["device"], o["sample_rate"], o["input_channels"], o["latency"]) == (
        "USB", 48000, 2, 0.02)


@pytest.mark.parametrize("edit, key, expected", [
    (("denoise = true", "denoise = true\nframe = 160"), "source.frame",
     "not used with denoise = true"),
    (("denoise = true", "denoise = false\nframe = 160\n[[sink]]\ntype = \"wav\"\n"
      "path = \"o.wav\""), r"sink\[0\].type", "'wav' sinks take denoised audio"),
    (("type = \"stdout\"", "type = \"serial\""), r"sink\[0\].type",
     "'serial' sinks take model outputs"),
    (("denoise = true", "denoise = false\nframe = 4\n[denoise]\nreport_every = 2"), "denoise",
     "needs a denoising source"),
    (("type = \"stdout\"", "type = \"wav\"\npath = \"in.wav\""), r"sink\[0\].path",
     "is the source's input file"),
    (("type = \"stdout\"", "type = \"wav\"\npath = \"o.wav\"\nsubtype = \"MP3\""),
     r"sink\[0\].subtype", "expected 'PCM_16' or"),
    (("type = \"stdout\"", "type = \"audio\"\nbuffer_ms = 5"), r"sink\[0\].buffer_ms",
     "20 to 60000 ms"),
    (("denoise = true", "denoise = true\n[denoise]\nattenuation_limit_db = -3"),
     "denoise.attenuation_limit_db", "decibels >= 0"),
    (("kind = \"wav\"\npath = \"in.wav\"", "kind = \"audio\"\nlatency = \"fast\""),
     "source.latency", "'low', 'high' or seconds"),
    (("kind = \"wav\"\npath = \"in.wav\"", "kind = \"audio\"\ninput_channels = 0"),
     "source.input_channels", "1 to 64"),
])
def test_denoise_config_errors_name_the_key(tmp_path, edit, key, expected):
    p = tmp_path / "e.toml"
    assert edit[0] in BASE
    p.write_text('[model]\npath = "m.ernn"\n' + BASE.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError, match=f"^{p}: {key}: .*{expected}"):
        load_config(p)


def test_sighup_swaps_the_denoiser_model_and_settings_without_a_gap(tmp_path):
    from tests.test_audio_denoiser import gain_model

    x = _demo(4.0)
    sf.write(tmp_path / "noisy.wav", x, 16000, subtype="FLOAT")
    shutil.copy(BUNDLED, tmp_path / "m.ernn")
    quarter = gain_model(0.25)  # -12 dB everywhere; the reload's 6 dB limit makes it -6 dB
    quarter.save(tmp_path / "quarter.ernn")
    Denoiser(tmp_path / "quarter.ernn").process(x[:4 * H])  # compiled before the daemon
    head = '[model]\npath = "m.ernn"\nid = "{id}"\n[denoise]\nreport_every = 1\n'
    cfg = _config(tmp_path, "realtime = true", head.format(id="bundled"))
    d = Daemon(cfg)

    def replace(path, data: bytes):
        tmp = path.with_suffix(".new")
        tmp.write_bytes(data)
        tmp.replace(path)

    try:
        d.wait_ready()
        wait_until(lambda: len(d.lines) >= 30, 30, "audio before the reloads")
        replace(tmp_path / "m.ernn", b"ERNN" + b"\0" * 60)  # a corrupt model
        d.proc.send_signal(1)
        wait_until(lambda: d.stderr().count("reload failed") == 1, 30, "the failed reload")
        replace(tmp_path / "m.ernn", BUNDLED.read_bytes())  # good model, changed wav sink
        cfg.write_text(cfg.read_text().replace('path = "clean.wav"', 'path = "other.wav"'))
        d.proc.send_signal(1)
        wait_until(lambda: d.stderr().count("reload failed") == 2, 30, "the refused sink change")
        cfg.write_text(cfg.read_text().replace('path = "other.wav"', 'path = "clean.wav"')
                       .replace('id = "bundled"', 'id = "quarter"')
                       .replace("report_every = 1", "report_every = 4\nattenuation_limit_db = 6"))
        replace(tmp_path / "m.ernn", (tmp_path / "quarter.ernn").read_bytes())
        d.proc.send_signal(1)
        assert d.proc.wait(60) == 0, d.stderr()
    finally:
        d.kill()
    d._reader.join(5)
    log = d.stderr()
    assert "still serving bundled" in log and "reload cannot change them" in log
    reports, n = d.results(), len(x) // H
    ids = [r["model"] for r in reports]
    k = ids.index("quarter")  # one report per frame of the old model: k frames
    assert 30 <= k < n - 10 and set(ids[:k]) == {"bundled"} and set(ids[k:]) == {"quarter"}
    assert [r["n"] for r in reports[:k]] == list(range(1, k + 1))
    # the new report_every: reports of 4 frames from the swap on, a partial one at the end
    ends = [*range(k + 4, n + 1, 4), *([n] if (n - k) % 4 else [])]
    assert [r["n"] for r in reports[k:]] == ends
    assert [r["frames"] for r in reports[k:]] == np.diff([k, *ends]).tolist()
    assert all("vad" in r for r in reports[:k]) and not any(
        "vad" in r for r in reports[k:])  # the new model has no VAD output
    # the new attenuation limit: the floor 10^(-6/20) applies, not the model's 0.25 (-12 dB)
    floor_db = round(20 * np.log10(max(0.25, 10 ** (-6 / 20))), 2)
    assert {(r["gain_db"], r["gain_min_db"]) for r in reports[k:]} == {(floor_db, floor_db)}
    ref = Denoiser()
    first = ref.process(x[:k * H])
    ref.swap_model(quarter)
    ref.attenuation_limit_db = 6
    want = np.concatenate([first, ref.process(x[k * H:n * H])])
    y = sf.read(tmp_path / "clean.wav", dtype="float32")[0]
    np.testing.assert_array_equal(y, want)  # no frame lost, no gap at the swap
    assert not (tmp_path / "other.wav").exists()


ASOUNDRC = """
pcm.!default {{ type asym capture.pcm "mic" playback.pcm "speaker" }}
pcm.mic {{ type file slave.pcm "null" file "/dev/null" infile "{dir}/mic.raw" format "raw" }}
pcm.speaker {{ type file slave.pcm "null" file "{dir}/speaker.raw" format "raw" }}
"""


def _portaudio() -> None:
    code = "import sounddevice"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    require(out.returncode == 0, f"sounddevice cannot load PortAudio (apt-get install "
                                 f"libportaudio2): {out.stderr.strip()[-200:]}")


def _alsa_env(tmp_path) -> dict:
    """alsa-lib reads ~/.asoundrc: a HOME of its own, the engine's cache where it was."""
    from edgernn.kernels.cache import default_dir

    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(dir=tmp_path))
    return {"HOME": str(tmp_path), "EDGERNN_CACHE_DIR": str(default_dir())}


def test_live_capture_through_a_real_alsa_device_is_denoised_bit_exact(tmp_path):
    """PortAudio -> ALSA -> a file-backed PCM (alsa-lib's file plugin over the null
    device): the "sound card" captures mic.raw. The null device has no clock, so the
    capture runs as fast as the daemon takes it (stepped in PortAudio's callback)."""
    _portaudio()
    x = _demo(1.0, offset=1.0)
    x.astype("<f4").tofile(tmp_path / "mic.raw")
    port = free_port()
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text(f'device = "mic-1"\n[source]\nkind = "audio"\ndenoise = true\n'
                   f'[denoise]\nreport_every = 10\n[[sink]]\ntype = "wav"\n'
                   f'path = "clean.wav"\n[[sink]]\ntype = "stdout"\n'
                   f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    d = Daemon(cfg, env=_alsa_env(tmp_path))
    try:
        d.wait_ready()
        wait_until(lambda: len(d.lines) >= 20, 30, "two seconds of captured audio")
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        rc, _ = d.terminate()
    finally:
        d.kill()
    assert rc == 0, d.stderr()[-2000:]
    assert "capturing default at 16000 Hz, 1 channel(s)" in d.stderr()
    y = sf.read(tmp_path / "clean.wav", dtype="float32")[0]
    assert len(y) >= 200 * H
    np.testing.assert_array_equal(y[:len(x)], _offline(x)[0])  # what the card captured
    s = d.summary()
    assert s["unaccounted"] == 0 and s["sinks"]["wav0"]["delivered"] == len(y) // H
    value = {(sm.name, tuple(sorted(sm.labels.items()))): sm.value
             for f in text_string_to_metric_families(text.decode()) for sm in f.samples}
    assert value["edgernn_source_connected", ()] == 1
    assert value["edgernn_audio_frames_total", ()] >= 200


PLAY = """
import sys, time
import numpy as np
from edgernn_serve.audio import AudioFormat
from edgernn_serve.sinks.audio import PlaybackSink
from edgernn_serve.items import Result

hops = np.load(sys.argv[1])
sink = PlaybackSink("speaker", "dev", {"device": None, "latency": "low",
                                       "buffer_ms": float(sys.argv[2])},
                    AudioFormat(16000, 1, 16000, 160))
sink.emit([Result(0, k, 0, k + 1, h, "m", None, 0, 0) for k, h in enumerate(hops)])
sink.start()
left = sink.flush(5.0)
time.sleep(0.05)
sink.close()
print(left, sink.delivered, sink.dropped, sink.xruns["overruns"], sink.xruns["underruns"])
"""


@pytest.mark.parametrize("buffer_ms", [1000.0, 100.0])
def test_playback_sink_plays_in_order_and_counts_overruns_and_underruns(tmp_path, buffer_ms):
    """A real PortAudio output stream to the file-backed ALSA speaker (speaker.raw)."""
    _portaudio()
    hops = np.random.default_rng(5).uniform(-0.5, 0.5, (50, H)).astype(np.float32)
    np.save(tmp_path / "hops.npy", hops)
    out = subprocess.run([sys.executable, "-c", PLAY, str(tmp_path / "hops.npy"),
                          str(buffer_ms)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env={**os.environ, **_alsa_env(tmp_path)})
    assert out.returncode == 0, out.stderr
    left, delivered, dropped, overruns, underruns = map(int, out.stdout.split())
    kept = min(50, int(buffer_ms) // 10)  # the buffer holds this many 10 ms hops
    assert (left, delivered, dropped, overruns) == (0, 50, 50 - kept, int(kept < 50))
    assert underruns > 0  # the clockless device kept asking after the audio ran out
    played = np.fromfile(tmp_path / "speaker.raw", "<f4")
    want = hops[50 - kept:].ravel()  # a full buffer drops the oldest audio
    start = int(np.flatnonzero(played)[0])  # after PortAudio's priming silence
    assert start < 4096 and not played[:start].any()
    np.testing.assert_array_equal(played[start:start + len(want)], want)
    assert not played[start + len(want):].any()  # then silence


def test_a_48_khz_file_is_resampled_to_the_model_and_back(tmp_path):
    import soxr
    x16 = _demo(2.0)
    x = soxr.resample(x16, 16000, 48000, quality="HQ").astype(np.float32)
    sf.write(tmp_path / "noisy.wav", x, 48000, subtype="FLOAT")
    cfg = _config(tmp_path, "", "[denoise]\nreport_every = 100\n")
    d = Daemon(cfg)
    d.run_to_end(60)
    y, rate = sf.read(tmp_path / "clean.wav", dtype="float32")
    # oracle: soxr in one go (its streaming resampler gives the same samples)
    u = soxr.resample(x, 48000, 16000, quality="HQ")
    v = Denoiser().process(u[:len(u) // H * H])
    want = soxr.resample(v, 16000, 48000, quality="HQ")
    assert rate == 48000 and len(y) == len(want) == 3 * len(v)
    np.testing.assert_allclose(y, want, atol=1e-6)
    assert d.summary()["answered_ok"] == len(v) // H


def test_live_capture_feeds_a_model_frames_of_samples(tmp_path):
    """kind = "audio" without denoising: hops of source.frame samples feed the model."""
    from tests.serve_helpers import make_model

    _portaudio()
    x = np.random.default_rng(9).uniform(-0.5, 0.5, 16 * 400).astype(np.float32)
    x.astype("<f4").tofile(tmp_path / "mic.raw")
    model = make_model(n_in=16)
    model.save(tmp_path / "m.ernn")
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text('[model]\npath = "m.ernn"\n[source]\nkind = "audio"\nsample_rate = 8000\n'
                   'frame = 16\n[[sink]]\ntype = "stdout"\n[metrics]\nlisten = ""\n')
    d = Daemon(cfg, env=_alsa_env(tmp_path))
    try:
        d.wait_ready()
        wait_until(lambda: len(d.lines) >= 400, 30, "400 frames")
        rc, _ = d.terminate()
    finally:
        d.kill()
    assert rc == 0, d.stderr()[-2000:]
    assert "capturing default at 8000 Hz, 1 channel(s)" in d.stderr()
    rows = d.results()[:400]
    assert [r["seq"] for r in rows] == list(range(400)) and rows[1]["t"] == 2000
    s = model.stream()
    assert [r["y"] for r in rows] == [s.step(x[16 * k:16 * (k + 1)]).tolist()
                                      for k in range(400)]


def test_channels_each_needs_a_stream_slot_per_channel(tmp_path):
    """Two channels, each its own stream, and one slot: one line, exit 2, nothing written
    (before, one channel was dropped and the other's audio piled up in the sink)."""
    x = np.stack([_demo(1.0), _demo(1.0, offset=2.0)], axis=1)
    sf.write(tmp_path / "noisy.wav", x, 16000, subtype="FLOAT")
    cfg = _config(tmp_path, 'channels = "each"', "[streams]\nmax = 1\n")
    out = subprocess.run([sys.executable, "-m", "edgernn", "serve", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0] == (f"edgernn: error: {cfg}: streams.max: the wav source has 2 channels, "
                        f'each a stream (channels = "each"); expected streams.max >= 2, got 1')
    assert not (tmp_path / "clean.wav").exists()


def test_a_lost_hop_becomes_silence_and_the_channels_stay_aligned():
    """A queue overflow can drop one channel's hop and not the other's: the sinks'
    interleaver aligns the channels by hop index, with silence for the lost hop."""
    from edgernn_serve.audio import AudioFormat
    from edgernn_serve.items import Result
    from edgernn_serve.sinks.audio import _Interleaver

    il = _Interleaver(AudioFormat(16000, 2, 16000, H))
    hop = {c: [np.full(H, 10 * c + k, np.float32) for k in range(6)] for c in (0, 1)}
    rows = []
    for k in range(6):
        res = [Result(c, k, 0, k + 1, hop[c][k], "m", None, 0, 0) for c in (0, 1)
               if not (c == 1 and k == 2)]  # channel 1's hop 2 is lost
        got = il.rows(res)
        if got is not None:
            rows.append(got)
    out = np.concatenate(rows)
    assert out.shape == (6 * H, 2)
    np.testing.assert_array_equal(out[:, 0], np.concatenate(hop[0]))
    want1 = np.concatenate([hop[1][k] if k != 2 else np.zeros(H, np.float32)
                            for k in range(6)])
    np.testing.assert_array_equal(out[:, 1], want1)


def test_a_missing_sound_card_is_a_config_error_naming_what_was_asked():
    _portaudio()
    from edgernn_serve.audio import device_name, import_sounddevice
    from edgernn_serve.config import ConfigError

    sd = import_sounddevice("test")
    for kind, who, prep in (("input", "source.device: cannot capture", "from"),
                            ("output", "sink s: cannot play", "on")):
        with pytest.raises(ConfigError, match=f"^{who} 2 channel\\(s\\) at 16000 Hz {prep} "
                                              f"'no-such-card': "):
            device_name(sd, "no-such-card", kind, 2, 16000, who)
