"""converters.onnx: ONNX backend node tests, differential tests against ONNX
Runtime on random graphs, streaming exports and rejected constructs."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import edgernn
from converters.onnx import from_onnx, run_like_onnx
from tests.helpers import require

from .naive_onnx import W4, ort_run, recurrent_model, with_head

#: random constant initial_h/initial_c differ per batch row: a warning says the
#: model cannot hold them (tested in test_batch_varying_constant_state_warns)
pytestmark = pytest.mark.filterwarnings("ignore:constant initial states.*differ between")

SHARED = Path(__file__).resolve().parents[2] / "shared"
CONFORMANCE = SHARED / "conformance" / "onnx-node"


def _conformance_cases():
    if not CONFORMANCE.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"conformance data missing under CI: {CONFORMANCE}")
        return []
    return sorted(p.name for p in CONFORMANCE.iterdir() if (p / "model.onnx").exists())


def test_conformance_data_present_or_skipped_locally():
    cases = _conformance_cases()
    require(bool(cases), f"the ONNX conformance data at {CONFORMANCE} (shared/)")
    assert len(cases) == 18


def _load_case(name):
    d = CONFORMANCE / name
    m = onnx.load(d / "model.onnx")
    g = m.graph

    def arr(kind, i):
        return numpy_helper.to_array(onnx.load_tensor(d / "test_data_set_0" / f"{kind}_{i}.pb"))

    ins = {vi.name: arr("input", i) for i, vi in enumerate(g.input)}
    outs = {vi.name: arr("output", i) for i, vi in enumerate(g.output)}
    return m, ins, outs


@pytest.mark.filterwarnings("ignore:.*fixed time length of 1")
@pytest.mark.parametrize("case", _conformance_cases())
def test_onnx_backend_node_case_matches_expected_outputs(case):
    m, ins, outs = _load_case(case)
    node = m.graph.node[0]
    # W, R, B, P are graph inputs in the backend tests: bind them as constants
    consts = {node.input[i]: ins[node.input[i]] for i in (1, 2, 3, 7)
              if i < len(node.input) and node.input[i]}
    model = from_onnx(m, constants=consts)
    got = run_like_onnx(model, ins, math="exact")
    fast = run_like_onnx(model, ins)
    assert set(got) == set(outs)
    for name, want in outs.items():
        assert got[name].shape == want.shape, name
        np.testing.assert_allclose(got[name], want, rtol=1e-3, atol=1e-7, err_msg=name)
        assert np.abs(got[name] - want).max() <= 1e-5, name
        assert np.abs(fast[name] - want).max() <= 1e-5, name


# --- differential tests against ONNX Runtime ------------------------------------

CASES = [
    ("LSTM", {}, {}),
    ("LSTM", {"clip": 0.7}, {"scale": 1.5}),
    ("LSTM", {"activations": ["HardSigmoid", "ScaledTanh", "Affine"],
              "activation_alpha": [0.3, 0.8, 1.3], "activation_beta": [0.4, 1.2, -0.1]}, {}),
    ("LSTM", {"activations": ["Sigmoid", "Softsign", "Elu"],
              "activation_alpha": [0.7]}, {}),
    ("LSTM", {"input_forget": 1}, {}),
    ("LSTM", {}, {"peephole": True, "init": "const"}),
    ("LSTM", {}, {"direction": "reverse", "peephole": True}),
    ("LSTM", {"clip": 1.0}, {"direction": "bidirectional", "peephole": True, "init": "input"}),
    ("LSTM", {}, {"seq_lens": True, "direction": "bidirectional"}),
    ("GRU", {}, {}),
    ("GRU", {"linear_before_reset": 1}, {"init": "const"}),
    ("GRU", {"clip": 0.5, "linear_before_reset": 1}, {"scale": 1.5}),
    ("GRU", {"activations": ["HardSigmoid", "LeakyRelu", "Sigmoid", "Softplus"],
             "activation_alpha": [0.25, 0.1], "activation_beta": [0.45]},
     {"direction": "bidirectional"}),
    ("GRU", {"linear_before_reset": 1}, {"direction": "reverse", "seq_lens": True}),
    ("GRU", {}, {"init": "input", "seq_lens": True}),
    ("RNN", {}, {}),
    ("RNN", {"activations": ["Relu"], "clip": 0.8}, {"scale": 1.0}),
    ("RNN", {"activations": ["LeakyRelu", "ThresholdedRelu"], "activation_alpha": [0.2, 0.1]},
     {"direction": "bidirectional", "init": "const"}),
    ("RNN", {"activations": ["Affine"], "activation_alpha": [0.5],
             "activation_beta": [0.1]}, {"direction": "reverse"}),
    ("RNN", {"activations": ["Softsign"]}, {"seq_lens": True, "init": "input"}),
    ("RNN", {"activations": ["LeakyRelu"]}, {"scale": 0.3}),
    ("GRU", {"activations": ["HardSigmoid", "Elu"]}, {"scale": 1.0}),
]


def _feeds(model, rng, t, n):
    feeds = {}
    for vi in model.graph.input:
        dims = [d.dim_value or {"T": t, "N": n}[d.dim_param]
                for d in vi.type.tensor_type.shape.dim]
        if vi.name == "seq_lens":
            feeds[vi.name] = rng.integers(1, t + 1, size=n).astype(np.int32)
            feeds[vi.name][0] = t
        else:
            feeds[vi.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


def _assert_matches_ort(ref, ours, feeds, layout):
    """ONNX Runtime on the layout-0 graph ``ref`` equals edgernn on ``ours`` (``layout``)."""
    want = ort_run(ref, feeds)
    if layout:
        feeds = {k: (v.swapaxes(0, 1) if v.ndim == 3 else v) for k, v in feeds.items()}
    got = run_like_onnx(from_onnx(ours), feeds)
    for name, w in want.items():
        g = got[name]
        if layout:
            g = g.transpose(1, 2, 0, 3) if name == "Y" else g.swapaxes(0, 1)
        assert g.shape == w.shape, name
        assert np.abs(g - w).max() <= 1e-5, (name, np.abs(g - w).max())


@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("op,attrs,kw", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_recurrent_node_matches_onnxruntime(op, attrs, kw, layout):
    seed = zlib.crc32(f"{op}{attrs}{kw}".encode())
    ref = recurrent_model(op, np.random.default_rng(seed), attrs=attrs, **kw)
    ours = recurrent_model(op, np.random.default_rng(seed), attrs=attrs, layout=layout, **kw)
    rng = np.random.default_rng(seed + 1)
    t, n = 37, 3
    _assert_matches_ort(ref, ours, _feeds(ref, rng, t, n), layout)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_recurrent_node_matches_onnxruntime_over_1000_steps(op):
    rng = np.random.default_rng(7)
    model = recurrent_model(op, rng, hidden=8, inputs=5, scale=0.3, peephole=op == "LSTM",
                            attrs={"linear_before_reset": 1} if op == "GRU" else {})
    feeds = _feeds(model, rng, 1000, 1)
    want = ort_run(model, feeds)
    converted = from_onnx(model)
    got = run_like_onnx(converted, feeds)
    for name, w in want.items():
        assert np.abs(got[name] - w).max() <= 1e-5, name
    ys = converted.stream().run(feeds["X"][:, 0])
    np.testing.assert_array_equal(ys, got["Y"][:, 0, 0])


# --- constructs that must be refused ------------------------------------------------

REFUSED = {
    "unknown_op": ([helper.make_node("Cos", ["Ys"], ["out"], name="head")], [], "head",
                   "'Cos'"),
    "l2_norm_all_axes": ([helper.make_node("ReduceL2", ["Ys"], ["n"], name="l2", keepdims=1),
                          helper.make_node("Div", ["Ys", "n"], ["out"], name="div")], [], "l2",
                         "feature"),
    "l1_norm": ([helper.make_node("LpNormalization", ["Ys"], ["out"], name="l1", p=1)], [],
                "l1", "p=1"),
    "pad_time": ([helper.make_node("Pad", ["Ys", "tpads"], ["out"], name="tpad")],
                 [("tpads", np.array([1, 0, 0, 0, 0, 0], np.int64))], "tpad",
                 "only before a causal convolution over time"),
    "middle_step": ([helper.make_node("Gather", ["Ys", "i3"], ["out"], name="pick", axis=0)],
                    [("i3", np.array(3))], "pick", "last time step"),
    "softmax_time": ([helper.make_node("Softmax", ["Ys"], ["out"], name="sm", axis=0)], [],
                     "sm", "feature"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_construct_raises_naming_the_node(case):
    nodes, inits, node_name, words = REFUSED[case]
    m = with_head(nodes=nodes, inits=inits)
    with pytest.raises(edgernn.UnsupportedOpError) as err:
        from_onnx(m)
    msg = str(err.value)
    assert repr(node_name) in msg and words in msg, msg


@pytest.mark.parametrize("attrs,words", [
    ({"layout": 2}, "layout=2"),
    ({"activations": ["Sigmoid", "Gelu", "Tanh"]}, "'Gelu'"),
    ({"foo": 1}, "'foo'"),
    ({"clip": 1.0, "input_forget": 2}, "input_forget=2"),
    ({"activations": ["Sigmoid", "Affine", "Tanh"]}, "explicit"),
])
def test_unsupported_recurrent_attribute_raises_naming_the_node(attrs, words):
    m = recurrent_model("LSTM", np.random.default_rng(0), attrs=attrs, outputs=("Y",))
    m.graph.node[0].name = "lstm_7"
    with pytest.raises(edgernn.UnsupportedOpError) as err:
        from_onnx(m)
    assert "'lstm_7'" in str(err.value) and words in str(err.value), str(err.value)


def test_unknown_direction_raises_naming_the_node():
    m = recurrent_model("RNN", np.random.default_rng(0), direction="sideways", outputs=("Y",))
    m.graph.node[0].name = "rnn_2"
    with pytest.raises(edgernn.UnsupportedOpError, match="rnn_2.*sideways"):
        from_onnx(m)


def test_weights_fed_as_graph_inputs_are_refused_naming_the_node():
    m = recurrent_model("GRU", np.random.default_rng(0), outputs=("Y",))
    w = m.graph.initializer[0]
    m.graph.input.append(helper.make_tensor_value_info(w.name, TensorProto.FLOAT, w.dims))
    del m.graph.initializer[0]
    m.graph.node[0].name = "gru_1"
    with pytest.raises(edgernn.UnsupportedOpError, match="gru_1.*initializers"):
        from_onnx(m)


def test_reverse_direction_runs_whole_sequences_and_refuses_step():
    m = recurrent_model("GRU", np.random.default_rng(0), direction="reverse", outputs=("Y",))
    model = from_onnx(m)
    assert [type(la).__name__ for la in model.layers] == ["Reverse"]
    assert model.stream().get_state().names == ("0.reverse.h",)  # no dummy forward half
    assert not model.streamable
    with pytest.raises(edgernn.StreamError):
        model.stream().step(np.zeros(3, np.float32))
    x = np.random.default_rng(1).standard_normal((20, 1, 3)).astype(np.float32)
    assert np.abs(model.stream().run(x[:, 0]) - ort_run(m, {"X": x})["Y"][:, 0, 0]).max() <= 1e-5


# --- edgernn convert ----------------------------------------------------------------

def test_cli_convert_onnx_file_then_load_gives_onnxruntime_outputs(tmp_path, capsys):
    from edgernn.cli import main

    rng = np.random.default_rng(11)
    m = recurrent_model("GRU", rng, attrs={"linear_before_reset": 1}, outputs=("Y",))
    src = tmp_path / "gru.onnx"
    onnx.save(m, src)
    assert main(["convert", str(src), "-o", str(tmp_path / "gru.ernn")]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = edgernn.load(tmp_path / "gru.ernn")
    import hashlib

    assert loaded.provenance["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    x = rng.standard_normal((40, 1, 3)).astype(np.float32)
    s = loaded.stream()
    ys = np.stack([s.step(xt) for xt in x[:, 0]])
    assert np.abs(ys - ort_run(m, {"X": x})["Y"][:, 0, 0]).max() <= 1e-5


def test_cli_convert_reports_user_errors_in_one_line(tmp_path, capsys):
    from edgernn.cli import main

    bad = tmp_path / "model.xyz"
    bad.write_bytes(b"junk")
    assert main(["convert", str(bad)]) == 2
    assert "--from" in capsys.readouterr().err
    m = with_head(nodes=REFUSED["unknown_op"][0])
    onnx.save(m, tmp_path / "head.onnx")
    assert main(["convert", str(tmp_path / "head.onnx")]) == 2
    err = capsys.readouterr().err
    assert "'head'" in err and len(err.strip().splitlines()) == 1


# --- per-step heads and zero-state plumbing -----------------------------------------

def _head_model(act_node, gemm=False):
    """LSTM -> Squeeze -> Transpose [B,T,H] -> MatMul+Add -> act -> Dropout -> Identity
    -> (MatMul+Add | last step + Gemm) -> Softmax."""
    rng = np.random.default_rng(21)
    m = recurrent_model("LSTM", rng, outputs=("Y",))
    g = m.graph
    w = {n: (rng.standard_normal(s) * 0.6).astype(np.float32)
         for n, s in [("w1", (4, 6)), ("b1", (6,)), ("w2", (6, 5)), ("b2", (5,)),
                      ("g2", (5, 6))]}
    g.initializer.extend(numpy_helper.from_array(a, n) for n, a in w.items())
    g.initializer.extend([numpy_helper.from_array(np.array([1], np.int64), "ax1"),
                          numpy_helper.from_array(np.array(-1, np.int64), "last")])
    nodes = [helper.make_node("Squeeze", ["Y", "ax1"], ["s"]),
             helper.make_node("Transpose", ["s"], ["bt"], perm=[1, 0, 2]),
             helper.make_node("MatMul", ["bt", "w1"], ["m1"]),
             helper.make_node("Add", ["b1", "m1"], ["a1"]),
             act_node("a1", "h1"),
             helper.make_node("Dropout", ["h1"], ["d1"]),
             helper.make_node("Identity", ["d1"], ["i1"])]
    if gemm:
        nodes += [helper.make_node("Gather", ["i1", "last"], ["l1"], axis=1),
                  helper.make_node("Gemm", ["l1", "g2", "b2"], ["z"], alpha=0.5, beta=2.0,
                                   transB=1)]
    else:
        nodes += [helper.make_node("MatMul", ["i1", "w2"], ["m2"]),
                  helper.make_node("Add", ["m2", "b2"], ["z"])]
    nodes.append(helper.make_node("Softmax", ["z"], ["out"], axis=-1))
    g.node.extend(nodes)
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("out", TensorProto.FLOAT, None))
    return m


ACTS = {
    "Relu": {}, "Tanh": {}, "Sigmoid": {}, "LeakyRelu": {"alpha": 0.3}, "Elu": {"alpha": 0.6},
    "HardSigmoid": {"alpha": 0.3, "beta": 0.4}, "Softsign": {}, "Softplus": {},
    "ThresholdedRelu": {"alpha": 0.2},
}


@pytest.mark.parametrize("gemm", [False, True])
@pytest.mark.parametrize("act", sorted(ACTS))
def test_dense_heads_and_activation_ops_match_onnxruntime(act, gemm):
    m = _head_model(lambda i, o: helper.make_node(act, [i], [o], **ACTS[act]), gemm)
    model = from_onnx(m)
    kinds = [type(la).__name__ for la in model.layers]
    assert kinds == ["LSTM", "Dense", "Dense"]
    x = np.random.default_rng(22).standard_normal((30, 2, 3)).astype(np.float32)
    want = ort_run(m, {"X": x})["out"]
    got = run_like_onnx(model, {"X": x})["out"]
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5
    assert model.return_sequences is (not gemm)  # gemm: the head takes the last step
    ys = model.stream().run(x[:, 1])
    assert ys.shape == ((1, 5) if gemm else (30, 5))
    assert np.abs(ys[-1] - (want[1] if gemm else want[1, -1])).max() <= 1e-5


def _zero_state_graph(fill):
    """GRU whose initial_h is Expand(const, [1, Shape(X)[1], H]) built from X's shape."""
    m = recurrent_model("GRU", np.random.default_rng(23), outputs=("Y_h",))
    g = m.graph
    g.initializer.extend([numpy_helper.from_array(np.full((1, 1, 4), fill, np.float32), "z0"),
                          numpy_helper.from_array(np.array([1], np.int64), "one"),
                          numpy_helper.from_array(np.array([4], np.int64), "four"),
                          numpy_helper.from_array(np.array([1], np.int64), "i1")])
    g.node.insert(0, helper.make_node("Shape", ["X"], ["shp"]))
    g.node.insert(1, helper.make_node("Gather", ["shp", "i1"], ["nb"], axis=0))
    g.node.insert(2, helper.make_node("Concat", ["one", "nb", "four"], ["st"], axis=0))
    g.node.insert(3, helper.make_node("Expand", ["z0", "st"], ["h0"], name="expand_h0"))
    g.node[4].input.extend(["", "h0"])
    return m


