"""converters.quantize: weights, ranges, calibration checks, report, max_error, mixed
precision, against the int8 oracle (tests/naive_quant.py) and the float oracle."""

from __future__ import annotations

import json

import numpy as np
import pytest

import converters
import edgernn
from converters.quantize import CalibrationError, calibration, quantize_weight
from converters.quantize import ranges as R
from converters.quantize.qlayer import build, quant
from tests import naive, naive_quant


def _model(kind="LSTM", seed=0, I=6, H=12, O=3, **kw):
    r = np.random.default_rng(seed)
    g = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    rec = getattr(edgernn, kind)(r.normal(0, .4, (g * H, I)), r.normal(0, .3, (g * H, H)),
                                 r.normal(0, .1, g * H), r.normal(0, .1, g * H), **kw)
    return edgernn.Model([rec, edgernn.Dense(r.normal(0, .4, (O, H)), r.normal(0, .1, O))])


def _data(model, n=4, T=120, seed=1):
    t = np.arange(T)[:, None]
    r = np.random.default_rng(seed)
    return [(np.sin(0.05 * (k + 1) * t + np.arange(model.input_size)) +
             0.3 * r.standard_normal((T, model.input_size))).astype(np.float32)
            for k in range(n)]


def _run(q, xs):
    return q.stream().run(xs)


def test_quantize_weight_per_row_symmetric():
    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [3.0, 2.9, -0.1]], np.float32)
    q, s = quantize_weight(w)
    assert q.dtype == np.int8 and s.dtype == np.float32
    np.testing.assert_array_equal(np.abs(q[[0, 2]]).max(axis=1), [127, 127])
    assert s[1] == 1 and not q[1].any()
    assert np.all(np.abs(q * s[:, None] - w) <= s[:, None] / 2 * 1.0001)


@pytest.mark.parametrize("lo,hi,zp", [(-1, 1, 0), (0, 1, -128), (-3, 0, 127), (-0.2, 5, None)])
def test_affine_covers_the_range_and_zero_exactly(lo, hi, zp):
    s, z = R.affine(lo, hi)
    assert (-128 - z) * np.float32(s) <= lo and (127 - z) * np.float32(s) >= hi
    assert R.fake_quant(np.float32([0.0]), s, z)[0] == 0
    if zp is not None:
        assert z == zp
    assert s <= max(-lo / 128, hi / 127) * (1 + 1e-6)


def test_mse_and_percentile_ranges_clip_outliers():
    v = np.random.default_rng(0).laplace(0, 1, 200_000).astype(np.float32)
    c = R.candidates(v)
    err = {k: float(np.mean((R.fake_quant(v, *R.affine(*r)) - v) ** 2)) for k, r in c.items()}
    assert err["mse"] <= min(err.values()) * 1.02 and err["mse"] < 0.8 * err["minmax"]
    assert c["percentile_99.9"][1] < c["minmax"][1]


@pytest.mark.parametrize("mode", ["int8", "int8-weights", "int8-weights-asym"])
@pytest.mark.parametrize("kind,kw", [("LSTM", {}), ("LSTM", {"peephole": np.full((3, 12), .2),
                                                             "cell_clip": 1.0}),
                                     ("GRU", {}), ("GRU", {"linear_before_reset": False}),
                                     ("RNN", {"nonlinearity": "relu"})])
def test_quantized_model_runs_as_the_oracle(kind, kw, mode):
    model = _model(kind, **kw)
    dyn = "asymmetric" if mode.endswith("asym") else "symmetric"
    mode = mode.removesuffix("-asym")
    q = converters.quantize(model, _data(model), mode=mode, progress=False, min_macs=0, dynamic=dyn)
    assert all(quant(lay).mode == mode for lay in q.layers)
    assert all(getattr(quant(lay), "dynamic_zero_point", False) == (dyn == "asymmetric")
               for lay in q.layers)
    xs = _data(model, 1, 80, seed=9)[0]
    np.testing.assert_allclose(_run(q, xs), naive_quant.run(q.layers, xs), rtol=0, atol=2e-5)


