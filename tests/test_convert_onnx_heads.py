"""converters.onnx: what the runtime's newer features carry over from ONNX graphs,
against ONNX Runtime: log-softmax and L2-normalisation heads, last-step graphs
(``return_sequences=False``) and constant initial states (``initial_state``),
each also after save -> load."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgernn
from converters.onnx import from_onnx, initial_state, run_like_onnx

from .naive_onnx import W4, ort_run, recurrent_model, with_head

# --- log-softmax and L2-normalisation heads -----------------------------------------

def _ints(*v):
    return np.array(v, np.int64)


EPS = np.float32(1e-3)
NORM_HEADS = {
    "log_softmax": [helper.make_node("LogSoftmax", ["Ys"], ["out"], axis=-1)],
    "reduce_l2_div": [helper.make_node("ReduceL2", ["Ys", "axm1"], ["n"], keepdims=1),
                      helper.make_node("Div", ["Ys", "n"], ["out"])],
    "torch_normalize": [helper.make_node("ReduceL2", ["Ys", "axm1"], ["n"], keepdims=1),
                        helper.make_node("Clip", ["n", "eps"], ["nc"]),
                        helper.make_node("Shape", ["Ys"], ["shp"]),
                        helper.make_node("Expand", ["nc", "shp"], ["ne"]),
                        helper.make_node("Div", ["Ys", "ne"], ["out"])],
    "sumsq_max_sqrt": [helper.make_node("ReduceSumSquare", ["Ys", "ax2"], ["q"], keepdims=1),
                       helper.make_node("Max", ["eps", "q"], ["qm"]),
                       helper.make_node("Sqrt", ["qm"], ["n"]),
                       helper.make_node("Div", ["Ys", "n"], ["out"])],
    "pow_sum_sqrt": [helper.make_node("Pow", ["Ys", "two"], ["p"]),
                     helper.make_node("ReduceSum", ["p", "axm1"], ["q"], keepdims=1),
                     helper.make_node("Sqrt", ["q"], ["n"]),
                     helper.make_node("Div", ["Ys", "n"], ["out"])],
    "lp_normalization": [helper.make_node("LpNormalization", ["Ys"], ["out"], axis=-1, p=2)],
    "dense_then_l2": [helper.make_node("MatMul", ["Ys", "w"], ["m"]),
                      helper.make_node("ReduceL2", ["m", "axm1"], ["n"], keepdims=1),
                      helper.make_node("Max", ["n", "eps"], ["nm"]),
                      helper.make_node("Div", ["m", "nm"], ["out"])],
}
NORM_INITS = [("axm1", _ints(-1)), ("ax2", _ints(2)), ("eps", EPS), ("w", W4 * 1e-4),
              ("two", np.float32(2))]


@pytest.mark.parametrize("head", sorted(NORM_HEADS))
def test_log_softmax_and_l2_normalisation_heads_match_onnxruntime(head):
    m = with_head(nodes=NORM_HEADS[head], inits=NORM_INITS)
    m.opset_import[0].version = 18  # ReduceL2/ReduceSumSquare take axes as an input
    model = from_onnx(m)
    act = model.layers[-1].activation if head == "dense_then_l2" else model.layers[-1]
    assert act.name == ("log_softmax" if head == "log_softmax" else "l2_normalize")
    if head in ("torch_normalize", "dense_then_l2"):
        assert act.alpha == pytest.approx(float(EPS) ** 2)
    elif head == "sumsq_max_sqrt":
        assert act.alpha == pytest.approx(float(EPS))
    x = np.random.default_rng(25).standard_normal((20, 2, 3)).astype(np.float32)
    want = ort_run(m, {"X": x})["out"]
    got = run_like_onnx(model, {"X": x})["out"]
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5
    if head == "dense_then_l2":  # tiny outputs: the eps floor is what ORT uses too
        assert np.linalg.norm(want, axis=-1).min() < 0.9


def test_last_step_log_softmax_head_returns_one_row_after_save_and_load(tmp_path):
    m = with_head(nodes=[helper.make_node("Gather", ["Ys", "last"], ["l"], axis=0),
                          helper.make_node("LogSoftmax", ["l"], ["out"], axis=-1)],
                   inits=[("last", np.array(-1, np.int64))])
    model = from_onnx(m)
    assert model.return_sequences is False
    model.save(tmp_path / "m.ernn")
    loaded = edgernn.load(tmp_path / "m.ernn")
    assert loaded.return_sequences is False
    x = np.random.default_rng(26).standard_normal((17, 2, 3)).astype(np.float32)
    want = ort_run(m, {"X": x})["out"]
    for b in range(2):
        ys = loaded.stream().run(x[:, b])
        assert ys.shape == (1, 4)
        assert np.abs(ys[0] - want[b]).max() <= 1e-5
    s = loaded.stream()
    assert np.abs(s.step(x[0, 0]) - loaded.stream().run(x[:1, 0])[0]).max() == 0


def test_graph_with_every_step_and_last_step_outputs_keeps_every_step():
    m = with_head(nodes=[helper.make_node("Gather", ["Ys", "last"], ["out"], axis=0)],
                   inits=[("last", np.array(-1, np.int64))])
    m.graph.output.append(helper.make_tensor_value_info("Ys", TensorProto.FLOAT, None))
    model = from_onnx(m)
    assert model.return_sequences is True
    x = np.random.default_rng(27).standard_normal((9, 2, 3)).astype(np.float32)
    want, got = ort_run(m, {"X": x}), run_like_onnx(model, {"X": x})
    for name in ("out", "Ys"):
        assert np.abs(got[name] - want[name]).max() <= 1e-5, name


# --- constant initial states ---------------------------------------------------------

def test_convert_save_load_stream_gives_onnxruntime_outputs(tmp_path):
    rng = np.random.default_rng(8)
    m = recurrent_model("LSTM", rng, peephole=True, init="const", batch=1,
                        attrs={"clip": 2.0}, outputs=("Y", "Y_h"))
    model = from_onnx(m)
    h0 = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "h0"))
    c0 = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "c0"))
    assert model.initial_state.names == ("0.h", "0.c")
    model.save(tmp_path / "lstm.ernn")
    loaded = edgernn.load(tmp_path / "lstm.ernn")
    assert loaded.provenance["source"] == "onnx"
    assert len(loaded.provenance["source_sha256"]) == 64
    x = rng.standard_normal((50, 1, 3)).astype(np.float32)
    want = ort_run(m, {"X": x})
    for mdl in (model, loaded):
        s = mdl.stream()  # a fresh stream starts from the graph's initial_h/initial_c
        np.testing.assert_array_equal(s.get_state().arrays[0], h0[0, 0])
        np.testing.assert_array_equal(s.get_state().arrays[1], c0[0, 0])
        ys = np.stack([s.step(xt) for xt in x[:, 0]])
        assert np.abs(ys - want["Y"][:, 0, 0]).max() <= 1e-5
        assert np.abs(s.get_state().arrays[0] - want["Y_h"][0, 0]).max() <= 1e-5
        s.reset()
        np.testing.assert_array_equal(s.get_state().arrays[1], c0[0, 0])
        assert np.abs(s.run(x[:, 0]) - want["Y"][:, 0, 0]).max() <= 1e-5


def test_constant_initial_state_of_a_reverse_layer_is_the_model_initial_state(tmp_path):
    rng = np.random.default_rng(9)
    m = recurrent_model("GRU", rng, direction="reverse", init="const", batch=1,
                        outputs=("Y",))
    model = from_onnx(m)
    assert model.initial_state.names == ("0.reverse.h",)
    model.save(tmp_path / "r.ernn")
    loaded = edgernn.load(tmp_path / "r.ernn")
    x = rng.standard_normal((15, 1, 3)).astype(np.float32)
    want = ort_run(m, {"X": x})["Y"][:, 0, 0]
    assert np.abs(loaded.stream().run(x[:, 0]) - want).max() <= 1e-5
    assert np.abs(model.stream().run(x[:, 0]) - want).max() <= 1e-5


def test_batch_varying_constant_state_warns_and_runs_per_row():
    m = recurrent_model("RNN", np.random.default_rng(10), init="const", batch=2,
                        outputs=("Y",))
    with pytest.warns(UserWarning, match="differ between batch rows"):
        model = from_onnx(m)
    assert model.initial_state is None
    x = np.random.default_rng(11).standard_normal((6, 2, 3)).astype(np.float32)
    want = ort_run(m, {"X": x})["Y"]
    assert np.abs(run_like_onnx(model, {"X": x})["Y"] - want).max() <= 1e-5
    s = model.stream()
    s.set_state(initial_state(model, 1))
    assert np.abs(s.run(x[:, 1]) - want[:, 0, 1]).max() <= 1e-5


def test_cli_convert_notes_initial_state_last_step_and_whole_sequence(tmp_path, capsys):
    import onnx

    from edgernn.cli import main

    m = with_head(op="GRU", direction="reverse", init="const", batch=1,
                  nodes=[helper.make_node("Gather", ["Ys", "last"], ["out"], axis=0)],
                  inits=[("last", np.array(-1, np.int64))])
    onnx.save(m, tmp_path / "r.onnx")
    assert main(["convert", str(tmp_path / "r.onnx"), "-o", str(tmp_path / "r.ernn")]) == 0
    out = capsys.readouterr().out
    assert "whole sequences only" in out and "0.reverse.h" in out and "one row" in out
    loaded = edgernn.load(tmp_path / "r.ernn")
    assert loaded.return_sequences is False and loaded.initial_state is not None
    x = np.random.default_rng(28).standard_normal((11, 1, 3)).astype(np.float32)
    ys = loaded.stream().run(x[:, 0])
    assert ys.shape == (1, 4)
    assert np.abs(ys - ort_run(m, {"X": x})["out"]).max() <= 1e-5