def test_shape_gather_expand_chain_builds_a_zero_initial_state():
    m = _zero_state_graph(0.0)
    model = from_onnx(m)
    x = np.random.default_rng(24).standard_normal((12, 3, 3)).astype(np.float32)
    want = ort_run(m, {"X": x})["Y_h"]
    assert np.abs(run_like_onnx(model, {"X": x})["Y_h"] - want).max() <= 1e-5


def test_expand_of_a_non_zero_state_is_refused_naming_the_node():
    with pytest.raises(edgernn.UnsupportedOpError, match="expand_h0"):
        from_onnx(_zero_state_graph(0.5))


def test_fixed_single_step_graph_without_state_inputs_warns():
    m = recurrent_model("LSTM", np.random.default_rng(0), outputs=("Y",))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    with pytest.warns(UserWarning, match="fresh state"):
        from_onnx(m)


@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(["LSTM", "GRU", "RNN"]),
       direction=st.sampled_from(["forward", "reverse", "bidirectional"]),
       layout=st.integers(0, 1), clip=st.sampled_from([None, 0.4, 3.0]),
       flag=st.booleans(), init=st.sampled_from(["none", "const", "input"]),
       seq_lens=st.booleans(), hidden=st.integers(1, 5), inputs=st.integers(1, 4),
       t=st.integers(1, 12), n=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_random_recurrent_nodes_match_onnxruntime(op, direction, layout, clip, flag, init,
                                                  seq_lens, hidden, inputs, t, n, seed):
    attrs = {} if clip is None else {"clip": clip}
    if op == "GRU":
        attrs["linear_before_reset"] = int(flag)
    elif op == "LSTM":
        attrs["input_forget"] = int(flag)
    kw = dict(hidden=hidden, inputs=inputs, direction=direction, attrs=attrs, init=init,
              seq_lens=seq_lens, batch=n, peephole=op == "LSTM" and flag)
    ref = recurrent_model(op, np.random.default_rng(seed), **kw)
    ours = recurrent_model(op, np.random.default_rng(seed), layout=layout, **kw)
    _assert_matches_ort(ref, ours, _feeds(ref, np.random.default_rng(seed + 1), t, n), layout)


