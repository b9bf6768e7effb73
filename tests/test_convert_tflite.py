"""converters.tflite against LiteRT itself.

References: the committed ``tests/data/tflite/*.npz`` outputs (LiteRT's
``Interpreter`` at fixture time, ``tests/data/make_tflite_fixtures.py``),
``ai_edge_litert.interpreter.Interpreter`` run live here on the committed
``.tflite`` files with fresh inputs, and the PyTorch weights the bench nets
were made from (``bench/models/*_torch.npz``). Float parity: 1e-5 absolute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import edgernn
from converters import from_tflite
from converters.tflite import cells, read_tflite
from edgernn.errors import ModelFormatError, UnsupportedOpError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "tflite"
BENCH = ROOT / "bench" / "models"
TOL = 1e-5
CASES = sorted(p.stem for p in DATA.glob("*.npz"))
STREAM_CASES = [c for c in CASES if str(np.load(DATA / f"{c}.npz")["mode"]) == "stream"]
SEQUENCE_CASES = [c for c in CASES if str(np.load(DATA / f"{c}.npz")["mode"]) == "sequence"]


def _litert_stream(path, xs):
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i_idx = it.get_input_details()[0]["index"]
    o_idx = it.get_output_details()[0]["index"]
    ys = []
    for x in xs:
        it.set_tensor(i_idx, x.reshape(1, 1, -1))
        it.invoke()
        ys.append(it.get_tensor(o_idx).reshape(-1).copy())
    return np.stack(ys)


def _litert_sequence(path, xs):
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], xs[None])
    it.invoke()
    y = it.get_tensor(it.get_output_details()[0]["index"])
    return y.reshape(-1, y.shape[-1])


def test_fixtures_present():
    assert len(CASES) >= 12 and len(STREAM_CASES) >= 9, CASES


def _mode(case):
    return str(np.load(DATA / f"{case}.npz")["mode"])


@pytest.mark.parametrize("case", [c for c in CASES if _mode(c) != "stream_reset"])
def test_from_tflite_matches_committed_litert_outputs(case):
    ref = np.load(DATA / f"{case}.npz")
    model = from_tflite(DATA / f"{case}.tflite")
    ys = model.stream().run(ref["x"])
    assert ys.shape == ref["y"].shape  # one row when LiteRT outputs the last step only
    assert model.return_sequences is (ref["y"].shape[0] == ref["x"].shape[0])
    np.testing.assert_allclose(ys, ref["y"], rtol=0, atol=TOL)
    assert model.provenance["streaming"] == (str(ref["mode"]) == "stream")
    if str(ref["mode"]) == "stream":
        assert model.provenance["state_persists"] is True


def test_from_tflite_state_reset_every_invoke_warns_and_matches_with_reset():
    """Keras 3 non-stateful LSTM at (1, 1, I): LiteRT restarts from zero at each invoke."""
    path = DATA / "k3_lstm_while_reset.tflite"
    ref = np.load(DATA / "k3_lstm_while_reset.npz")
    with pytest.warns(UserWarning, match="zero state at every invoke"):
        model = from_tflite(path)
    assert model.provenance["state_persists"] is False
    s = model.stream()
    ys = []
    for x in ref["x"]:
        s.reset()
        ys.append(s.step(x))
    np.testing.assert_allclose(np.stack(ys), ref["y"], rtol=0, atol=TOL)
    xs = np.random.default_rng(9).standard_normal((200, 3)).astype(np.float32)
    np.testing.assert_allclose(np.stack(ys[:200]), _litert_stream(path, ref["x"][:200]),
                               rtol=0, atol=TOL)
    assert np.abs(model.stream().run(xs) - _litert_stream(path, xs)).max() > 1e-3


@pytest.mark.parametrize("case", STREAM_CASES)
def test_from_tflite_step_equals_run_and_live_litert(case):
    path = DATA / f"{case}.tflite"
    model = from_tflite(path)
    xs = np.random.default_rng(123).standard_normal((1000, model.input_size)).astype(np.float32)
    s = model.stream()
    stepped = np.stack([s.step(x) for x in xs])
    np.testing.assert_array_equal(stepped, model.stream().run(xs))
    np.testing.assert_allclose(stepped, _litert_stream(path, xs), rtol=0, atol=TOL)


@pytest.mark.parametrize("case", SEQUENCE_CASES)
def test_from_tflite_sequence_model_matches_live_litert(case):
    path = DATA / f"{case}.tflite"
    model = from_tflite(path)
    T = np.load(DATA / f"{case}.npz")["x"].shape[0]
    for seed in range(3):
        xs = np.random.default_rng(seed).standard_normal((T, model.input_size))
        xs = xs.astype(np.float32)
        ref = _litert_sequence(path, xs)
        ys = model.stream().run(xs)
        assert ys.shape == ref.shape
        np.testing.assert_allclose(ys, ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("case", ["lstm_fused_stack", "gru_unroll_reset_before", "rnn_while",
                                  "gru_seq"])
def test_from_tflite_save_load_same_outputs(case, tmp_path):
    ref = np.load(DATA / f"{case}.npz")
    model = from_tflite(DATA / f"{case}.tflite")
    model.save(tmp_path / "m.ernn")
    loaded = edgernn.load(tmp_path / "m.ernn")
    assert loaded.return_sequences is model.return_sequences
    s = loaded.stream()
    stepped = np.stack([s.step(x) for x in ref["x"]])
    ys = model.stream().run(ref["x"])
    np.testing.assert_array_equal(stepped if model.return_sequences else stepped[-1:], ys)
    np.testing.assert_array_equal(loaded.stream().run(ref["x"]), ys)
    assert loaded.provenance["sha256"] == model.provenance["sha256"]


# --- the bench nets: weights land where PyTorch had them -----------------------

@pytest.mark.parametrize("name", ["S", "M", "L"])
def test_from_tflite_bench_net_has_the_torch_weights(name):
    model = from_tflite(BENCH / f"{name}_f32.tflite")
    sd = np.load(BENCH / f"{name}_torch.npz")
    rnns = [layer for layer in model.layers if isinstance(layer, (edgernn.LSTM, edgernn.GRU))]
    assert len(rnns) == (2 if name == "L" else 1)
    for k, layer in enumerate(rnns):
        np.testing.assert_array_equal(layer.weight_ih, sd[f"rnn.weight_ih_l{k}"])
        np.testing.assert_array_equal(layer.weight_hh, sd[f"rnn.weight_hh_l{k}"])
        b_ih, b_hh = sd[f"rnn.bias_ih_l{k}"], sd[f"rnn.bias_hh_l{k}"]
        if isinstance(layer, edgernn.GRU):  # n-gate recurrent bias must stay apart
            np.testing.assert_allclose(layer.bias_ih, b_ih, rtol=0, atol=1e-7)
            np.testing.assert_allclose(layer.bias_hh, b_hh, rtol=0, atol=1e-7)
        else:
            total = layer.bias_ih + (0 if layer.bias_hh is None else layer.bias_hh)
            np.testing.assert_allclose(total, b_ih + b_hh, rtol=0, atol=1e-6)
    dense = [layer for layer in model.layers if isinstance(layer, edgernn.Dense)][-1]
    np.testing.assert_array_equal(dense.weight, sd["linear.weight"])


@pytest.mark.parametrize("name", ["S", "M", "L"])
def test_from_tflite_bench_net_streams_like_litert(name):
    path = BENCH / f"{name}_f32.tflite"
    model = from_tflite(path)
    xs = np.random.default_rng(5).standard_normal((100, model.input_size)).astype(np.float32)
    np.testing.assert_allclose(model.stream().run(xs), _litert_stream(path, xs), rtol=0,
                               atol=TOL)


# --- what is not supported says so --------------------------------------------

# int8 (dynamic-range and full-integer) sources: tests/test_quantized_sources.py


def test_from_tflite_conv_over_time_without_causal_padding_names_op_and_reason():
    # a Keras Conv1D(kernel 2, padding="valid") over time: its first output is step 2's
    with pytest.raises(UnsupportedOpError, match=r"CONV_2D \(operator \d+\): a convolution "
                                                 r"over time.*drops the first 1.*causal"):
        from_tflite(DATA / "unsupported_conv.tflite")


@pytest.mark.parametrize(("case", "persists"), [("lstm_fused", True), ("gru_while", True),
                                                ("lstm_unroll", True), ("gru_seq", False),
                                                ("k3_lstm_seq", False)])
def test_from_tflite_records_whether_state_persists(case, persists):
    assert from_tflite(DATA / f"{case}.tflite").provenance["state_persists"] is persists


def test_from_tflite_bidirectional_raises_naming_the_reverse_op():
    with pytest.raises(UnsupportedOpError, match=r"REVERSE_V2 \(index \d+\)"):
        from_tflite(DATA / "unsupported_bidirectional.tflite")


def test_from_tflite_unrolled_fixed_sequence_raises_naming_unpack():
    with pytest.raises(UnsupportedOpError, match=r"UNPACK \(operator \d+\).*stateful=True"):
        from_tflite(DATA / "unsupported_unroll_sequence.tflite")


def test_from_tflite_rejects_non_tflite_bytes(tmp_path):
    p = tmp_path / "x.tflite"
    p.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFormatError, match="TFL3"):
        from_tflite(p)


def test_cell_check_rejects_weights_that_do_not_match_the_ops():
    """The numeric check of a recognised cell fails for a wrong gate order."""
    sg_model = read_tflite((DATA / "gru_unroll.tflite").read_bytes())
    sg = sg_model.subgraphs[0]
    reads = [op.outputs[0] for op in sg.ops if op.name == "READ_VARIABLE"]
    assigned = [op.inputs[1] for op in sg.ops if op.name == "ASSIGN_VARIABLE"]
    ops, x = cells.find_cell(sg, reads, assigned)
    good, _, _ = cells.recognise_cell(sg, ops, x, reads, assigned)
    H = good.hidden_size
    swap = np.r_[H:2 * H, 0:H, 2 * H:3 * H]  # r and z exchanged
    bad = edgernn.GRU(good.weight_ih[swap], good.weight_hh[swap], good.bias_ih[swap],
                      good.bias_hh[swap])
    with pytest.raises(UnsupportedOpError, match="compute something else"):
        cells.verify_cell(sg, ops, x, reads, assigned, bad, 0, "test cell")


# --- LOG_SOFTMAX and L2_NORMALIZATION (models edited with LiteRT's schema) -------

@pytest.mark.parametrize("op", ["LOG_SOFTMAX", "L2_NORMALIZATION"])
def test_from_tflite_log_softmax_and_l2_normalization_heads_match_live_litert(op, tmp_path):
    from .tflite_build import append_op

    path = tmp_path / "m.tflite"
    path.write_bytes(append_op((DATA / "lstm_fused_seq.tflite").read_bytes(), op))
    model = from_tflite(path)
    assert model.layers[-1].name == {"LOG_SOFTMAX": "log_softmax",
                                     "L2_NORMALIZATION": "l2_normalize"}[op]
    T = np.load(DATA / "lstm_fused_seq.npz")["x"].shape[0]
    for seed in range(2):
        xs = np.random.default_rng(seed).standard_normal((T, 3)).astype(np.float32)
        ref = _litert_sequence(path, xs)
        assert ref.shape == (T, 2)
        np.testing.assert_allclose(model.stream().run(xs), ref, rtol=0, atol=TOL)


def test_from_tflite_l2_normalization_floor_matches_live_litert(tmp_path):
    """Tiny dense outputs: LiteRT divides by max(||x||, 1e-6), so must we."""
    from .tflite_build import append_op, dense_model

    rng = np.random.default_rng(7)
    w = (rng.standard_normal((4, 3)) * 1e-6).astype(np.float32)
    path = tmp_path / "l2.tflite"
    path.write_bytes(append_op(dense_model(w, np.zeros(4, np.float32), 30),
                               "L2_NORMALIZATION"))
    model = from_tflite(path)
    assert model.layers[-1].alpha == pytest.approx(1e-12)
    xs = rng.standard_normal((30, 3)).astype(np.float32)
    ref = _litert_sequence(path, xs)
    norms = np.linalg.norm(ref, axis=-1)
    assert norms.min() < 0.9 and norms.max() > 0.999  # both sides of the floor
    np.testing.assert_allclose(model.stream().run(xs), ref, rtol=0, atol=TOL)


def test_from_tflite_l2_normalization_with_fused_relu_is_refused(tmp_path):
    from .tflite_build import append_op

    path = tmp_path / "m.tflite"
    path.write_bytes(append_op((DATA / "lstm_fused_seq.tflite").read_bytes(),
                               "L2_NORMALIZATION", fused=1))
    with pytest.raises(UnsupportedOpError, match=r"L2_NORMALIZATION \(operator \d+\).*fused"):
        from_tflite(path)
