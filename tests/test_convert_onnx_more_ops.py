"""ONNX ops of real streaming exports, each in a small hand-built graph: converted, stepped
100 times, and compared with a plain-numpy oracle written from the ONNX operator definition
and with ONNX Runtime (1e-5); every op refuses at least one unsupported attribute, naming
the node. Pooling, Tile and convolutions: tests/test_convert_onnx_conv_ops.py; whole torch
models: tests/test_convert_torch_streaming_models.py."""

import math

import numpy as np
import pytest

import edgernn
from tests.helpers import need_module

onnx = need_module("onnx", "onnx (the convert extra)")
ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from converters.onnx import from_onnx  # noqa: E402

F32 = np.float32
STEPS = 100


def graph(nodes, inits, in_shape, out_shape, opset=17):
    """x [in_shape] -> nodes -> y; ``inits``: name -> array."""
    g = helper.make_graph(
        nodes, "ops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


def stepped(model_proto, xs):
    """Every step of ``xs`` through the converted model; and ONNX Runtime per step."""
    m = from_onnx(model_proto)
    s = m.stream()
    got = np.stack([s.step(x.reshape(-1)).copy() for x in xs])
    sess = ort.InferenceSession(model_proto.SerializeToString())
    want = np.stack([sess.run(None, {"x": x[None]})[0].reshape(-1) for x in xs])
    assert np.array_equal(m.stream().run(xs.reshape(len(xs), -1)), got)     # step == run
    return m, got, want


# --- oracles, from the ONNX operator definitions --------------------------------------
def erf(x):
    return np.vectorize(math.erf)(x.astype(np.float64))


def gelu(x, approximate="none"):
    x = x.astype(np.float64)
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def batch_norm(x, scale, b, mean, var, eps):   # channels on axis 1
    shp = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shp)) / np.sqrt(var.reshape(shp) + eps) * scale.reshape(shp) + \
        b.reshape(shp)


def layer_norm(x, scale, b, axis, eps):
    ax = tuple(range(axis % x.ndim, x.ndim))
    mu = x.mean(axis=ax, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=ax, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * scale + b


def group_norm(x, groups, scale, b, eps):    # x [N, C, L]; scale, b per channel
    n, c, length = x.shape
    g = x.reshape(n, groups, -1)
    mu = g.mean(-1, keepdims=True)
    var = ((g - mu) ** 2).mean(-1, keepdims=True)
    y = ((g - mu) / np.sqrt(var + eps)).reshape(n, c, length)
    return y * scale.reshape(1, c, 1) + b.reshape(1, c, 1)


def check(got, oracle, want, atol=1e-5):
    np.testing.assert_allclose(got, oracle.reshape(got.shape), atol=atol, rtol=0)
    np.testing.assert_allclose(got, want, atol=atol, rtol=0)


# --- elementwise ----------------------------------------------------------------------
POINTWISE = {"Erf": erf, "Sign": np.sign, "Floor": np.floor, "Ceil": np.ceil,
             "Round": np.round}


@pytest.mark.parametrize("op", sorted(POINTWISE))
def test_pointwise_ops_match_the_definition_and_onnxruntime(rng, op):
    xs = (rng.normal(0, 2, (STEPS, 1, 12)).astype(F32))
    xs[0, 0, :6] = [-2.5, -1.5, -0.5, 0.5, 1.5, 0.0]   # halves round to even
    m, got, want = stepped(graph([helper.make_node(op, ["x"], ["y"], name="f")], {},
                                 ["T", 1, 12], ["T", 1, 12]), xs)
    assert [type(o).__name__ for o in m.layers] == ["Unary"]
    check(got, POINTWISE[op](xs.astype(np.float64)), want)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_opset20_matches_the_definition_and_onnxruntime(rng, approximate):
    xs = rng.normal(0, 2, (STEPS, 1, 10)).astype(F32)
    node = helper.make_node("Gelu", ["x"], ["y"], name="g", approximate=approximate)
    _, got, want = stepped(graph([node], {}, ["T", 1, 10], ["T", 1, 10], opset=20), xs)
    check(got, gelu(xs, approximate), want)


def test_hard_swish_matches_the_definition_and_onnxruntime(rng):
    xs = rng.normal(0, 4, (STEPS, 1, 10)).astype(F32)
    _, got, want = stepped(graph([helper.make_node("HardSwish", ["x"], ["y"], name="h")], {},
                                 ["T", 1, 10], ["T", 1, 10]), xs)
    x = xs.astype(np.float64)
    check(got, x * np.clip(x / 6 + 0.5, 0, 1), want)


def _elu(x, alpha):
    return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))


