"""ONNX ops on (channels, length) steps and over time, each in a small hand-built graph:
pooling, Tile, causal 2-D convolutions, ConvTranspose and a TCN's chomp, stepped 100 times
and compared with a plain-numpy oracle from the ONNX operator definition and with ONNX
Runtime (1e-5); what does not stream is refused naming the node. The helpers are
tests/test_convert_onnx_more_ops.py's."""

import numpy as np
import pytest

import edgernn
from tests.helpers import need_module

need_module("onnx", "onnx (the convert extra)")
ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
from onnx import helper, numpy_helper  # noqa: E402

from converters.onnx import from_onnx  # noqa: E402
from tests.test_convert_onnx_more_ops import (  # noqa: E402
    F32,
    STEPS,
    _conv_front,
    check,
    graph,
    stepped,
)


# --- pooling within a step -------------------------------------------------------------
def pool(x, func, k, stride=1, pads=(0, 0), dil=1, include_pad=False):
    """ONNX MaxPool / AveragePool over the last axis of x [T, C, L] (pads: -inf for max,
    zeros counted or not for avg)."""
    t, c, length = x.shape
    out = (length + sum(pads) - dil * (k - 1) - 1) // stride + 1
    y = np.empty((t, c, out))
    for o in range(out):
        pos = [o * stride + j * dil - pads[0] for j in range(k)]
        inside = [p for p in pos if 0 <= p < length]
        win = x[:, :, inside]
        if func == "max":
            y[:, :, o] = win.max(-1)
        else:
            y[:, :, o] = win.sum(-1) / (k if include_pad else len(inside))
    return y


POOLS = [("MaxPool", dict(kernel_shape=[2], strides=[2])),
         ("MaxPool", dict(kernel_shape=[3], pads=[1, 1], dilations=[2])),
         ("AveragePool", dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
         ("AveragePool", dict(kernel_shape=[3], pads=[1, 1], count_include_pad=1)),
         ("AveragePool", dict(kernel_shape=[4], auto_pad="SAME_UPPER"))]


@pytest.mark.parametrize("op, attrs", POOLS)
def test_pooling_over_the_length_of_a_step(rng, op, attrs):
    c, length = 4, 10
    attrs = dict(attrs)
    node = helper.make_node(op, ["r"], ["y"], name="pool", **attrs)
    xs = rng.normal(0, 1, (STEPS, length)).astype(F32)
    model, front = _conv_front([node], {}, rng, c, length, opset=19)
    m, got, want = stepped(model, xs)
    assert [type(o).__name__ for o in m.layers][-1] == "Pool1d"
    k = attrs["kernel_shape"][0]
    pads = attrs.get("pads", (1, 2) if "auto_pad" in attrs else (0, 0))
    oracle = pool(front(xs), "max" if op == "MaxPool" else "avg", k,
                  attrs.get("strides", [1])[0], pads, attrs.get("dilations", [1])[0],
                  bool(attrs.get("count_include_pad", 0)))
    check(got, oracle, want)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pooling_over_the_length_of_a_step(rng, op):
    c, length = 5, 6
    xs = rng.normal(0, 1, (STEPS, length)).astype(F32)
    model, front = _conv_front([helper.make_node(op, ["r"], ["y"], name="g")], {}, rng, c,
                               length)
    model.graph.output[0].type.tensor_type.shape.dim[2].dim_value = 1
    m, got, want = stepped(model, xs)
    r = front(xs)
    check(got, r.mean(-1) if op == "GlobalAveragePool" else r.max(-1), want)


# --- Tile ----------------------------------------------------------------------------------
def test_tile_along_the_features_repeats_the_step(rng):
    xs = rng.normal(0, 1, (STEPS, 1, 5)).astype(F32)
    node = helper.make_node("Tile", ["x", "reps"], ["y"], name="tile")
    m, got, want = stepped(graph([node], {"reps": np.array([1, 1, 3], np.int64)},
                                 ["T", 1, 5], ["T", 1, 15]), xs)
    check(got, np.tile(xs, (1, 1, 3)), want)


def test_tile_along_the_channels_of_channels_by_length_steps(rng):
    c, length = 3, 4
    xs = rng.normal(0, 1, (STEPS, length)).astype(F32)
    node = helper.make_node("Tile", ["r", "reps"], ["y"], name="tile")
    model, front = _conv_front([node], {"reps": np.array([1, 2, 1], np.int64)}, rng, c, length)
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 2 * c
    _, got, want = stepped(model, xs)
    check(got, np.tile(front(xs), (1, 2, 1)), want)


@pytest.mark.parametrize("node, match", [
    (helper.make_node("MaxPool", ["r"], ["y"], name="bad", kernel_shape=[2], strides=[2],
                      ceil_mode=1), "ceil_mode=1 where it adds a window"),
    (helper.make_node("AveragePool", ["r"], ["y"], name="bad", kernel_shape=[2, 2]),
     "only a 1-D kernel"),
    (helper.make_node("GlobalMaxPool", ["x"], ["y"], name="bad"), "only over the length"),
])
def test_unsupported_pooling_is_refused_naming_the_node(rng, node, match):
    model, _ = _conv_front([node], {}, rng, 3, 7)
    with pytest.raises(edgernn.EdgeRNNError) as err:
        from_onnx(model)
    assert "'bad'" in str(err.value) and match in str(err.value), str(err.value)


@pytest.mark.parametrize("after, match", [
    ([helper.make_node("Relu", ["c"], ["y"], name="relu")], "only a Slice dropping exactly"),
    ([helper.make_node("Slice", ["c", "zero", "minus1", "two"], ["y"], name="chomp")],
     "Slice 0:-1:1 along axis 2"),
])
def test_a_conv_padded_past_the_last_step_needs_its_chomp(rng, after, match):
    """Conv(pads=[2, 2]) over time: causal only once a Slice drops its last 2 frames."""
    w = rng.normal(0, 0.5, (4, 3, 3)).astype(F32)
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="tconv", pads=[2, 2])
    model = graph([conv] + after, {"w": w, "zero": np.array([0], np.int64),
                                   "minus1": np.array([-1], np.int64),
                                   "two": np.array([2], np.int64)}, [1, 3, "T"], [1, 4, "T"])
    with pytest.raises(edgernn.EdgeRNNError) as err:
        from_onnx(model)
    assert match in str(err.value) and "'tconv'" in str(err.value), str(err.value)


