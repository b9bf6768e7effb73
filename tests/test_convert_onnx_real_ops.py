"""ONNX ops that real streaming models use inside a step -- Conv over a length-1 axis,
ReduceMean kept as a feature axis and broadcast back, Div of data by data, Pad of the
features (and negative pads: crops), a slice of a convolution's length, the unary math
-- converted and checked against ONNX Runtime."""

import numpy as np
import pytest

from tests.helpers import need_module

onnx = need_module("onnx", "onnx (the convert extra)")
ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from converters.onnx import from_onnx  # noqa: E402

F32 = np.float32


def _model(tmp_path, nodes, inits, n_in, n_out, opset=17, shape=None):
    shape = shape or [1, 1, n_in]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def _check(path, xs, shape, atol=2e-6):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.stack([sess.run(None, {"x": x.reshape(shape)})[0].reshape(-1) for x in xs])
    model = from_onnx(str(path))
    np.testing.assert_allclose(model.stream(math="exact").run(xs), want, atol=atol, rtol=1e-6)
    return model


def test_instant_layer_norm_written_out_matches_onnxruntime(tmp_path, rng):
    """DTLN's pattern: ReduceMean, Sub, Mul, ReduceMean, Add eps, Sqrt, Div, Mul, Add."""
    g, b = rng.normal(1, 0.1, 16).astype(F32), rng.normal(0, 0.1, 16).astype(F32)
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[-1], keepdims=1),
             helper.make_node("Sub", ["x", "m"], ["d"]),
             helper.make_node("Mul", ["d", "d"], ["d2"]),
             helper.make_node("ReduceMean", ["d2"], ["v"], axes=[-1], keepdims=1),
             helper.make_node("Add", ["v", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["s"]),
             helper.make_node("Div", ["d", "s"], ["n"]),
             helper.make_node("Mul", ["n", "gamma"], ["ng"]),
             helper.make_node("Add", ["ng", "beta"], ["y"])]
    path = _model(tmp_path, nodes, [("eps", F32(1e-7)), ("gamma", g), ("beta", b)], 16, 16,
                  opset=11)
    xs = rng.normal(0.5, 2, (50, 16)).astype(F32)
    model = _check(path, xs, (1, 1, 16))
    assert {"Reduce", "Div", "Unary"} <= {type(op).__name__ for op in model.layers}


def test_a_kernel_1_conv_on_a_length_1_axis_is_a_dense(tmp_path, rng):
    w = rng.normal(0, 0.3, (6, 8, 1)).astype(F32)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
             helper.make_node("Conv", ["t", "w"], ["c"], kernel_shape=[1]),
             helper.make_node("Transpose", ["c"], ["y"], perm=[0, 2, 1])]
    model = _check(_model(tmp_path, nodes, [("w", w)], 8, 6), rng.normal(0, 1, (20, 8))
                   .astype(F32), (1, 1, 8))
    assert [type(op).__name__ for op in model.layers] == ["Dense"]


@pytest.mark.parametrize("pads", [(2, 3), (-2, 1), (1, -3)])
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_of_the_features_matches_onnxruntime(tmp_path, rng, mode, pads):
    """Padding, and negative pads (cropping) on either side."""
    nodes = [helper.make_node("Pad", ["x", "pads", "v"], ["y"], mode=mode)]
    inits = [("pads", np.array([0, 0, pads[0], 0, 0, pads[1]], np.int64)), ("v", F32(0.5))]
    if mode != "constant":
        nodes = [helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode)]
        inits = inits[:1]
    _check(_model(tmp_path, nodes, inits, 7, 7 + sum(pads)),
           rng.normal(0, 1, (10, 7)).astype(F32), (1, 1, 7))


@pytest.mark.parametrize("start, end", [(1, 5), (-3, 2 ** 62), (0, 1), (5, 6)])
def test_a_slice_of_the_length_inside_a_step_crops_every_channel(tmp_path, rng, start, end):
    """Silero's sequence export: positions ``start:end`` of a convolution's length axis
    ``[N, C, L]`` (a crop of each channel), then another convolution over what is left,
    against ONNX Runtime; a length reduced to 1 is no length at all (a unit axis)."""
    w1 = rng.normal(0, 0.4, (3, 1, 3)).astype(F32)
    w2 = rng.normal(0, 0.4, (2, 3, 1)).astype(F32)
    nodes = [helper.make_node("Unsqueeze", ["x", "one"], ["u"]),          # [1, 1, 8]
             helper.make_node("Conv", ["u", "w1"], ["c"], kernel_shape=[3]),  # [1, 3, 6]
             helper.make_node("Slice", ["c", "s", "e", "ax"], ["sl"]),
             helper.make_node("Conv", ["sl", "w2"], ["y"], kernel_shape=[1])]
    inits = [("one", np.array([1], np.int64)), ("w1", w1), ("w2", w2),
             ("s", np.array([start], np.int64)), ("e", np.array([end], np.int64)),
             ("ax", np.array([2], np.int64))]
    model = _check(_model(tmp_path, nodes, inits, 8, None, shape=[1, 8]),
                   rng.normal(0, 1, (12, 8)).astype(F32), (1, 8))
    kept = len(range(6)[slice(start, min(end, 6))])
    assert model.output_size == 2 * kept
    assert ("Pad" in {type(op).__name__ for op in model.layers}) == (kept < 6)


