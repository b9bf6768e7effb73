"""converters.tflite for graphs: two inputs, two outputs, CONCATENATION and
ADD/SUB/MUL of data and of constants (a fused RELU too), in a sequence model and
a streaming one (stateful GRU) -- against LiteRT: the committed outputs of
``tests/data/make_tflite_graph_fixtures.py`` and the Interpreter run live."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as S
from ai_edge_litert.interpreter import Interpreter

import edgernn
from converters import from_tflite
from edgernn.errors import UnsupportedOpError

DATA = Path(__file__).resolve().parent / "data" / "tflite" / "graph"
TOL = 1e-5
CASES = ["graph_sequence", "graph_stream"]


def _litert(path, xs, stream):
    """LiteRT on ``xs`` (inputs concatenated in subgraph order): outputs concatenated."""
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    ins, outs = it.get_input_details(), it.get_output_details()
    parts = np.split(xs, np.cumsum([d["shape"][2] for d in ins])[:-1], axis=-1)
    rows = []
    for t in range(len(xs)) if stream else [slice(None)]:
        for d, x in zip(ins, parts, strict=True):
            it.set_tensor(d["index"], np.ascontiguousarray(x[t].reshape(1, -1, x.shape[-1])))
        it.invoke()
        rows.append(np.concatenate([it.get_tensor(d["index"])[0] for d in outs], axis=-1))
    return np.concatenate(rows)


@pytest.mark.parametrize("case", CASES)
def test_graph_model_matches_committed_and_live_litert(case):
    path = DATA / f"{case}.tflite"
    ref = np.load(DATA / f"{case}.npz")
    stream = str(ref["mode"]) == "stream"
    model = from_tflite(path)
    assert model.inputs == (("b", 2), ("a", 3))  # LiteRT's order, signature names
    assert [n for n, _ in model.outputs][1] == "o1"
    kinds = [type(op).__name__ for op in model.layers]
    assert {"Concat", "Add", "Sub", "Mul", "GRU"} <= set(kinds)
    assert model.provenance["streaming"] is stream
    assert np.abs(model.stream().run(ref["x"]) - ref["y"]).max() <= TOL
    xs = np.random.default_rng(5).standard_normal((40, 5)).astype(np.float32)
    assert np.abs(model.stream().run(xs) - _litert(path, xs, stream)).max() <= TOL


@pytest.mark.parametrize("case", CASES)
def test_graph_model_step_run_batch_and_save_load_agree_bit_for_bit(case, tmp_path):
    ref = np.load(DATA / f"{case}.npz")
    model = from_tflite(DATA / f"{case}.tflite")
    model.save(tmp_path / "m.ernn")
    loaded = edgernn.load(tmp_path / "m.ernn")
    ys = model.stream().run(ref["x"])
    s = loaded.stream()
    np.testing.assert_array_equal(np.stack([s.step(x) for x in ref["x"]]), ys)
    xb = np.stack([ref["x"], ref["x"][::-1], ref["x"] * 0.5])
    batch = loaded.streams(3)
    got = np.stack([batch.step(np.ascontiguousarray(xb[:, t])) for t in range(len(ref["x"]))],
                   axis=1)
    for i in range(3):
        np.testing.assert_array_equal(got[i], model.stream().run(xb[i]))


def test_concatenation_along_time_is_refused_naming_the_operator(tmp_path):
    model = S.ModelT.InitFromPackedBuf((DATA / "graph_sequence.tflite").read_bytes(), 0)
    sg = model.subgraphs[0]
    code = [k for k, oc in enumerate(model.operatorCodes)
            if max(oc.builtinCode, oc.deprecatedBuiltinCode) == S.BuiltinOperator.CONCATENATION]
    op = next(o for o in sg.operators if o.opcodeIndex in code)
    op.builtinOptions.axis = 1
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    (tmp_path / "m.tflite").write_bytes(bytes(b.Output()))
    with pytest.raises(UnsupportedOpError, match=r"CONCATENATION.*axis 1.*feature"):
        from_tflite(tmp_path / "m.tflite")