def _conv2d_model(rng, conv_attrs, after=()):
    """x [1, T, 8] -> Unsqueeze [1, 1, T, 8] -> Conv 2-D (4 channels, 2 x 3) -> after."""
    w = rng.normal(0, 0.5, (4, 1, 2, 3)).astype(F32)
    nodes = [helper.make_node("Unsqueeze", ["x", "one"], ["u"], name="unsq"),
             helper.make_node("Conv", ["u", "w"], ["c" if after else "y"], name="conv2d",
                              **conv_attrs)] + list(after)
    return graph(nodes, {"w": w, "one": np.array([1], np.int64)}, [1, "T", 8],
                 [1, 4, "T", 8])


def test_a_causal_conv2d_streams_like_onnxruntime(rng):
    model = _conv2d_model(rng, dict(pads=[1, 1, 0, 1]))
    w = numpy_helper.to_array(model.graph.initializer[0]).astype(np.float64)   # [4, 1, 2, 3]
    xs = rng.normal(0, 1, (STEPS, 8)).astype(F32)
    m = from_onnx(model)
    s = m.stream()
    got = np.stack([s.step(x).copy() for x in xs])
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": xs[None]})[0][0]
    # ONNX Conv: y[o, t, f] = sum_{j, q} W[o, 0, j, q] xpad[t + j, f + q], one zero frame
    # before the first and one zero column either side of the frequencies
    xp = np.pad(xs.astype(np.float64), ((1, 0), (1, 1)))
    oracle = np.zeros((STEPS, 4, 8))
    for j in range(2):
        for q in range(3):
            oracle += w[None, :, 0, j, q, None] * xp[j:j + STEPS, None, q:q + 8]
    check(got, oracle, want.transpose(1, 0, 2).reshape(STEPS, -1))  # a step: (C, F)


