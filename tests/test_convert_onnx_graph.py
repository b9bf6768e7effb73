"""converters.onnx: graphs that are not chains -- Concat, Add, Sub, Mul, Div, Split,
Slice and Gather on data, several data inputs and several outputs -- against ONNX
Runtime, and the constructs that are refused."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgernn
from converters.onnx import from_onnx, run_like_onnx

from .naive_onnx import ort_run

H = 4  # hidden size of the GRU that gives "g"


def _graph(nodes, inits=(), inputs=(("x", 3),), outputs=("out",), gru=True, opset=18,
           rank3=True):
    """Data inputs ``name: float[T, N, F]`` (``rank3=False``: ``[N, F]``); with ``gru``
    a GRU (hidden 4, PyTorch's variant) over the first input gives ``g: [T, N, 4]``."""
    rng = np.random.default_rng(5)
    g_in = [helper.make_tensor_value_info(n, TensorProto.FLOAT,
                                          ["T", "N", f] if rank3 else ["N", f])
            for n, f in inputs]
    init = [numpy_helper.from_array(np.asarray(a), n) for n, a in inits]
    body = []
    if gru:
        f = inputs[0][1]
        init += [numpy_helper.from_array((rng.standard_normal(s) * 0.5).astype(np.float32), n)
                 for n, s in [("W", (1, 3 * H, f)), ("R", (1, 3 * H, H)), ("B", (1, 6 * H))]]
        init.append(numpy_helper.from_array(np.array([1], np.int64), "ax1"))
        squeeze = helper.make_node("Squeeze", ["Y", "ax1"], ["g"], name="squeeze") \
            if opset >= 13 else helper.make_node("Squeeze", ["Y"], ["g"], axes=[1])
        body += [helper.make_node("GRU", [inputs[0][0], "W", "R", "B"], ["Y"], hidden_size=H,
                                  linear_before_reset=1, name="gru"), squeeze]
    g_out = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    graph = helper.make_graph(body + list(nodes), "g", g_in, g_out, init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=9)


def _feeds(m, t=15, n=2, seed=6):
    rng = np.random.default_rng(seed)
    out = {}
    for vi in m.graph.input:
        dims = [d.dim_value or {"T": t, "N": n}[d.dim_param]
                for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = rng.standard_normal(dims).astype(np.float32)
    return out


def _node(op, ins, outs, **kw):
    return helper.make_node(op, ins, outs if isinstance(outs, list) else [outs],
                            name=kw.pop("name", f"{op.lower()}_{outs}"), **kw)


def _f32(*shape, seed=0, lo=None):
    rng = np.random.default_rng(seed)
    a = rng.uniform(lo, 2.0, shape) if lo is not None else rng.standard_normal(shape)
    return a.astype(np.float32)


def _i64(*v):
    return np.array(v, np.int64)


CASES = {
    "concat_input_and_gru_twice": (
        [_node("Concat", ["x", "g", "x"], "c", axis=2),
         _node("MatMul", ["c", "w"], "m"), _node("Tanh", ["m"], "out")],
        [("w", _f32(10, 5))], {}),
    "concat_negative_axis_is_the_output": (
        [_node("Concat", ["g", "x"], "out", axis=-1)], [], {}),
    "residual_add_sub_mul": (
        [_node("MatMul", ["x", "w"], "m"), _node("Add", ["g", "m"], "a"),
         _node("Sub", ["a", "g"], "s"), _node("Mul", ["s", "g"], "out")],
        [("w", _f32(3, H))], {}),
    "constants_broadcast": (
        [_node("Add", ["g", "c4"], "a"), _node("Mul", ["c114", "a"], "b"),
         _node("Sub", ["k", "b"], "s"), _node("Div", ["s", "pos"], "d"),
         _node("Add", ["d", "c1"], "e"), _node("Sub", ["e", "k"], "out")],
        [("c4", _f32(H, seed=1)), ("c114", _f32(1, 1, H, seed=2)), ("k", np.float32(0.3)),
         ("pos", _f32(H, seed=3, lo=0.5)), ("c1", _f32(1, seed=4))], {}),
    "constant_ops_after_a_dense_fold": (
        [_node("MatMul", ["g", "w"], "m"), _node("Add", ["m", "b"], "a"),
         _node("Sub", ["a", "k"], "s"), _node("Div", ["s", "pos"], "d"),
         _node("Sigmoid", ["d"], "out")],
        [("w", _f32(H, 3)), ("b", _f32(3, seed=1)), ("k", np.float32(0.2)),
         ("pos", _f32(3, seed=3, lo=0.5))], {"kinds": ["GRU", "Dense"]}),
    "dense_output_read_twice_does_not_fold": (
        [_node("MatMul", ["g", "w"], "m"), _node("Add", ["m", "b"], "a"),
         _node("Tanh", ["a"], "out")],
        [("w", _f32(H, 3)), ("b", _f32(3, seed=1))],
        {"outputs": ("out", "m"), "kinds": ["GRU", "Dense", "Add", "Activation"]}),
    "split_sizes": (
        [_node("Split", ["g", "sp"], ["a", "b"], axis=2), _node("Relu", ["b"], "rb")],
        [("sp", _i64(1, 3))], {"outputs": ("a", "rb")}),
    "split_sizes_attribute_opset_11": (
        [_node("Split", ["g"], ["a", "b"], axis=-1, split=[3, 1])], [],
        {"outputs": ("a", "b"), "opset": 11}),
    "split_equal_parts_last_smaller": (
        [_node("Concat", ["g", "x"], "c", axis=2),
         _node("Split", ["c"], ["a", "b", "d"], axis=2, num_outputs=3)],
        [], {"outputs": ("a", "b", "d")}),
    "slices_and_gathers_of_features": (
        [_node("Slice", ["g", "s1", "e1", "a2"], "p"),
         _node("Slice", ["g", "s0", "big", "a2", "st2"], "q"),
         _node("Slice", ["g", "m1", "neg_big", "a2", "neg1"], "r"),
         _node("Gather", ["g", "idx"], "u", axis=2),
         _node("Concat", ["p", "q", "r", "u"], "out", axis=2)],
        [("s1", _i64(1)), ("e1", _i64(-1)), ("a2", _i64(2)), ("s0", _i64(0)),
         ("big", _i64(2 ** 62)), ("st2", _i64(2)), ("m1", _i64(-1)),
         ("neg_big", _i64(-(2 ** 62))), ("neg1", _i64(-1)), ("idx", _i64(3, 0, 1, 3))],
        {}),
    "data_divided_by_data": (
        [_node("Abs", ["g"], "a"), _node("Add", ["a", "one"], "a1"),
         _node("Div", ["g", "a1"], "out")], [("one", np.float32(1))], {}),
    "constant_divided_by_data": (
        [_node("Abs", ["g"], "a"), _node("Add", ["a", "one"], "a1"),
         _node("Div", ["k", "a1"], "out")], [("k", np.float32(0.5)), ("one", np.float32(1))],
        {}),
    "one_value_per_step_broadcasts": (
        [_node("MatMul", ["g", "w1"], "s"), _node("Mul", ["g", "s"], "out")],
        [("w1", _f32(H, 1))], {}),
    "two_inputs_two_outputs": (
        [_node("Concat", ["g", "x2"], "c", axis=2), _node("MatMul", ["c", "w1"], "m1"),
         _node("Sigmoid", ["m1"], "y1"), _node("MatMul", ["x2", "w2"], "m2"),
         _node("Sigmoid", ["m2"], "gain"), _node("Mul", ["g", "gain"], "y2")],
        [("w1", _f32(H + 2, 3)), ("w2", _f32(2, H, seed=1))],
        {"inputs": (("x", 3), ("x2", 2)), "outputs": ("y1", "y2")}),
    "two_inputs_per_step_only": (
        [_node("Concat", ["a", "b"], "c", axis=1), _node("Gemm", ["c", "w", "bias"], "m"),
         _node("Relu", ["m"], "y"), _node("Mul", ["b", "two"], "z")],
        [("w", _f32(5, 4)), ("bias", _f32(4, seed=1)), ("two", np.float32(2))],
        {"inputs": (("a", 3), ("b", 2)), "outputs": ("y", "z"), "gru": False,
         "rank3": False}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_op_matches_onnxruntime(case, tmp_path):
    nodes, inits, kw = CASES[case]
    kw = dict(kw)
    kinds = kw.pop("kinds", None)
    m = _graph(nodes, inits, **kw)
    feeds = _feeds(m)
    want = ort_run(m, feeds)
    model = from_onnx(m)
    if kinds is not None:
        assert [type(op).__name__ for op in model.layers] == kinds
    assert [n for n, _ in model.outputs] == list(kw.get("outputs", ("out",)))
    assert [n for n, _ in model.inputs] == [n for n, _ in kw.get("inputs", (("x", 3),))]
    path = tmp_path / "m.ernn"
    model.save(path)
    loaded = edgernn.load(path)
    for mod in (model, loaded):
        got = run_like_onnx(mod, feeds)
        assert set(got) == set(want)
        for name, w in want.items():
            assert got[name].shape == w.shape, name
            assert np.abs(got[name] - w).max() <= 1e-5, (name, np.abs(got[name] - w).max())


def test_two_input_model_steps_on_the_inputs_concatenated_and_splits_its_outputs():
    nodes, inits, kw = CASES["two_inputs_two_outputs"]
    m = _graph(nodes, inits, **kw)
    feeds = _feeds(m, t=40, n=1)
    want = ort_run(m, feeds)
    model = from_onnx(m)
    assert model.inputs == (("x", 3), ("x2", 2)) and model.outputs == (("y1", 3), ("y2", H))
    xs = np.concatenate([feeds["x"][:, 0], feeds["x2"][:, 0]], axis=-1)
    s = model.stream()
    ys = np.stack([s.step(x) for x in xs])
    np.testing.assert_array_equal(ys, model.stream().run(xs))
    parts = model.split(ys)
    assert np.abs(parts["y1"] - want["y1"][:, 0]).max() <= 1e-5
    assert np.abs(parts["y2"] - want["y2"][:, 0]).max() <= 1e-5


def test_recurrent_output_among_several_outputs_is_a_named_view_keeping_state_names():
    m = _graph([_node("Relu", ["g"], "r")], outputs=("g", "r"))
    model = from_onnx(m)
    assert model.outputs == (("g", H), ("r", H))
    assert model.stream().get_state().names == ("0.h",)
    feeds = _feeds(m)
    want = ort_run(m, feeds)
    got = run_like_onnx(model, feeds)
    for name in ("g", "r"):
        assert np.abs(got[name] - want[name]).max() <= 1e-5


def _bidirectional_head(nodes, outputs=("out",)):
    """A bidirectional GRU over x [T, N, 3]: Y [T, 2, N, 4], Y_h [2, N, 4]."""
    m = _graph([], gru=False, outputs=outputs)
    rng = np.random.default_rng(9)
    g = m.graph
    g.initializer.extend(numpy_helper.from_array((rng.standard_normal(s) * 0.5)
                                                 .astype(np.float32), n)
                         for n, s in [("Wb", (2, 12, 3)), ("Rb", (2, 12, 4)), ("Bb", (2, 24))])
    g.node.append(helper.make_node("GRU", ["x", "Wb", "Rb", "Bb"], ["Y", "Y_h"], hidden_size=4,
                                   direction="bidirectional", name="bigru"))
    g.node.extend(nodes)
    return m


REFUSED = {
    "concat_along_time": (
        [_node("Concat", ["g", "g"], "out", axis=0, name="cat_t")], [], "cat_t",
        "only along the feature axis"),
    "constant_varying_in_time": (
        [_node("Add", ["g", "ct"], "out", name="add_t")], [("ct", _f32(3, 1, 1))], "add_t",
        "varies along axis 0"),
    "constant_adding_axes": (
        [_node("Mul", ["g", "c4d"], "out", name="mul_4d")], [("c4d", _f32(1, 1, 1, H))],
        "mul_4d", "more axes"),
    "concat_of_a_constant": (
        [_node("Concat", ["g", "c"], "out", axis=2, name="cat_c")], [("c", _f32(1, 1, 2))],
        "cat_c", "constant"),
    "one_feature_dropping_the_axis": (
        [_node("Gather", ["g", "i"], "out", axis=2, name="pick")], [("i", _i64(1)[0])],
        "pick", "drops the feature axis"),
    "last_step_with_every_step": (
        [_node("Gather", ["g", "i"], "last", axis=0), _node("Add", ["g", "last"], "out",
                                                            name="add_last")],
        [("i", np.array(-1, np.int64))], "add_last", "last step only"),
    "split_of_time": (
        [_node("Split", ["g", "sp"], ["a", "b"], axis=0, name="split_t")],
        [("sp", _i64(5, 10))], "split_t", "along axis 0"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_graph_construct_raises_naming_the_node(case):
    nodes, inits, name, words = REFUSED[case]
    outs = tuple(o for o in nodes[-1].output)
    with pytest.raises(edgernn.UnsupportedOpError) as err:
        from_onnx(_graph(nodes, inits, outputs=outs))
    assert repr(name) in str(err.value) and words in str(err.value), str(err.value)


def test_per_direction_data_of_a_bidirectional_y_is_refused_naming_the_node():
    m = _bidirectional_head([_node("Concat", ["Y", "Y"], "out", axis=3, name="cat_dir")])
    with pytest.raises(edgernn.UnsupportedOpError, match="cat_dir.*bidirectional"):
        from_onnx(m)


def test_adding_data_of_different_sizes_is_a_format_error_naming_the_node():
    m = _graph([_node("Add", ["g", "x"], "out", name="bad_add")])
    with pytest.raises(edgernn.ModelFormatError, match="bad_add.*sizes differ"):
        from_onnx(m)


def test_nodes_no_output_depends_on_are_ignored():
    m = _graph([_node("Erf", ["g"], "dead"), _node("Relu", ["g"], "out")])
    model = from_onnx(m)
    assert [type(op).__name__ for op in model.layers] == ["GRU", "Activation"]


def test_cli_convert_lists_several_inputs_and_outputs(tmp_path, capsys):
    import onnx

    from edgernn.cli import main

    nodes, inits, kw = CASES["two_inputs_two_outputs"]
    m = _graph(nodes, inits, **kw)
    onnx.save(m, tmp_path / "g.onnx")
    assert main(["convert", str(tmp_path / "g.onnx"), "-o", str(tmp_path / "g.ernn")]) == 0
    out = capsys.readouterr().out
    assert "inputs, concatenated in this order: x[3], x2[2]" in out
    assert "outputs, concatenated in this order (model.split): y1[3], y2[4]" in out
    feeds = _feeds(m)
    want = ort_run(m, feeds)
    got = run_like_onnx(edgernn.load(tmp_path / "g.ernn"), feeds)
    assert max(np.abs(got[k] - want[k]).max() for k in want) <= 1e-5
