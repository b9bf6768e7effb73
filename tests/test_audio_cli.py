"""``edgernn denoise`` on real sound files written by soundfile (and by hand for bad ones)."""

import struct

import numpy as np
import pytest
import soundfile as sf

import edgernn
from edgernn.audio.io import write_audio_atomic
from edgernn.cli import main

from .test_audio_denoiser import gain_model


@pytest.fixture
def unity(tmp_path):
    path = tmp_path / "unity.ernn"
    gain_model(1.0).save(path)
    return str(path)


def _wav_header(channels, fmt_tag=1, bits=16, rate=16000, data=b"\0\0" * 8):
    block = max(channels, 1) * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_16k_mono_pcm16_through_a_unity_model_comes_back_aligned(tmp_path, unity, rng, capsys):
    x = np.round(rng.uniform(-0.5, 0.5, 12345) * 32767).astype(np.int16)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x, 16000, subtype="PCM_16")
    assert main(["denoise", str(src), "-o", str(dst), "--model", unity]) == 0
    y, rate = sf.read(dst, dtype="int16")
    assert rate == 16000 and sf.info(dst).subtype == "PCM_16" and y.shape == x.shape
    assert np.abs(y.astype(int) - x).max() <= 1
    assert "real-time factor" in capsys.readouterr().out


def test_44k_stereo_float_channels_are_independent_and_keep_rate_and_length(tmp_path, unity):
    t = np.arange(44100 * 2) / 44100
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 1000 * t)], 1)
    src, dst, png = tmp_path / "in.wav", tmp_path / "out.flac", tmp_path / "ba.png"
    sf.write(src, x.astype(np.float32), 44100, subtype="FLOAT")
    rc = main(["denoise", str(src), "-o", str(dst), "--model", unity, "--plot", str(png)])
    assert rc == 0
    y, rate = sf.read(dst)
    assert rate == 44100 and y.shape == x.shape
    np.testing.assert_allclose(y[2000:-2000], x[2000:-2000], atol=2e-3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_attenuation_limit_reaches_the_denoiser(tmp_path, rng):
    model = tmp_path / "zero.ernn"
    gain_model(0.0).save(model)
    x = rng.uniform(-0.5, 0.5, 8000).astype(np.float32)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x, 16000, subtype="FLOAT")
    assert main(["denoise", str(src), "-o", str(dst), "--model", str(model),
                 "--attenuation-limit", "20"]) == 0
    np.testing.assert_allclose(sf.read(dst)[0], 0.1 * x, atol=1e-5)


def test_long_files_show_a_progress_bar(tmp_path, unity, capsys):
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, np.zeros(16000 * 31, np.float32), 16000)
    assert main(["denoise", str(src), "-o", str(dst), "--model", unity]) == 0
    assert "100%" in capsys.readouterr().err


BAD = {
    "not a WAV": lambda p: p.write_text("this is not audio\n" * 20),
    "empty file": lambda p: p.write_bytes(b""),
    "no frames": lambda p: sf.write(p, np.zeros((0, 1), np.float32), 16000),
    "zero channels": lambda p: p.write_bytes(_wav_header(0)),
    "NaN samples": lambda p: sf.write(p, np.array([0.1, np.nan, 0.2] * 100, np.float32),
                                      16000, subtype="FLOAT"),
    "unsupported format": lambda p: p.write_bytes(_wav_header(1, bits=64, data=b"\0" * 64)),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_exit_2_and_output_untouched(tmp_path, unity, capsys, case):
    src, dst = tmp_path / "bad.wav", tmp_path / "out.wav"
    BAD[case](src)
    dst.write_bytes(b"precious")
    assert main(["denoise", str(src), "-o", str(dst), "--model", unity]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgernn: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and str(src) in err
    assert dst.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.wav", "out.wav", "unity.ernn"]


def test_refuses_to_overwrite_the_input(tmp_path, unity, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(1600, np.float32), 16000)
    before = src.read_bytes()
    link = tmp_path / "link.wav"
    link.symlink_to(src)
    for out in (src, link):
        assert main(["denoise", str(src), "-o", str(out), "--model", unity]) == 2
        assert "refusing to overwrite the input" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_unknown_output_format_and_failed_write_leave_nothing_behind(tmp_path, unity, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(1600, np.float32), 16000)
    assert main(["denoise", str(src), "-o", str(tmp_path / "out.xyz"), "--model", unity]) == 2
    assert "unknown output format" in capsys.readouterr().err
    dst = tmp_path / "keep.wav"
    dst.write_bytes(b"precious")
    with pytest.raises(edgernn.EdgeRNNError, match="cannot write"):
        write_audio_atomic(dst, np.zeros((10, 0), np.float32), 16000)
    assert dst.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "keep.wav", "unity.ernn"]


def test_live_without_a_usable_device_says_so(unity, capsys):
    assert main(["denoise", "--live", "--model", unity]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--live" in err


def test_missing_arguments_and_bad_limit(unity, capsys):
    assert main(["denoise", "--model", unity]) == 2
    assert "expected IN and -o OUT" in capsys.readouterr().err
    assert main(["denoise", "a.wav", "-o", "b.wav", "--model", unity,
                 "--attenuation-limit", "-1"]) == 2