@pytest.mark.parametrize("attrs, after, match", [
    (dict(pads=[1, 1, 0, 1], strides=[2, 1]), (), "time stride 2"),
    (dict(pads=[0, 1, 0, 1]), (), "0 zero frames before it"),
    (dict(pads=[1, 1, 1, 1]), [helper.make_node("Relu", ["c"], ["y"], name="relu")],
     "only a Slice dropping exactly"),
    (dict(pads=[1, 1, 0, 1]), [helper.make_node("MaxPool", ["c"], ["y"], name="pool",
                                                kernel_shape=[2, 2])], "only over F"),
])
def test_conv2d_that_does_not_stream_is_refused_naming_the_node(rng, attrs, after, match):
    with pytest.raises(edgernn.EdgeRNNError) as err:
        from_onnx(_conv2d_model(rng, attrs, after))
    assert match in str(err.value), str(err.value)
    assert "'conv2d'" in str(err.value) or "'pool'" in str(err.value), str(err.value)


# --- ConvTranspose ----------------------------------------------------------------------
def conv_transpose_1d(x, w, b, stride, pads, out_pad, groups):
    """ONNX ConvTranspose over the last axis of x [T, C_in, L] (w [C_in, C_out/G, K])."""
    t, c_in, length = x.shape
    per, k = w.shape[1], w.shape[2]
    full = stride * (length - 1) + out_pad + k
    y = np.zeros((t, per * groups, full))
    for c in range(c_in):
        g = c // (c_in // groups)
        for i in range(length):
            for q in range(k):
                y[:, g * per:(g + 1) * per, i * stride + q] += x[:, c, i, None] * w[c, :, q]
    y = y[:, :, pads[0]:full - pads[1]]
    return y + b[:, None]


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_transpose_within_a_step(rng, groups):
    c, length = 4, 6
    w = rng.normal(0, 0.5, (c, 3 // groups + 1, 4)).astype(F32)
    b = rng.normal(0, 0.5, w.shape[1] * groups).astype(F32)
    node = helper.make_node("ConvTranspose", ["r", "tw", "tb"], ["y"], name="up", strides=[2],
                            pads=[1, 2], output_padding=[1], group=groups)
    xs = rng.normal(0, 1, (STEPS, length)).astype(F32)
    model, front = _conv_front([node], {"tw": w, "tb": b}, rng, c, length)
    out_len = 2 * (length - 1) + 1 + 4 - 3
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = w.shape[1] * groups
    model.graph.output[0].type.tensor_type.shape.dim[2].dim_value = out_len
    _, got, want = stepped(model, xs)
    check(got, conv_transpose_1d(front(xs), w.astype(np.float64), b, 2, (1, 2), 1, groups),
          want)


def test_conv_transpose_over_time_is_causal_once_chomped(rng):
    w = rng.normal(0, 0.5, (3, 2, 3)).astype(F32)      # C_in 3, C_out 2, 3 time taps
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["c"], name="tconvT"),
             helper.make_node("Slice", ["c", "zero", "minus2", "two"], ["y"], name="chomp")]
    model = graph(nodes, {"w": w, "zero": np.array([0], np.int64),
                          "minus2": np.array([-2], np.int64), "two": np.array([2], np.int64)},
                  [1, 3, "T"], [1, 2, "T"])
    xs = rng.normal(0, 1, (STEPS, 3)).astype(F32)
    m = from_onnx(model)
    s = m.stream()
    got = np.stack([s.step(x).copy() for x in xs])
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": xs.T[None]})[0][0].T
    x = xs.astype(np.float64)
    oracle = sum(np.pad(x, ((j, 0), (0, 0)))[:STEPS] @ w[:, :, j] for j in range(3))
    check(got, oracle, want)


@pytest.mark.parametrize("attrs, match", [
    (dict(strides=[2]), "stride 2"),
    (dict(pads=[1, 0]), "no padding before the first frame"),
    (dict(auto_pad="SAME_UPPER"), "auto_pad"),
])
def test_conv_transpose_over_time_that_does_not_stream_is_refused(rng, attrs, match):
    w = rng.normal(0, 0.5, (3, 2, 3)).astype(F32)
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="bad", **attrs)
    with pytest.raises(edgernn.EdgeRNNError) as err:
        from_onnx(graph([node], {"w": w}, [1, 3, "T"], [1, 2, "T"]))
    assert match in str(err.value) and "'bad'" in str(err.value), str(err.value)
