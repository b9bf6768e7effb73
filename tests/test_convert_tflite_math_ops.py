"""converters.tflite: unary math, activations, elementwise ops with broadcasting,
reductions, pads, BATCH_MATMUL and a relabelling TRANSPOSE in a sequence model
``[1, T, F]`` -- each streamed step by step over 200 steps of real speech features
against LiteRT on the whole sequence and a plain-numpy oracle of the op."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

from converters import from_tflite
from edgernn.errors import UnsupportedOpError
from tests.test_convert_tflite_seq_ops import features
from tests.tflite_build import Graph, LiteRT

T, F = 200, 20
R = np.random.default_rng(3)
VEC = (R.standard_normal(F) * 0.5 + 2).astype(np.float32)      # a per-feature constant
MAT = (R.standard_normal((F + 3, 12)) * 0.3).astype(np.float32)


def _pos(g, x):
    """|x| + 1, for the ops that need positive inputs."""
    return g.op("ADD", [g.op("ABS", [x], (1, T, F)), g.const(np.float32(1))], (1, T, F))


def _sig(v):
    return 1 / (1 + np.exp(-v))


def _gelu_tanh(v):
    return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))


# name -> (graph builder (g, x) -> output, numpy oracle of x [T, F] (float64))
CASES = {
    "ABS": (lambda g, x: g.op("ABS", [x], (1, T, F)), np.abs),
    "NEG": (lambda g, x: g.op("NEG", [x], (1, T, F)), np.negative),
    "EXP": (lambda g, x: g.op("EXP", [x], (1, T, F)), np.exp),
    "LOG": (lambda g, x: g.op("LOG", [_pos(g, x)], (1, T, F)), lambda v: np.log(abs(v) + 1)),
    "SQRT": (lambda g, x: g.op("SQRT", [_pos(g, x)], (1, T, F)), lambda v: np.sqrt(abs(v) + 1)),
    "RSQRT": (lambda g, x: g.op("RSQRT", [_pos(g, x)], (1, T, F)),
              lambda v: 1 / np.sqrt(abs(v) + 1)),
    "POW": (lambda g, x: g.op("POW", [_pos(g, x), g.const(np.float32(1.5))], (1, T, F)),
            lambda v: (abs(v) + 1) ** 1.5),
    "RELU6": (lambda g, x: g.op("RELU6", [x], (1, T, F)), lambda v: np.clip(v, 0, 6)),
    "RELU_N1_TO_1": (lambda g, x: g.op("RELU_N1_TO_1", [x], (1, T, F)),
                     lambda v: np.clip(v, -1, 1)),
    "LOGISTIC": (lambda g, x: g.op("LOGISTIC", [x], (1, T, F)), _sig),
    "LEAKY_RELU": (lambda g, x: g.op("LEAKY_RELU", [x], (1, T, F), alpha=0.1),
                   lambda v: np.where(v >= 0, v, 0.1 * v)),
    "HARD_SWISH": (lambda g, x: g.op("HARD_SWISH", [x], (1, T, F)),
                   lambda v: v * np.clip(v + 3, 0, 6) / 6),
    "GELU": (lambda g, x: g.op("GELU", [x], (1, T, F), approximate=False),
             lambda v: 0.5 * v * (1 + erf(v / math.sqrt(2)))),
    "GELU_tanh": (lambda g, x: g.op("GELU", [x], (1, T, F), approximate=True), _gelu_tanh),
    "PRELU": (lambda g, x: g.op("PRELU", [x, g.const(VEC / 10)], (1, T, F)),
              lambda v: np.where(v >= 0, v, v * VEC / 10)),
    "MAXIMUM": (lambda g, x: g.op("MAXIMUM", [x, g.const(np.float32(0.5))], (1, T, F)),
                lambda v: np.maximum(v, 0.5)),
    "MINIMUM": (lambda g, x: g.op("MINIMUM", [g.const(np.float32(0.5)), x], (1, T, F)),
                lambda v: np.minimum(v, 0.5)),
    "DIV_const": (lambda g, x: g.op("DIV", [x, g.const(VEC)], (1, T, F)), lambda v: v / VEC),
    "DIV_by_data": (lambda g, x: g.op("DIV", [g.const(VEC), _pos(g, x)], (1, T, F)),
                    lambda v: VEC / (abs(v) + 1)),
    "DIV_data": (lambda g, x: g.op("DIV", [x, _pos(g, x)], (1, T, F)),
                 lambda v: v / (abs(v) + 1)),
    "SUB_from_const": (lambda g, x: g.op("SUB", [g.const(VEC), x], (1, T, F),
                                         fusedActivationFunction=3),
                       lambda v: np.clip(VEC - v, 0, 6)),
    "SQUARED_DIFFERENCE": (lambda g, x: g.op("SQUARED_DIFFERENCE", [x, g.const(VEC)],
                                             (1, T, F)), lambda v: (v - VEC) ** 2),
    "MEAN": (lambda g, x: g.op("MEAN", [x, g.ints([2])], (1, T, 1), keepDims=True),
             lambda v: v.mean(-1, keepdims=True)),
    "SUM": (lambda g, x: g.op("SUM", [x, g.ints([-1])], (1, T, 1), keepDims=True),
            lambda v: v.sum(-1, keepdims=True)),
    "REDUCE_MAX": (lambda g, x: g.op("REDUCE_MAX", [x, g.ints([-1])], (1, T, 1), keepDims=True),
                   lambda v: v.max(-1, keepdims=True)),
    "MEAN_times_vec": (lambda g, x: g.op("MUL", [g.op("MEAN", [x, g.ints([2])], (1, T, 1),
                                                      keepDims=True), g.const(VEC)], (1, T, F)),
                       lambda v: v.mean(-1, keepdims=True) * VEC),
    "PAD": (lambda g, x: g.op("PAD", [x, g.ints([[0, 0], [0, 0], [1, 2]])], (1, T, F + 3)),
            lambda v: np.pad(v, [(0, 0), (1, 2)])),
    "PADV2": (lambda g, x: g.op("PADV2", [x, g.ints([[0, 0], [0, 0], [2, 1]]),
                                          g.const(np.float32(-0.5))], (1, T, F + 3)),
              lambda v: np.pad(v, [(0, 0), (2, 1)], constant_values=-0.5)),
    "MIRROR_PAD": (lambda g, x: g.op("MIRROR_PAD", [x, g.ints([[0, 0], [0, 0], [2, 1]])],
                                     (1, T, F + 3), mode=0),
                   lambda v: np.pad(v, [(0, 0), (2, 1)], mode="reflect")),
    "BATCH_MATMUL": (lambda g, x: g.op("BATCH_MATMUL", [
        g.op("PAD", [x, g.ints([[0, 0], [0, 0], [0, 3]])], (1, T, F + 3)), g.const(MAT)],
        (1, T, 12)), lambda v: np.pad(v, [(0, 0), (0, 3)]) @ MAT),
    "FULLY_CONNECTED_RELU6": (lambda g, x: g.op("FULLY_CONNECTED", [
        x, g.const(MAT[:F].T * 4), g.const(VEC[:12])], (1, T, 12), keepNumDims=True,
        fusedActivationFunction=3), lambda v: np.clip(v @ MAT[:F] * 4 + VEC[:12], 0, 6)),
    "TRANSPOSE": (lambda g, x: g.op("TANH", [g.op("TRANSPOSE", [x, g.ints([1, 0, 2])],
                                                  (T, 1, F))], (T, 1, F)), np.tanh),
}


@pytest.fixture(scope="module")
def xs():
    return features(T, F)


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_streams_like_litert_and_its_numpy_oracle(name, xs, tmp_path):
    build, fn = CASES[name]
    g = Graph()
    x = g.input("x", (1, T, F))
    buf = g.build([x], [build(g, x)])
    (tmp_path / "m.tflite").write_bytes(buf)
    model = from_tflite(tmp_path / "m.tflite")
    stream = model.stream("exact")
    ys = np.stack([stream.step(v) for v in xs])
    ref = LiteRT(buf)(xs[None])[0].reshape(T, -1)
    want = fn(xs.astype(np.float64)).reshape(T, -1)
    scale = np.maximum(1, np.abs(want))
    assert (np.abs(ys - ref) / scale).max() <= 1e-5
    assert (np.abs(ys - want) / scale).max() <= 1e-5


@pytest.mark.parametrize(("build", "match"), [
    (lambda g, x: g.op("MIRROR_PAD", [x, g.ints([[0, 0], [0, 0], [1, 1]])], (1, T, F + 2),
                       mode=1), r"MIRROR_PAD \(operator 0\): mode SYMMETRIC"),
    (lambda g, x: g.op("PAD", [x, g.ints([[0, 0], [1, 0], [0, 0]])], (1, T + 1, F)),
     r"PAD \(operator 0\): pads axes \[1\].*supported in a sequence model: the features"),
    (lambda g, x: g.op("MAXIMUM", [x, g.const(VEC)], (1, T, F)),
     r"MAXIMUM \(operator 0\): with 20 different constants"),
    (lambda g, x: g.op("MAXIMUM", [x, g.op("ABS", [x], (1, T, F))], (1, T, F)),
     r"MAXIMUM \(operator 1\): of two data tensors"),
    (lambda g, x: g.op("TRANSPOSE", [x, g.ints([0, 2, 1])], (1, F, T)),
     r"TRANSPOSE \(operator 0\): permutation \[0, 2, 1\].*moves data"),
    (lambda g, x: g.op("AVERAGE_POOL_2D", [g.op("EXPAND_DIMS", [x, g.ints([1])],
                                                (1, 1, T, F))], (1, 1, T // 2, F),
                       filterWidth=2, filterHeight=1, strideW=2, strideH=1, padding=1),
     r"AVERAGE_POOL_2D \(operator 1\).*over time it changes the step rate"),
    (lambda g, x: g.op("ADD", [x, g.const(VEC)], (1, T, F), fusedActivationFunction=4),
     r"ADD \(operator 0\): fused activation TANH \(4\) is not supported; supported: NONE"),
    (lambda g, x: g.op("MUL", [x, g.const(R.standard_normal((1, T, 1)))], (1, T, F)),
     r"MUL \(operator 0\): a constant of shape \[1, 200, 1\] varies over time")])
def test_what_a_sequence_model_cannot_stream_is_refused_with_the_reason(build, match, tmp_path):
    g = Graph()
    x = g.input("x", (1, T, F))
    (tmp_path / "m.tflite").write_bytes(g.build([x], [build(g, x)]))
    with pytest.raises(UnsupportedOpError, match=match):
        from_tflite(tmp_path / "m.tflite")