def test_dense_output_before_its_bias_can_be_an_output_too():
    m = with_head(nodes=[helper.make_node("MatMul", ["Ys", "w"], ["m"], name="mm"),
                          helper.make_node("Add", ["m", "b"], ["out"], name="bias")],
                   inits=[("w", W4), ("b", np.ones(4, np.float32))])
    m.graph.output.append(helper.make_tensor_value_info("m", TensorProto.FLOAT, None))
    model = from_onnx(m)
    assert [type(la).__name__ for la in model.layers] == ["LSTM", "Dense", "Add"]
    x = np.random.default_rng(4).standard_normal((20, 2, 3)).astype(np.float32)
    want, got = ort_run(m, {"X": x}), run_like_onnx(model, {"X": x})
    for name in ("m", "out"):
        assert np.abs(got[name] - want[name]).max() <= 1e-5


def test_a_file_that_is_not_onnx_is_a_model_format_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a protobuf\xff" * 10)
    with pytest.raises(edgernn.ModelFormatError, match="bad.onnx"):
        from_onnx(bad)


def test_scaling_a_dense_output_by_constants_folds_and_matches_onnxruntime():
    rng = np.random.default_rng(31)
    consts = [("w", W4 * 0.3), ("b", rng.standard_normal(4).astype(np.float32)),
              ("k", np.array(0.5, np.float32)),
              ("v", rng.uniform(1, 2, 4).astype(np.float32)),
              ("u", rng.standard_normal((1, 4)).astype(np.float32))]
    m = with_head(nodes=[helper.make_node("MatMul", ["Ys", "w"], ["m"]),
                          helper.make_node("Add", ["m", "b"], ["a"]),
                          helper.make_node("Mul", ["k", "a"], ["s1"]),
                          helper.make_node("Div", ["s1", "v"], ["s2"]),
                          helper.make_node("Sub", ["s2", "u"], ["s3"]),
                          helper.make_node("Tanh", ["s3"], ["out"])], inits=consts)
    model = from_onnx(m)
    assert [type(la).__name__ for la in model.layers] == ["LSTM", "Dense"]
    x = rng.standard_normal((25, 2, 3)).astype(np.float32)
    want = ort_run(m, {"X": x})["out"]
    assert np.abs(run_like_onnx(model, {"X": x})["out"] - want).max() <= 1e-5