ACTIVATIONS = {
    "Selu": ({"alpha": 1.5, "gamma": 1.1}, lambda x: 1.1 * _elu(x, 1.5)),
    "Celu": ({"alpha": 0.7}, lambda x: np.maximum(0, x) + np.minimum(
        0, 0.7 * (np.exp(np.minimum(x, 0) / 0.7) - 1))),
    "Mish": ({}, lambda x: x * np.tanh(np.log1p(np.exp(x)))),
}


@pytest.mark.parametrize("op", sorted(ACTIVATIONS))
def test_selu_celu_mish_match_the_definition_and_onnxruntime(rng, op):
    attrs, fn = ACTIVATIONS[op]
    xs = rng.normal(0, 2, (STEPS, 1, 10)).astype(F32)
    node = helper.make_node(op, ["x"], ["y"], name="a", **attrs)
    _, got, want = stepped(graph([node], {}, ["T", 1, 10], ["T", 1, 10], opset=18), xs)
    check(got, fn(xs.astype(np.float64)), want)


@pytest.mark.parametrize("slope_shape", [(1,), (8,)])
def test_prelu_on_features_matches_the_definition_and_onnxruntime(rng, slope_shape):
    slope = rng.uniform(-0.5, 0.5, slope_shape).astype(F32)
    xs = rng.normal(0, 1, (STEPS, 1, 8)).astype(F32)
    _, got, want = stepped(graph([helper.make_node("PRelu", ["x", "s"], ["y"], name="p")],
                                 {"s": slope}, ["T", 1, 8], ["T", 1, 8]), xs)
    x = xs.astype(np.float64)
    check(got, np.where(x < 0, slope * x, x), want)


def _conv_front(op_nodes, inits, rng, c, length, opset=17):
    """x [1, L] -> Unsqueeze -> Conv (C channels, kernel 3, pads 1) -> 'r' [1, C, L], a step
    of (channels, length) values as a convolution within a step makes it (Silero VAD's
    encoder) -> op_nodes -> y. Returns the model and a numpy function giving 'r' of
    xs [T, L]."""
    w, b = rng.normal(0, 0.7, (c, 1, 3)).astype(F32), rng.normal(0, 0.5, c).astype(F32)
    nodes = [helper.make_node("Unsqueeze", ["x", "one"], ["u"], name="unsq"),
             helper.make_node("Conv", ["u", "cw", "cb"], ["r"], name="front", pads=[1, 1])]
    model = graph(nodes + op_nodes, dict(inits, cw=w, cb=b, one=np.array([1], np.int64)),
                  [1, length], [1, c, length], opset)

    def front(xs):
        xp = np.pad(xs.astype(np.float64), ((0, 0), (1, 1)))
        win = np.stack([xp[:, j:j + length] for j in range(3)], -1)      # [T, L, 3]
        return np.einsum("tlk,ck->tcl", win, w[:, 0].astype(np.float64)) + b[:, None]
    return model, front


def test_prelu_per_channel_on_channels_by_length_steps(rng):
    c, length = 4, 6
    slope = rng.uniform(0, 0.5, (c, 1)).astype(F32)
    xs = rng.normal(0, 1, (STEPS, length)).astype(F32)
    model, front = _conv_front([helper.make_node("PRelu", ["r", "s"], ["y"], name="p")],
                               {"s": slope}, rng, c, length)
    _, got, want = stepped(model, xs)
    x = front(xs)
    check(got, np.where(x < 0, slope * x, x), want)