def test_report_is_json_and_matches_an_independent_measurement():
    model = _model("GRU", seed=3)
    held = _data(model, 2, 150, seed=5)
    q = converters.quantize(model, _data(model), mode="int8", held_out=held,
                            progress=False, min_macs=0)
    rep = json.loads(json.dumps(q.quantization, allow_nan=False))
    assert rep["mode"] == "int8" and rep["held_out"]["source"] == "given"
    ref = np.concatenate([naive.run(model, x) for x in held])
    got = np.concatenate([naive_quant.run(q.layers, x) for x in held])
    e = rep["end_to_end"]["held_out"]
    assert e["max_abs"] == pytest.approx(np.abs(got - ref).max(), rel=1e-3, abs=1e-6)
    assert e["rms"] == pytest.approx(np.sqrt(np.mean((got - ref) ** 2)), rel=1e-3)
    snr = 10 * np.log10((ref ** 2).sum() / ((got - ref) ** 2).sum())
    assert e["snr_db"] == pytest.approx(snr, abs=0.01) and e["snr_db"] > 25
    for layer in rep["layers"]:
        for tensor in ("input", "state") if layer["type"] == "GRU" else ("input",):
            r = layer["ranges"][tensor]
            best = min(r["candidates"].values(), key=lambda m: (m["max_abs"], m["rms"]))
            assert r["candidates"][r["method"]] == best
        assert layer["error"]["calibration"]["steps"] == rep["calibration"]["steps"]


def test_held_out_is_carved_off_when_not_given():
    model = _model("LSTM")
    q = converters.quantize(model, _data(model, n=5), mode="int8-weights",
                            progress=False, min_macs=0)
    rep = q.quantization
    assert rep["calibration"]["sequences"] == 4 and rep["held_out"]["sequences"] == 1
    assert "last 1 of 5" in rep["held_out"]["source"]
    one = converters.quantize(model, _data(model, n=1, T=400)[0], mode="int8-weights",
                              progress=False, min_macs=0).quantization
    assert (one["calibration"]["steps"], one["held_out"]["steps"]) == (320, 80)


def test_max_error_keeps_the_worst_layers_float():
    model = _model("LSTM", seed=4)
    data = _data(model, n=5)
    full = converters.quantize(model, data, mode="int8", progress=False, min_macs=0).quantization
    e_all = full["end_to_end"]["calibration"]["max_abs"]
    q = converters.quantize(model, data, mode="int8", max_error=e_all * 0.5,
                            progress=False, min_macs=0)
    rep = q.quantization
    assert rep["kept_float"] and rep["max_error_met"] is True
    assert rep["end_to_end"]["calibration"]["max_abs"] <= e_all * 0.5 * (1 + 1e-3)  # 4 digits
    ops = {t.name: t.op for t in q.graph.nodes}
    for name in rep["kept_float"]:
        entry = next(e for e in rep["layers"] if e["name"] == name)
        assert entry["precision"] == "float32"
        assert quant(ops[name]) is None and "max_error" in entry["reason"]
    tiny = converters.quantize(model, data, mode="int8", max_error=1e-12,
                               progress=False, min_macs=0)
    assert sorted(tiny.quantization["kept_float"]) == ["0", "1"]
    assert tiny.quantization["end_to_end"]["calibration"]["max_abs"] == 0


def test_many_to_one_model_keeps_returning_the_last_step():
    model = _model("GRU", seed=7)
    last = edgernn.Model(model.layers, return_sequences=False)
    q = converters.quantize(last, _data(model), mode="int8", max_error=1e-9,
                            progress=False, min_macs=0)
    assert q.return_sequences is False and sorted(q.quantization["kept_float"]) == ["0", "1"]
    q = converters.quantize(last, _data(model), mode="int8", progress=False, min_macs=0)
    xs = _data(model, 1, 90, seed=8)[0]
    ys = q.stream().run(xs)
    assert ys.shape == (1, 3)
    np.testing.assert_allclose(ys, naive_quant.run(q, xs)[-1:], rtol=0, atol=2e-5)


