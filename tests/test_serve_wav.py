"""The WAV source of edgernn serve: real WAV files in every sample format, feature front end."""

from __future__ import annotations

import struct
import time
import wave

import numpy as np
import pytest

from edgernn_serve.config import ConfigError, load_config
from edgernn_serve.daemon import Daemon
from edgernn_serve.sources.wav import FrontEnd, WavError, WavReader
from tests.serve_helpers import make_model


def _pcm(path, ints: np.ndarray, width: int, rate=16000):
    """A WAV written by the standard library's wave module: int samples [n, channels]."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(ints.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 1:
            raw = (ints + 128).astype(np.uint8).tobytes()
        elif width == 3:
            v = ints.astype("<i4").reshape(-1, 1).view(np.uint8)[:, :3]
            raw = np.ascontiguousarray(v).tobytes()
        else:
            raw = ints.astype(f"<i{width}").tobytes()
        w.writeframes(raw)


def _float_wav(path, x: np.ndarray, rate=8000, extensible=False, dtype="<f4"):
    """An IEEE-float WAV written byte by byte (the wave module writes PCM only)."""
    ch, bits = x.shape[1], np.dtype(dtype).itemsize * 8
    block = ch * bits // 8
    if extensible:  # WAVE_FORMAT_EXTENSIBLE with the float sub-format GUID
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, ch, rate, rate * block, block, bits, 22, bits,
                          0) + struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
    else:
        fmt = struct.pack("<HHIIHH", 3, ch, rate, rate * block, block, bits)
    data = x.astype(dtype).tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + \
        struct.pack("<I", 4) + b"INFO" + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_wav_reader_pcm_every_width_stereo(tmp_path, width):
    rng = np.random.default_rng(width)
    full = 1 << (8 * width - 1)
    ints = rng.integers(-full, full, (1001, 2))
    _pcm(tmp_path / "a.wav", ints, width)
    r = WavReader(tmp_path / "a.wav")
    assert (r.channels, r.sample_rate, r.frames) == (2, 16000, 1001)
    got = np.concatenate([r.read(300) for _ in range(4)])
    assert r.read(300).shape == (0, 2)
    np.testing.assert_array_equal(got, (ints / full).astype(np.float32))


@pytest.mark.parametrize("extensible, dtype", [(False, "<f4"), (True, "<f4"), (False, "<f8")])
def test_wav_reader_float_formats(tmp_path, extensible, dtype):
    x = np.random.default_rng(0).uniform(-1, 1, (500, 3))
    _float_wav(tmp_path / "f.wav", x, extensible=extensible, dtype=dtype)
    r = WavReader(tmp_path / "f.wav")
    assert (r.channels, r.sample_rate, r.frames) == (3, 8000, 500)
    np.testing.assert_array_equal(r.read(10_000), x.astype(np.float32))


def test_wav_reader_refuses_non_wav_and_unsupported_formats(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"ID3\x03 an mp3")
    with pytest.raises(WavError, match=r"x\.wav: not a RIFF/WAVE file"):
        WavReader(tmp_path / "x.wav")
    fmt = struct.pack("<HHIIHH", 2, 1, 8000, 4000, 256, 4)  # MS ADPCM
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 0)
    (tmp_path / "adpcm.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(WavError, match="unsupported sample format .tag 2, 4 bits"):
        WavReader(tmp_path / "adpcm.wav")


@pytest.mark.parametrize("features", ["stft", "log_power"])
def test_front_end_spectra_match_a_direct_computation(features):
    hop, win = 32, 96
    x = np.random.default_rng(1).standard_normal(hop * 10).astype(np.float32)
    fe = FrontEnd(features, hop, win)
    got = np.stack([fe(x[k * hop:(k + 1) * hop]) for k in range(10)])
    padded = np.concatenate([np.zeros(win - hop), x.astype(np.float64)])
    hann = np.hanning(win + 1)[:-1]  # the periodic Hann window
    want = np.stack([np.abs(np.fft.rfft(hann * padded[k * hop:k * hop + win]))
                     for k in range(10)])
    if features == "log_power":
        want = np.log(want ** 2 + 1e-10)
    assert got.shape == (10, win // 2 + 1) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _serve_wav(tmp_path, model, source_opts: str) -> Daemon:
    model.save(tmp_path / "m.ernn")
    cfg = tmp_path / "e.toml"
    cfg.write_text(f'log_level = "error"\n[model]\npath = "m.ernn"\n[source]\nkind = "wav"\n'
                   f'path = "in.wav"\n{source_opts}\n[[sink]]\ntype = "stdout"\n'
                   f'[metrics]\nlisten = ""\n')
    return Daemon(load_config(cfg), stdout=_Lines())


class _Lines:
    def __init__(self):
        self.rows = []

    def write(self, b):
        import json

        self.rows += [json.loads(ln) for ln in b.splitlines()]

    def flush(self):
        pass


def _run(d: Daemon) -> list:
    d.start()
    end = time.monotonic() + 30
    while not d.source.finished.is_set():
        assert time.monotonic() < end
        time.sleep(0.01)
    d.stop("end of input")
    return d.stdout.rows


def test_wav_source_each_channel_is_a_stream_of_sample_frames(tmp_path):
    ints = np.random.default_rng(2).integers(-32768, 32768, (16 * 50 + 7, 2))
    _pcm(tmp_path / "in.wav", ints, 2)
    model = make_model(n_in=16)
    rows = _run(_serve_wav(tmp_path, model, 'frame = 16\nchannels = "each"'))
    x = (ints / 32768).astype(np.float32)
    assert len(rows) == 100  # 50 full hops per channel; the 7 left over are not a frame
    for c in (0, 1):
        mine = [r for r in rows if r["stream"] == c]
        assert [r["seq"] for r in mine] == list(range(50))
        assert mine[1]["t"] == 1000  # 16 samples at 16 kHz, in µs
        s = model.stream()
        want = [s.step(np.ascontiguousarray(x[k * 16:(k + 1) * 16, c])).tolist()
                for k in range(50)]
        assert [r["y"] for r in mine] == want


def test_wav_source_mixes_channels_into_spectral_features(tmp_path):
    x = np.random.default_rng(3).uniform(-0.5, 0.5, (32 * 20, 2))
    _float_wav(tmp_path / "in.wav", x)
    model = make_model(n_in=33)
    rows = _run(_serve_wav(tmp_path, model, 'frame = 32\nwindow = 64\nfeatures = "log_power"'))
    fe, s = FrontEnd("log_power", 32, 64), model.stream()
    mono = x.astype(np.float32).mean(axis=1)
    want = [s.step(fe(mono[k * 32:(k + 1) * 32])).tolist() for k in range(20)]
    assert [r["y"] for r in rows] == want and {r["stream"] for r in rows} == {0}


def test_wav_source_refuses_a_model_of_another_input_size(tmp_path):
    _pcm(tmp_path / "in.wav", np.zeros((100, 1), np.int64), 2)
    d = _serve_wav(tmp_path, make_model(n_in=16), "frame = 20")
    with pytest.raises(ConfigError, match="source: samples frames of source.frame = 20 values "
                                          "do not fit the model's input_size 16"):
        d.start()
    assert d.sinks is None  # refused before any sink was opened
    d.source.close()
