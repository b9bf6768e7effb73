"""edgernn.Unary (an op kind added as two runtime files, ops/unary.py and
kernels/unary.py, plus converters/onnx/unary.py) against a plain-numpy oracle written
from its equations, and against ONNX Runtime through the converter."""

import numpy as np
import pytest

import edgernn
from edgernn.errors import ModelFormatError
from tests.helpers import need_module

F32 = np.float32


def oracle(func, x, alpha=0.0, beta=0.0):
    """The equations of edgernn.kernels.unary, in numpy (float32 in, float32 out)."""
    x = x.astype(F32)
    a, b = F32(alpha), F32(beta)
    with np.errstate(all="ignore"):
        return {
            "abs": lambda: np.abs(x), "neg": lambda: -x, "sqrt": lambda: np.sqrt(x),
            "log": lambda: np.log(x), "exp": lambda: np.exp(x),
            "reciprocal": lambda: F32(1) / x, "square": lambda: x * x,
            "pow": lambda: np.power(x.astype(np.float64), float(a)).astype(F32),
            "clip": lambda: np.minimum(np.maximum(x, a), b),
            "max": lambda: np.maximum(x, a), "min": lambda: np.minimum(x, a),
        }[func]()


CASES = [("abs", 0, 0), ("neg", 0, 0), ("sqrt", 0, 0), ("log", 0, 0), ("exp", 0, 0),
         ("reciprocal", 0, 0), ("square", 0, 0), ("pow", 3.0, 0), ("pow", 0.5, 0),
         ("pow", -1.5, 0), ("clip", -0.5, 0.25), ("max", 0.1, 0), ("min", -0.2, 0)]


@pytest.mark.parametrize("func, alpha, beta", CASES)
def test_unary_matches_the_oracle_step_and_run(rng, func, alpha, beta):
    xs = rng.normal(0, 2, (50, 7)).astype(F32)
    if func in ("sqrt", "log", "pow"):
        xs = np.abs(xs) + F32(0.01)  # the domain; out of it, see the non-finite test
    x = edgernn.Input(7)
    m = edgernn.Model(inputs=x, outputs=edgernn.Unary(func, alpha, beta)(x))
    want = oracle(func, xs, alpha, beta)
    ys = m.stream().run(xs)
    # exp/log/sqrt/pow: libm in the kernel, numpy's own loops in the oracle: one ulp apart
    np.testing.assert_allclose(ys, want, rtol=2.5e-7, atol=0)
    s = m.stream()
    np.testing.assert_array_equal(np.stack([s.step(v) for v in xs]), ys)  # step == run
    batch = m.streams(3)
    got = np.stack([batch.step(np.stack([v, v, v]))[1] for v in xs])
    np.testing.assert_array_equal(got, ys)                                # batch == single


def test_unary_out_of_its_domain_gives_ieee_values_and_counts_the_step():
    x = edgernn.Input(3)
    m = edgernn.Model(inputs=x, outputs=edgernn.Unary("log")(x))
    s = m.stream()
    y = s.step(np.array([-1.0, 0.0, 1.0], F32))
    assert np.isnan(y[0]) and y[1] == -np.inf and y[2] == 0
    assert s.nonfinite_steps == 1


def test_unary_round_trips_through_a_file(tmp_path, rng):
    x = edgernn.Input(4)
    m = edgernn.Model(inputs=x, outputs=edgernn.Unary("clip", -1.0, 2.0)(x))
    edgernn.save(m, tmp_path / "u.ernn")
    again = edgernn.load(tmp_path / "u.ernn")
    xs = rng.normal(0, 3, (20, 4)).astype(F32)
    np.testing.assert_array_equal(again.stream().run(xs), m.stream().run(xs))


@pytest.mark.parametrize("kw, match", [
    ({"func": "cube"}, "Unary.func: expected one of"),
    ({"func": "pow", "alpha": float("nan")}, "Unary.alpha: expected a finite number"),
    ({"func": "clip", "alpha": 2.0, "beta": 1.0}, "alpha .min. <= beta"),
])
def test_unary_refuses_bad_configs(kw, match):
    with pytest.raises(ModelFormatError, match=match):
        edgernn.Unary(**kw)


def test_onnx_unary_ops_convert_and_match_onnxruntime(tmp_path, rng):
    onnx = need_module("onnx", "onnx (the convert extra)")
    ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
    from onnx import TensorProto, helper

    from converters.onnx import from_onnx

    def c(name, v):
        return helper.make_tensor(name, TensorProto.FLOAT, [], [v])

    nodes = [helper.make_node("Abs", ["x"], ["a"]),
             helper.make_node("Add", ["a", "one"], ["a1"]),
             helper.make_node("Sqrt", ["a1"], ["s"]),
             helper.make_node("Log", ["s"], ["l"]),
             helper.make_node("Pow", ["a1", "e"], ["p"]),
             helper.make_node("Sub", ["l", "p"], ["d"]),
             helper.make_node("Neg", ["d"], ["n"]),
             helper.make_node("Clip", ["n", "lo", "hi"], ["k"]),
             helper.make_node("Exp", ["k"], ["ex"]),
             helper.make_node("Reciprocal", ["ex"], ["r"]),
             helper.make_node("Max", ["r", "lo"], ["y"])]
    graph = helper.make_graph(
        nodes, "unary", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        [c("one", 1.0), c("e", 1.5), c("lo", -0.5), c("hi", 3.0)])
    path = tmp_path / "unary.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    model = from_onnx(str(path))
    assert sum(type(op).__name__ == "Unary" for op in model.layers) == 9
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    xs = rng.normal(0, 2, (100, 6)).astype(F32)
    want = np.concatenate([sess.run(None, {"x": v[None]})[0] for v in xs])
    np.testing.assert_allclose(model.stream().run(xs), want, rtol=1e-6, atol=1e-7)