def test_mixed_precision_per_layer():
    model = _model("GRU")
    q = converters.quantize(model, _data(model), mode={"default": "int8", 1: "float32"},
                            progress=False, min_macs=0)
    assert [e["precision"] for e in q.quantization["layers"]] == ["int8", "float32"]
    assert q.quantization["mode"] == "mixed" and quant(q.layers[1]) is None
    q = converters.quantize(model, _data(model), mode=[None, "int8-weights"],
                            progress=False, min_macs=0)
    assert [e["precision"] for e in q.quantization["layers"]] == ["float32", "int8-weights"]
    with pytest.raises(edgernn.ModelFormatError, match=r"layer '7' does not exist.*0\.\.1"):
        converters.quantize(model, _data(model), mode={"7": "int8"}, progress=False, min_macs=0)
    with pytest.raises(edgernn.ModelFormatError, match=r"mode\[1\]: expected one of .*'int4'"):
        converters.quantize(model, _data(model), mode=["int8", "int4"], progress=False, min_macs=0)


def test_bad_calibration_data_is_refused_with_what_was_expected(tmp_path):
    model = _model("LSTM")
    good = _data(model, 1)[0]
    cases = [([], "no sequences"), (np.zeros((0, 6), np.float32), "sequence 0 is empty"),
             (good[:, :5], r"expected a float array of shape \(T, 6\).*\(120, 5\)"),
             (good[:, 0], r"shape \(T, 6\).*\(120,\)"), ("x.txt", "is not a file"),
             (np.where(np.arange(120)[:, None] == 7, np.nan, good), "non-finite.*step 7")]
    for data, msg in cases:
        with pytest.raises(CalibrationError, match=msg):
            converters.quantize(model, data, progress=False, min_macs=0)
    slow = _model("LSTM", seed=2)  # forget gate near 1: the state keeps its start for long
    slow = edgernn.Model([edgernn.LSTM(slow.layers[0].weight_ih * 0.1, slow.layers[0].weight_hh,
                                       np.r_[np.zeros(12), np.full(12, 6.0), np.zeros(24)]),
                          slow.layers[1]])
    # a state that never settles is normal for big recurrent models (NSNet2's GRUs): a
    # warning by default, an error on request
    with pytest.warns(UserWarning, match="too short for the model's state to settle"):
        q = converters.quantize(slow, good[:20], progress=False, min_macs=0)
    assert any("settle" in w for w in q.quantization["warnings"])
    with pytest.raises(CalibrationError, match="too short for the model's state to settle"):
        converters.quantize(slow, good[:20], progress=False, min_macs=0, require_settled=True)
    assert issubclass(CalibrationError, edgernn.ModelFormatError)


def test_int8_weights_needs_no_calibration_data_and_says_the_error_is_unmeasured(rng):
    """Dynamic range, as LiteRT and ONNX Runtime: the weights per row, nothing measured;
    the int8 model equals the one made with data (the ranges are per call anyway)."""
    model = _model("GRU")
    q = converters.quantize(model, mode="int8-weights", progress=False, min_macs=0)
    with_data = converters.quantize(model, _data(model, 2), mode="int8-weights",
                                    progress=False, min_macs=0)
    xs = _data(model, 1)[0]
    np.testing.assert_array_equal(q.stream().run(xs), with_data.stream().run(xs))
    rep = q.quantization
    assert rep["end_to_end"] == {"calibration": None, "held_out": None}
    assert "not measured" in rep["warnings"][0]
    assert [e["precision"] for e in rep["layers"]] == ["int8-weights", "int8-weights"]
    from edgernn.model.quant_report import format_report

    assert "not measured" in format_report(rep)
    for kw, msg in [({"mode": "int8"}, "static int8 .* needs calibration data"),
                    ({"mode": "int8-weights", "max_error": 0.1}, "needs calibration data")]:
        with pytest.raises(edgernn.ModelFormatError, match=msg):
            converters.quantize(model, progress=False, min_macs=0, **kw)


def test_calibration_files_and_the_wav_hook(tmp_path, monkeypatch):
    model = _model("GRU")
    d = _data(model, 3)
    np.save(tmp_path / "c.npy", np.stack(d))
    np.savez(tmp_path / "c.npz", a=d[0], b=np.stack(d[1:]))
    for p in ("c.npy", "c.npz"):
        seqs = calibration.load_sequences(str(tmp_path / p), model)
        assert len(seqs) == 3 and all(np.array_equal(a, b) for a, b in zip(seqs, d, strict=True))
    (tmp_path / "c.wav").write_bytes(b"RIFF")
    with pytest.raises(CalibrationError, match=r"\.wav needs the model's audio front end"):
        calibration.load_sequences(tmp_path / "c.wav", model)
    monkeypatch.setitem(calibration.LOADERS, ".wav", lambda path, m: d)
    assert len(calibration.load_sequences(tmp_path / "c.wav", model)) == 3