def test_a_slice_of_scattered_positions_of_the_length_is_refused(tmp_path, rng):
    w1 = rng.normal(0, 0.4, (3, 1, 3)).astype(F32)
    nodes = [helper.make_node("Unsqueeze", ["x", "one"], ["u"]),
             helper.make_node("Conv", ["u", "w1"], ["c"], kernel_shape=[3]),
             helper.make_node("Slice", ["c", "s", "e", "ax", "st"], ["y"])]
    inits = [("one", np.array([1], np.int64)), ("w1", w1), ("s", np.array([0], np.int64)),
             ("e", np.array([6], np.int64)), ("ax", np.array([2], np.int64)),
             ("st", np.array([2], np.int64))]
    from edgernn.errors import UnsupportedOpError

    with pytest.raises(UnsupportedOpError, match=r"Slice node .*positions \[0, 2, 4\] of "
                                                 r"the length axis 2 \(size 6\); only a run"):
        from_onnx(str(_model(tmp_path, nodes, inits, 8, None, shape=[1, 8])))


def test_div_of_data_by_data_and_of_a_constant_by_data(tmp_path, rng):
    nodes = [helper.make_node("Abs", ["x"], ["a"]),
             helper.make_node("Add", ["a", "one"], ["a1"]),
             helper.make_node("Div", ["x", "a1"], ["r"]),
             helper.make_node("Div", ["two", "a1"], ["q"]),
             helper.make_node("Add", ["r", "q"], ["y"])]
    _check(_model(tmp_path, nodes, [("one", F32(1)), ("two", F32(2))], 5, 5),
           rng.normal(0, 2, (30, 5)).astype(F32), (1, 1, 5))


@pytest.mark.parametrize("reduce", ["ReduceL2", "ReduceSumSquare", "ReduceSum"])
def test_a_norm_or_sum_used_as_data_is_a_reduce(tmp_path, rng, reduce):
    """``ReduceL2``/``ReduceSumSquare`` of the features used as data (not to normalise x
    by), floored by Clip, then broadcast against x; and ``ReduceSum`` of plain data."""
    nodes = [helper.make_node(reduce, ["x", "axes"], ["r"], keepdims=1),
             helper.make_node("Clip", ["r", "lo"], ["c"]),
             helper.make_node("Mul", ["x", "c"], ["y"])]
    path = _model(tmp_path, nodes, [("axes", np.array([-1], np.int64)), ("lo", F32(0.5))],
                  6, 6, opset=18)
    xs = rng.normal(0, 0.4, (40, 6)).astype(F32)
    xs[3] = 0.0                                   # the floor decides this step
    model = _check(path, xs, (1, 1, 6), atol=1e-5)
    assert "Reduce" in {type(op).__name__ for op in model.layers}


def test_x_over_its_norm_plus_eps_divides_by_data(tmp_path, rng):
    """``x / (ReduceL2(x) + eps)`` is not the floored pattern: the norm is data (a
    ``Reduce``), plus eps, and ``Div`` of data by data."""
    nodes = [helper.make_node("ReduceL2", ["x", "axes"], ["n"], keepdims=1),
             helper.make_node("Add", ["n", "eps"], ["ne"]),
             helper.make_node("Div", ["x", "ne"], ["y"])]
    path = _model(tmp_path, nodes, [("axes", np.array([-1], np.int64)), ("eps", F32(1e-3))],
                  5, 5, opset=18)
    model = _check(path, rng.normal(0, 1, (30, 5)).astype(F32), (1, 1, 5), atol=1e-5)
    assert {"Reduce", "Div"} <= {type(op).__name__ for op in model.layers}


