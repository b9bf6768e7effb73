"""``edgernn convert --quantize`` and the report formatter, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import converters
from converters.quantize.qlayer import runtime_has_int8
from edgernn.quant_report import format_report

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "tests" / "data" / "tflite" / "lstm_fused.tflite"   # LSTM(3 -> 8) -> Dense(4)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgernn", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _calib(tmp_path, bad=False):
    t = np.arange(600)[:, None]
    xs = (np.sin(0.07 * t + np.arange(3)) + 0.2 * np.random.default_rng(0)
          .standard_normal((600, 3))).astype(np.float32)
    if bad:
        xs[17, 1] = np.nan
    np.save(tmp_path / "c.npy", xs.reshape(4, 150, 3))
    return tmp_path / "c.npy"


def test_convert_quantize_needs_calibration_and_refuses_bad_data(tmp_path):
    out = _cli("convert", SRC, "-o", tmp_path / "q.ernn", "--quantize", "int8")
    assert out.returncode == 2 and "--quantize needs --calibration" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    out = _cli("convert", SRC, "-o", tmp_path / "q.ernn", "--quantize", "int8",
               "--calibration", _calib(tmp_path, bad=True))
    assert out.returncode == 2 and "non-finite" in out.stderr and "step 17" in out.stderr
    out = _cli("convert", SRC, "-o", tmp_path / "q.ernn", "--calibration", _calib(tmp_path))
    assert out.returncode == 2 and "--calibration needs --quantize" in out.stderr
    out = _cli("convert", SRC, "-o", tmp_path / "q.ernn", "--quantize", "default=int8,x",
               "--calibration", _calib(tmp_path))
    assert out.returncode == 2 and "LAYER=MODE" in out.stderr
    assert not (tmp_path / "q.ernn").exists()


@pytest.mark.xfail(not runtime_has_int8(), strict=True,
                   reason="waits on the runtime's int8 layers (edgernn.QuantParams): an int8 "
                          "model cannot be saved before")
def test_convert_quantize_writes_an_int8_model_and_inspect_prints_its_report(tmp_path):
    dst = tmp_path / "q.ernn"
    out = _cli("convert", SRC, "-o", dst, "--quantize", "int8", "--calibration",
               _calib(tmp_path), "--max-error", "0.5")
    assert out.returncode == 0, out.stderr
    assert "end to end, held-out" in out.stdout
    assert dst.stat().st_size < 0.6 * (ROOT / "tests/data/tflite/lstm_fused.tflite").stat().st_size
    out = _cli("inspect", dst)
    assert out.returncode == 0 and "quantization: int8" in out.stdout


def test_format_report_names_every_layer_split_and_decision():
    model = converters.from_tflite(SRC)
    t = np.arange(900)[:, None]
    xs = np.sin(0.07 * t + np.arange(3)).astype(np.float32).reshape(6, 150, 3)
    q = converters.quantize(model, xs, mode={"0": "int8", "default": "int8-weights"},
                            max_error=1.0, progress=False)
    text = format_report(q.quantization)
    lines = text.splitlines()
    assert lines[0].startswith("quantization: mixed (ranges: auto")
    assert any(ln.split()[:3] == ["0", "LSTM", "int8"] for ln in lines)
    assert any(ln.split()[:3] == ["1", "Dense", "int8-weights"] for ln in lines)
    assert "input: " in text and "state: " in text and "zp" in text
    assert "end to end, held-out: max" in text and "max_error 1: met; kept float: none" in text
    assert format_report(None) == "quantization: none (float32)"
