"""``edgernn convert --quantize`` and the report formatter, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import converters
import edgernn
from converters.quantize.qlayer import quant
from edgernn.model.quant_report import format_report

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "tests" / "data" / "tflite" / "lstm_fused.tflite"   # LSTM(3 -> 8) -> Dense(4)


def _cli(*args):
    """``edgernn ARGS``; with ``--quantize``, every layer of the small test models is
    quantised (``--int8-min-macs 0``; the default keeps them float, tested below)."""
    if "--quantize" in args:
        args = (*args, "--int8-min-macs", "0")
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
    assert out.returncode == 2 and "(static) needs --calibration" in out.stderr
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


def test_convert_int8_weights_needs_no_calibration(tmp_path):
    dst = tmp_path / "w.ernn"
    out = _cli("convert", SRC, "-o", dst, "--quantize", "int8-weights")
    assert out.returncode == 0, out.stderr
    assert "not measured" in out.stdout
    q = edgernn.load(dst)
    assert [quant(op).mode for op in q.layers if quant(op)] == ["int8-weights"] * 2
    out = _cli("inspect", dst)
    assert out.returncode == 0 and "not measured" in out.stdout


def test_convert_quantize_writes_an_int8_model_and_inspect_prints_its_report(tmp_path):
    dst = tmp_path / "q.ernn"
    calib = _calib(tmp_path)
    out = _cli("convert", SRC, "-o", dst, "--quantize", "int8", "--calibration", calib,
               "--max-error", "0.5")
    assert out.returncode == 0, out.stderr
    assert "end to end, held-out" in out.stdout
    q = edgernn.load(dst)
    assert [quant(op).mode for op in q.layers if quant(op)] == ["int8", "int8"]
    assert q.layers[0].weight_ih.dtype == np.int8 and q.layers[0].bias_hh is None  # merged
    # the stored report is what the saved model does: the held-out split (the last of
    # the 4 calibration sequences) through the file's int8 model and the float source
    held = np.load(calib)[-1]
    err = np.abs(q.stream().run(held) - converters.from_tflite(SRC).stream().run(held))
    rep = q.quantization["end_to_end"]["held_out"]
    assert rep["max_abs"] == pytest.approx(err.max(), rel=1e-3)
    assert 0 < rep["max_abs"] <= 0.5 and q.quantization["max_error_met"] is True
    out = _cli("inspect", dst)
    assert out.returncode == 0 and "quantization: int8" in out.stdout
    assert "end to end, held-out: max" in out.stdout and "input: " in out.stdout
    out = _cli("inspect", dst, "--json")
    info = json.loads(out.stdout)
    assert info["quantization"]["end_to_end"]["held_out"] == rep


def test_convert_int8_weights_dynamic_inputs_default_to_a_zero_point(tmp_path):
    for flags, zp in (((), True), (("--dynamic", "symmetric"), False)):
        dst = tmp_path / f"q{zp}.ernn"
        out = _cli("convert", SRC, "-o", dst, "--quantize", "int8-weights", "--calibration",
                   _calib(tmp_path), "--no-progress", *flags)
        assert out.returncode == 0, out.stderr
        q = edgernn.load(dst)
        assert [quant(op).dynamic_zero_point for op in q.layers if quant(op)] == [zp, zp]
        assert q.quantization["dynamic_inputs"] == ("asymmetric" if zp else "symmetric")


def test_format_report_names_every_layer_split_and_decision():
    model = converters.from_tflite(SRC)
    t = np.arange(900)[:, None]
    xs = np.sin(0.07 * t + np.arange(3)).astype(np.float32).reshape(6, 150, 3)
    q = converters.quantize(model, xs, mode={"0": "int8", "default": "int8-weights"},
                            max_error=1.0, progress=False, min_macs=0)
    text = format_report(q.quantization)
    lines = text.splitlines()
    assert lines[0].startswith("quantization: mixed (ranges: auto")
    assert any(ln.split()[:3] == ["0", "LSTM", "int8"] for ln in lines)
    assert any(ln.split()[:3] == ["1", "Dense", "int8-weights"] for ln in lines)
    assert "input: " in text and "state: " in text and "zp" in text
    assert "end to end, held-out: max" in text and "max_error 1: met; kept float: none" in text
    assert format_report(None) == "quantization: none (float32)"
    src = format_report(converters.from_tflite(ROOT / "tests/data/tflite_quant/q_lstm_drq.tflite")
                        .quantization).splitlines()
    assert src[0] == ("quantization: mixed (parameters from the source model, tflite; compare "
                      "against the source's runtime)")
    assert src[3].split()[:3] == ["0", "LSTM", "int8-weights"] and "note: LiteRT" in src[4]
    assert not any("end to end" in ln for ln in src)


def test_convert_keeps_small_layers_float_unless_int8_min_macs_says_otherwise(tmp_path):
    """Without --int8-min-macs the small LSTM(3 -> 8) and Dense(4) stay float32 (int8 would
    be slower), and the inspect report says why; a negative value is one line, exit 2."""
    dst = tmp_path / "q.ernn"
    out = subprocess.run([sys.executable, "-m", "edgernn", "convert", str(SRC), "-o", str(dst),
                          "--quantize", "int8-weights"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    m = edgernn.load(dst)
    assert all(quant(op) is None for op in m.layers)
    assert all(e["reason"].startswith("small:") for e in m.quantization["layers"])
    assert "[float: small]" in m.describe()
    out = subprocess.run([sys.executable, "-m", "edgernn", "convert", str(SRC), "-o",
                          str(tmp_path / "b.ernn"), "--quantize", "int8-weights",
                          "--int8-min-macs", "-1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert "--int8-min-macs: expected a whole number >= 0, got -1" in out.stderr