# --- normalisation ----------------------------------------------------------------------
def _bn_params(rng, c):
    return (rng.uniform(0.5, 1.5, c).astype(F32), rng.normal(0, 0.3, c).astype(F32),
            rng.normal(0, 0.3, c).astype(F32), rng.uniform(0.5, 2, c).astype(F32))


def test_batch_norm_alone_is_a_per_channel_affine(rng):
    c, length = 5, 3
    s, b, mu, var = _bn_params(rng, c)
    node = helper.make_node("BatchNormalization", ["q", "s", "b", "m", "v"], ["y"], name="bn",
                            epsilon=1e-3)
    xs = rng.normal(0, 1, (STEPS, length)).astype(F32)
    model, front = _conv_front([helper.make_node("Relu", ["r"], ["q"], name="relu"), node],
                               {"s": s, "b": b, "m": mu, "v": var}, rng, c, length)
    m, got, want = stepped(model, xs)
    assert [type(o).__name__ for o in m.layers][-2:] == ["Mul", "Add"]
    check(got, batch_norm(np.maximum(front(xs), 0), s, b, mu, var, 1e-3), want)


def test_batch_norm_after_a_conv_folds_into_its_weights(rng):
    c, length = 5, 7
    s, b, mu, var = _bn_params(rng, c)
    node = helper.make_node("BatchNormalization", ["r", "s", "b", "m", "v"], ["y"], name="bn")
    xs = rng.normal(0, 1, (STEPS, length)).astype(F32)
    model, front = _conv_front([node], {"s": s, "b": b, "m": mu, "v": var}, rng, c, length)
    m, got, want = stepped(model, xs)
    assert [type(o).__name__ for o in m.layers] == ["Conv1d"]
    check(got, batch_norm(front(xs), s, b, mu, var, 1e-5), want)


def test_batch_norm_after_gemm_folds_into_its_weights(rng):
    w, bias = rng.normal(0, 0.5, (6, 7)).astype(F32), rng.normal(0, 0.5, 7).astype(F32)
    s, b, mu, var = _bn_params(rng, 7)
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["h"], name="fc"),
             helper.make_node("BatchNormalization", ["h", "s", "b", "m", "v"], ["y"],
                              name="bn")]
    xs = rng.normal(0, 1, (STEPS, 6)).astype(F32)
    m, got, want = stepped(graph(nodes, {"w": w, "c": bias, "s": s, "b": b, "m": mu, "v": var},
                                 ["T", 6], ["T", 7]), xs)
    assert [type(o).__name__ for o in m.layers] == ["Dense"]
    h = xs.astype(np.float64) @ w + bias
    check(got, batch_norm(h, s, b, mu, var, 1e-5), want)


@pytest.mark.parametrize("axis", [-1, -2])
def test_layer_normalization_over_the_trailing_axes_of_a_step(rng, axis):
    c, length = 3, 8
    shape = (length,) if axis == -1 else (c, length)
    scale, b = rng.uniform(0.5, 1.5, shape).astype(F32), rng.normal(0, 0.3, shape).astype(F32)
    node = helper.make_node("LayerNormalization", ["r", "s", "b"], ["y"], name="ln", axis=axis,
                            epsilon=1e-5)
    xs = rng.normal(1, 2, (STEPS, length)).astype(F32)
    model, front = _conv_front([node], {"s": scale, "b": b}, rng, c, length)
    m, got, want = stepped(model, xs)
    assert m.layers[-1].normalized_size == (length if axis == -1 else c * length)
    check(got, layer_norm(front(xs), scale, b, axis, 1e-5), want)


def test_instance_normalization_normalises_each_channel_over_its_length(rng):
    c, length = 4, 6
    s, b = rng.uniform(0.5, 1.5, c).astype(F32), rng.normal(0, 0.3, c).astype(F32)
    node = helper.make_node("InstanceNormalization", ["r", "s", "b"], ["y"], name="in",
                            epsilon=1e-4)
    xs = rng.normal(0.5, 2, (STEPS, length)).astype(F32)
    model, front = _conv_front([node], {"s": s, "b": b}, rng, c, length)
    _, got, want = stepped(model, xs)
    check(got, group_norm(front(xs), c, s, b, 1e-4), want)