def _stateful(tmp_path, out_name="stateN"):
    """``stateN = 0.9 * state + x[None]`` in a [2, 1, 4] state (two rows, as Silero's
    h and c), ``y = tanh(stateN[1])``: the caller feeds ``stateN`` back as ``state``."""
    nodes = [helper.make_node("Gather", ["state", "zero"], ["s0"], axis=0),
             helper.make_node("Gather", ["state", "one"], ["s1"], axis=0),
             helper.make_node("Mul", ["s0", "k"], ["a"]),
             helper.make_node("Add", ["a", "x"], ["n0"]),
             helper.make_node("Add", ["s1", "n0"], ["n1"]),
             helper.make_node("Unsqueeze", ["n0", "ax0"], ["u0"]),
             helper.make_node("Unsqueeze", ["n1", "ax0"], ["u1"]),
             helper.make_node("Concat", ["u0", "u1"], [out_name], axis=0),
             helper.make_node("Tanh", ["n1"], ["y"])]
    graph = helper.make_graph(
        nodes, "acc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                       helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, 1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [2, 1, 4])],
        [numpy_helper.from_array(np.array(0, np.int64), "zero"),
         numpy_helper.from_array(np.array(1, np.int64), "one"),
         numpy_helper.from_array(np.array([0], np.int64), "ax0"),
         numpy_helper.from_array(F32(0.9), "k")])
    path = tmp_path / "acc.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_state_input_output_pair_becomes_state_inside_the_model(tmp_path, rng):
    path = _stateful(tmp_path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    xs = rng.normal(0, 1, (50, 4)).astype(F32)
    state, want = np.zeros((2, 1, 4), F32), []
    for x in xs:
        y, state = sess.run(None, {"x": x[None], "state": state})
        want.append(y[0])
    model = from_onnx(str(path))   # "state" -> "stateN" paired by name
    assert model.input_size == 4 and model.output_size == 4
    s = model.stream()
    np.testing.assert_allclose(np.stack([s.step(x).copy() for x in xs]), want, atol=1e-6)
    st = dict(zip(*s.get_state().__dict__.values(), strict=True))
    np.testing.assert_allclose(np.stack([st["state[0,0,:]"], st["state[1,0,:]"]]),
                               state[:, 0], atol=1e-5)


def test_state_pairs_can_be_named_and_bad_names_are_refused(tmp_path):
    from edgernn.errors import ModelFormatError

    path = _stateful(tmp_path, out_name="carried")
    model = from_onnx(str(path), states={"state": "carried"})
    assert model.input_size == 4
    with pytest.raises(ModelFormatError, match="is not a graph input -> graph output pair"):
        from_onnx(str(path), states={"state": "nope"})


def _if_model(tmp_path, cond_from_input: bool):
    """y = x * 2 if cond else x * 3, cond a constant or computed from a runtime shape."""
    def branch(k):
        return helper.make_graph([helper.make_node("Mul", ["x", f"c{k}"], [f"y{k}"])],
                                 f"b{k}", [], [helper.make_tensor_value_info(
                                     f"y{k}", TensorProto.FLOAT, None)],
                                 [numpy_helper.from_array(F32(k), f"c{k}")])
    if cond_from_input:  # the batch size: known only at run time
        nodes = [helper.make_node("Shape", ["x"], ["shp"]),
                 helper.make_node("Gather", ["shp", "i0"], ["n"], axis=0),
                 helper.make_node("Equal", ["n", "one"], ["cond"])]
    else:
        nodes = [helper.make_node("Identity", ["sr"], ["m"]),
                 helper.make_node("Greater", ["m", "zero"], ["cond"])]
    nodes.append(helper.make_node("If", ["cond"], ["y"], then_branch=branch(2),
                                  else_branch=branch(3)))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                            ["N", 4] if cond_from_input else [1, 4])]
    if not cond_from_input:
        inputs.append(helper.make_tensor_value_info("sr", TensorProto.FLOAT, []))
    graph = helper.make_graph(nodes, "if", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(F32(0), "zero"),
                               numpy_helper.from_array(np.array(0, np.int64), "i0"),
                               numpy_helper.from_array(np.array(1, np.int64), "one")])
    path = tmp_path / "if.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_an_if_on_a_constant_is_its_taken_branch_and_one_on_data_is_refused(tmp_path, rng):
    from edgernn.errors import UnsupportedOpError

    path = _if_model(tmp_path, cond_from_input=False)
    xs = rng.normal(0, 1, (5, 4)).astype(F32)
    for sr, k in ((1.0, 2), (-1.0, 3)):
        model = from_onnx(str(path), constants={"sr": np.array(sr, F32)})
        np.testing.assert_allclose(model.stream().run(xs), xs * k, rtol=1e-6)
    with pytest.raises(UnsupportedOpError, match="If node .* known only at run time"):
        from_onnx(str(_if_model(tmp_path, cond_from_input=True)))


@pytest.mark.parametrize("shapes, match", [
    ({"nope": (1, 4)}, r"input_shapes: \['nope'\] are not graph inputs"),
    ({"x": (1, 4, 1)}, r"input_shapes\['x'\]: \[1, 4, 1\] does not fit"),
    ({"x": (1, 5)}, r"input_shapes\['x'\]: \[1, 5\] does not fit"),
])
def test_input_shapes_that_do_not_fit_are_refused(tmp_path, shapes, match):
    from edgernn.errors import ModelFormatError

    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    with pytest.raises(ModelFormatError, match=match):
        from_onnx(str(_model(tmp_path, nodes, [], 4, 4, shape=[1, 4])), input_shapes=shapes)