def test_a_layer_that_cannot_be_quantised_stays_float_with_a_warning():
    r = np.random.default_rng(0)
    gru = lambda: edgernn.GRU(r.normal(0, .3, (24, 6)), r.normal(0, .3, (24, 8)))  # noqa: E731
    model = edgernn.Model([edgernn.Bidirectional(gru(), gru()),
                           edgernn.Dense(r.normal(0, .3, (2, 16)))])
    with pytest.warns(UserWarning, match="layer 0 stays float32: Bidirectional"):
        q = converters.quantize(model, _data(model), mode="int8", progress=False, min_macs=0)
    rep = q.quantization
    assert [e["precision"] for e in rep["layers"]] == ["float32", "int8"]
    assert "whole-sequence" in rep["layers"][0]["reason"] and rep["warnings"]


def test_quantized_state_does_not_drift_over_a_long_stream():
    """Short version of bench/quant_accuracy.py's 10^6-step check."""
    model = _model("LSTM", seed=6, H=16)
    q = converters.quantize(model, _data(model, 4, 300), mode="int8", progress=False, min_macs=0)
    T = 20_000
    t = np.arange(T)[:, None]
    xs = (np.sin(0.03 * t + np.arange(6)) + 0.3 * np.random.default_rng(2)
          .standard_normal((T, 6))).astype(np.float32)
    ref = model.stream().run(xs)
    s = q.stream()
    got = np.concatenate([s.run(xs[:T // 2]), s.run(xs[T // 2:])])  # state carried
    err = np.abs(got - ref).max(axis=1)
    head, tail = err[:2000].max(), err[-2000:].max()
    reported = q.quantization["end_to_end"]["calibration"]["max_abs"]
    assert tail <= 2 * max(head, reported)
    assert 0.9 < got[-2000:].std() / ref[-2000:].std() < 1.1


@pytest.mark.parametrize("kind,kw", [("LSTM", {}), ("RNN", {}), ("GRU", {}),
                                     ("GRU", {"linear_before_reset": False})])
def test_merged_biases_give_the_same_bits_and_a_smaller_file(kind, kw, tmp_path):
    """The quantiser stores bias_ih + bias_hh merged where the engine sums them anyway
    (LSTM, RNN: one bias; GRU: the r and z parts): the engine's outputs are bit for bit
    those of the same int8 op with its two original biases."""
    import dataclasses

    model = _model(kind, seed=5, **kw)
    q = converters.quantize(model, _data(model), mode="int8-weights", progress=False, min_macs=0)
    rec, orig = q.layers[0], model.layers[0]
    H = orig.hidden_size
    if kind == "GRU":
        assert rec.bias_hh is not None and not rec.bias_hh[:2 * H].any()
        np.testing.assert_array_equal(rec.bias_hh[2 * H:], orig.bias_hh[2 * H:])
    else:
        assert rec.bias_hh is None
    unmerged = edgernn.Model([dataclasses.replace(rec, bias_ih=orig.bias_ih,
                                                  bias_hh=orig.bias_hh), q.layers[1]])
    xs = _data(model, 1, 200, seed=4)[0]
    np.testing.assert_array_equal(q.stream().run(xs), unmerged.stream().run(xs))
    edgernn.Model(q.layers).save(tmp_path / "merged.ernn")  # both without the report
    unmerged.save(tmp_path / "two.ernn")
    smaller = (tmp_path / "merged.ernn").stat().st_size < (tmp_path / "two.ernn").stat().st_size
    assert smaller == (kind != "GRU")  # a GRU keeps its 3H bias_hh (zeros at r, z)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_quantized_ops_count_the_parameters_of_the_float_model(kind):
    """Scales are not parameters: `describe`'s gate check holds for an int8 model too."""
    model = _model(kind, seed=2)
    q = converters.quantize(model, _data(model), mode="int8", progress=False, min_macs=0)
    rec, orig = q.layers[0], model.layers[0]
    merged = rec.bias_hh is None  # an LSTM's two biases are stored summed (test above)
    assert rec.param_count() == rec.expected_params() == orig.param_count() - (
        orig.bias_hh.size if merged else 0)
    assert q.layers[1].param_count() == model.layers[1].param_count()
    assert "MISMATCH" not in q.describe() and f"{rec.expected_params()} ok" in q.describe()


def test_a_matrix_too_wide_for_int32_sums_stays_float():
    """Past 65793 columns the int8 kernels' int32 sums could wrap: such a layer is kept
    float with a note, the others are quantised."""
    from edgernn.kernels.qlinalg import MAX_COLS

    r = np.random.default_rng(0)
    wide = edgernn.Dense(r.normal(0, .01, (2, MAX_COLS + 1)), r.normal(0, .1, 2))
    model = edgernn.Model([wide, edgernn.Dense(r.normal(0, .4, (3, 2)), np.zeros(3))])
    cal = [r.standard_normal((12, MAX_COLS + 1)).astype(np.float32) for _ in range(3)]
    with pytest.warns(UserWarning, match="int32"):
        q = converters.quantize(model, cal, mode="int8-weights", progress=False, min_macs=0)
    assert q.layers[0].quant is None and q.layers[1].quant is not None
    with pytest.raises(edgernn.ModelFormatError, match="at most 65793 columns"):
        build(wide, "int8-weights")


def _big_and_small(seed=3):
    """Dense 64 -> 300 (19200 MACs per step: int8) then Dense 300 -> 4 (1200: small)."""
    r = np.random.default_rng(seed)
    return edgernn.Model([edgernn.Dense(r.normal(0, .2, (300, 64)), r.normal(0, .1, 300),
                                        "tanh"),
                          edgernn.Dense(r.normal(0, .1, (4, 300)), r.normal(0, .1, 4))])


@pytest.mark.parametrize("data", [False, True])
def test_a_blanket_mode_keeps_small_products_float_and_says_why(data):
    """int8 costs a per-step input quantisation that small products do not repay: under
    ``min_macs`` (default 16384) a node the mode does not name stays float32, by its
    shape alone (the same model on every CPU); the report and ``describe`` say so."""
    from converters.quantize.modes import MIN_MACS

    model = _big_and_small()
    cal = _data(model, 3) if data else None
    q = converters.quantize(model, cal, mode="int8-weights", progress=False)
    assert MIN_MACS == 16384 and q.layers[0].quant is not None and q.layers[1].quant is None
    entries = q.quantization["layers"]
    assert [e["precision"] for e in entries] == ["int8-weights", "float32"]
    assert entries[1]["reason"].startswith("small: 1200 MACs per step < min_macs=16384")
    assert q.quantization["mode"] == "mixed"
    rows = q.describe().splitlines()
    assert "[int8-weights]" in rows[2] and "[float: small]" in rows[3]
    # the small node is the float op: fed the same input, it gives the float model's bits
    xs = _data(model, 1)[0]
    hidden = edgernn.Model([q.layers[0]]).stream().run(xs)     # the int8 node's output
    np.testing.assert_array_equal(q.stream().run(xs),
                                  edgernn.Model([model.layers[1]]).stream().run(hidden))
    # min_macs=0 quantises every node; a node named in the mode is quantised whatever its size
    for kw in ({"mode": "int8-weights", "min_macs": 0},
               {"mode": {"default": "int8-weights", "1": "int8-weights"}},
               {"mode": ["int8-weights", "int8-weights"]}):
        every = converters.quantize(model, cal, progress=False, **kw)
        assert all(op.quant is not None for op in every.layers), kw


@pytest.mark.parametrize("bad", [-1, 1.5, True, "16"])
def test_min_macs_must_be_a_whole_number(bad):
    model = _big_and_small()
    with pytest.raises(edgernn.ModelFormatError, match=r"min_macs: expected a whole number"):
        converters.quantize(model, mode="int8-weights", progress=False, min_macs=bad)