@pytest.mark.parametrize("opset", [18, 21])
def test_group_normalization_per_group_opset18_and_per_channel_opset21(rng, opset):
    c, length, groups = 6, 5, 3
    per = groups if opset == 18 else c
    s, b = rng.uniform(0.5, 1.5, per).astype(F32), rng.normal(0, 0.3, per).astype(F32)
    node = helper.make_node("GroupNormalization", ["r", "s", "b"], ["y"], name="gn",
                            num_groups=groups, epsilon=1e-5)
    xs = rng.normal(0.5, 2, (STEPS, length)).astype(F32)
    model, front = _conv_front([node], {"s": s, "b": b}, rng, c, length, opset)
    got = from_onnx(model).stream().run(xs)
    sc, bc = (np.repeat(s, c // groups), np.repeat(b, c // groups)) if per == groups else (s, b)
    np.testing.assert_allclose(got, group_norm(front(xs), groups, sc, bc,
                                               1e-5).reshape(STEPS, -1), atol=1e-5, rtol=0)
    if opset == 21:  # ONNX Runtime 1.32 implements GroupNormalization from opset 21
        _, _, want = stepped(model, xs)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


# --- refusals ---------------------------------------------------------------------------
REFUSALS = {
    "Erf": (helper.make_node("Erf", ["x"], ["y"], name="bad", alpha=1.0), {}, "'alpha'"),
    "Gelu": (helper.make_node("Gelu", ["x"], ["y"], name="bad", approximate="fast"), {},
             "approximate='fast'"),
    "HardSwish": (helper.make_node("HardSwish", ["x"], ["y"], name="bad", alpha=0.2), {},
                  "'alpha'"),
    "PRelu": (helper.make_node("PRelu", ["x", "s"], ["y"], name="bad"),
              {"s": np.ones((3, 1), F32)}, "varies along axis 1"),
    "BatchNormalization": (helper.make_node("BatchNormalization", ["x", "o", "z", "z", "o"],
                                            ["y"], name="bad", training_mode=1),
                           {"o": np.ones(8, F32), "z": np.zeros(8, F32)}, "training_mode"),
    "LayerNormalization": (helper.make_node("LayerNormalization", ["x", "o"], ["y"],
                                            name="bad", axis=0), {"o": np.ones(8, F32)},
                           "only over the trailing values of a step"),
    "InstanceNormalization": (helper.make_node("InstanceNormalization", ["x", "o", "z"], ["y"],
                                               name="bad", momentum=0.1),
                              {"o": np.ones(8, F32), "z": np.zeros(8, F32)}, "'momentum'"),
    "Celu": (helper.make_node("Celu", ["x"], ["y"], name="bad", alpha=0.0), {}, "alpha > 0"),
    "Selu": (helper.make_node("Selu", ["x"], ["y"], name="bad", beta=1.0), {}, "'beta'"),
    "Tile": (helper.make_node("Tile", ["x", "reps"], ["y"], name="bad"),
             {"reps": np.array([2, 1, 1], np.int64)}, "along axis 0"),
    "GroupNormalization": (helper.make_node("GroupNormalization", ["x", "o", "z"], ["y"],
                                            name="bad", num_groups=3),
                           {"o": np.ones(8, F32), "z": np.zeros(8, F32)},
                           "num_groups=3 does not divide"),
}


@pytest.mark.parametrize("op", sorted(REFUSALS))
def test_unsupported_uses_are_refused_naming_the_node(op):
    node, inits, match = REFUSALS[op]
    shape = ["T", 8] if "Normalization" in op and op != "LayerNormalization" else ["T", 1, 8]
    with pytest.raises(edgernn.EdgeRNNError) as err:
        from_onnx(graph([node], inits, shape, shape, opset=21 if op == "Gelu" else 18))
    assert "'bad'" in str(err.value) and match in str(err.value), str(err.value)
