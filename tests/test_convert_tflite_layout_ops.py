"""converters.tflite walking a graph called once per step (``input_shapes=``) whose
values change layout: a channels-last multi-channel CONV_2D input, a dilated SAME
DEPTHWISE_CONV_2D, PADV2 and AVERAGE_POOL_2D (SAME) on the length, FULLY_CONNECTED
and BATCH_MATMUL on rows, GELU, a TRANSPOSE folded away, MEAN/REDUCE_MAX/SUM over
different axes, CONCATENATION -- 200 windows of real speech features against LiteRT
and a plain-numpy oracle; a transpose that would move data is refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

from converters import from_tflite
from edgernn.errors import UnsupportedOpError
from tests.test_convert_tflite_seq_ops import features
from tests.tflite_build import Graph, LiteRT

L, C, O1, O2, N = 8, 20, 16, 12, 6
STEPS = 200


def weights(seed=4):
    r = np.random.default_rng(seed)

    def w(*shape, s=0.3):
        return (r.standard_normal(shape) * s).astype(np.float32)
    return {"c1": w(O1, 1, 3, C, s=0.1), "c1_b": w(O1), "dw": w(1, 1, 3, O1), "dw_b": w(O1),
            "fc": w(O2, O1), "fc_b": w(O2), "mm": w(C, N)}


def windowed(w) -> bytes:
    g = Graph()
    x = g.input("window", (1, L, C))
    e = g.op("EXPAND_DIMS", [x, g.ints([1])], (1, 1, L, C))
    y = g.op("CONV_2D", [e, g.const(w["c1"]), g.const(w["c1_b"])], (1, 1, L, O1), padding=0,
             strideW=1, strideH=1, fusedActivationFunction=1)
    y = g.op("DEPTHWISE_CONV_2D", [y, g.const(w["dw"]), g.const(w["dw_b"])], (1, 1, L, O1),
             padding=0, strideW=1, strideH=1, dilationWFactor=2, dilationHFactor=1,
             depthMultiplier=1)
    y = g.op("PADV2", [y, g.ints([[0, 0], [0, 0], [1, 1], [0, 0]]), g.const(np.float32(0))],
             (1, 1, L + 2, O1))
    y = g.op("AVERAGE_POOL_2D", [y], (1, 1, 5, O1), padding=0, strideW=2, strideH=1,
             filterWidth=3, filterHeight=1)
    y = g.op("FULLY_CONNECTED", [y, g.const(w["fc"]), g.const(w["fc_b"])], (1, 1, 5, O2),
             keepNumDims=True)
    y = g.op("GELU", [y], (1, 1, 5, O2), approximate=False)
    tr = g.op("TRANSPOSE", [y, g.ints([0, 1, 3, 2])], (1, 1, O2, 5))
    r1 = g.op("MEAN", [tr, g.ints([3])], (1, 1, O2), keepDims=False)
    r2 = g.op("REDUCE_MAX", [y, g.ints([2])], (1, 1, O2), keepDims=False)
    bm = g.op("BATCH_MATMUL", [x, g.const(w["mm"])], (1, L, N))
    r3 = g.op("SUM", [bm, g.ints([1])], (1, N), keepDims=False)
    parts = [g.op("RESHAPE", [r, g.ints([1, O2])], (1, O2)) for r in (r1, r2)]
    out = g.op("CONCATENATION", [*parts, r3], (1, 2 * O2 + N), name_out="summary", axis=1)
    return g.build([x], [out])


def oracle(w, x):
    """One window x [L, C] in float64."""
    def conv(v, k, pad, dil):                       # v [L, Cin], k [O, K, Cin]
        v = np.vstack([np.zeros((pad, v.shape[1])), v, np.zeros((pad, v.shape[1]))])
        span = dil * (k.shape[1] - 1) + 1
        return np.stack([np.einsum("okc,kc->o", k, v[j:j + span:dil])
                         for j in range(len(v) - span + 1)])
    y = np.maximum(conv(x, w["c1"][:, 0], 1, 1) + w["c1_b"], 0)
    dw = w["dw"][0, 0]
    yp = np.vstack([np.zeros((2, O1)), y, np.zeros((2, O1))])
    y = np.stack([(dw * yp[j:j + 5:2]).sum(0) for j in range(L)]) + w["dw_b"]
    y = np.vstack([np.zeros((1, O1)), y, np.zeros((1, O1))])      # PADV2: zeros, counted
    y = np.stack([y[j * 2:j * 2 + 3].mean(0) for j in range(5)])  # SAME: 0 before, 1 after
    y = y @ w["fc"].T + w["fc_b"]
    y = 0.5 * y * (1 + erf(y / math.sqrt(2)))
    return np.concatenate([y.mean(0), y.max(0), (x @ w["mm"]).sum(0)])


def test_layouts_fold_and_stream_within_1e5_of_litert_and_the_numpy_oracle(tmp_path):
    w = weights()
    buf = windowed(w)
    (tmp_path / "m.tflite").write_bytes(buf)
    model = from_tflite(tmp_path / "m.tflite", input_shapes={"window": (1, L, C)})
    kinds = [type(op).__name__ for op in model.layers]
    assert kinds.count("Conv1d") >= 3 and "Pool1d" in kinds and "Pad" in kinds, kinds
    f = features(STEPS + L, C)
    xs = np.stack([f[k:k + L] for k in range(STEPS)])
    rt = LiteRT(buf)
    ref = np.stack([rt(x[None])[0][0] for x in xs])
    stream = model.stream("exact")
    ys = np.stack([stream.step(x.reshape(-1)) for x in xs])
    want = np.stack([oracle(w, x.astype(np.float64)) for x in xs])
    assert np.abs(want).max() > 1
    assert np.abs(ys - ref).max() <= 1e-5 * np.abs(want).max()
    assert np.abs(ys - want).max() <= 1e-5 * np.abs(want).max()


def test_a_transpose_that_moves_data_is_refused_naming_the_operator(tmp_path):
    g = Graph()
    x = g.input("window", (1, L, C))
    t = g.op("TRANSPOSE", [x, g.ints([0, 2, 1])], (1, C, L))
    y = g.op("PAD", [t, g.ints([[0, 0], [0, 0], [1, 1]])], (1, C, L + 2))
    (tmp_path / "m.tflite").write_bytes(g.build([x], [y]))
    with pytest.raises(UnsupportedOpError, match=r"PAD \(operator 1\): reads its operand in an "
                                                 r"order 160 pieces apart.*transpose"):
        from_tflite(tmp_path / "m.tflite", input_shapes={"window": (1, L, C)})


@pytest.mark.parametrize(("build", "match"), [
    (lambda g, x: g.op("PAD", [x, g.ints([[0, 0], [1, 1], [1, 1]])], (1, L + 2, C + 2)),
     r"PAD \(operator 0\): pads 2 axes \[1, 2\].*one axis per PAD"),
    (lambda g, x: g.op("MIRROR_PAD", [x, g.ints([[0, 0], [0, 0], [1, 1]])], (1, L, C + 2),
                       mode=1), r"MIRROR_PAD \(operator 0\): mode SYMMETRIC"),
    (lambda g, x: g.op("CONV_2D", [g.op("RESHAPE", [x, g.ints([1, L, C, 1])], (1, L, C, 1)),
                                   g.const(np.ones((2, 3, 3, 1))), g.const(np.zeros(2))],
                       (1, L - 2, C - 2, 2), padding=1, strideW=1, strideH=1),
     r"CONV_2D \(operator 1\): a 2-D convolution of \[1, 8, 20, 1\] by a kernel \[3, 3\]"),
    (lambda g, x: g.op("MUL", [g.op("MEAN", [x, g.ints([2])], (1, L, 1), keepDims=True),
                               g.op("MEAN", [x, g.ints([1])], (1, 1, C), keepDims=True)],
                       (1, L, C)),
     r"MUL \(operator 2\): broadcasts data \[1, 8, 1\] with data \[1, 1, 20\]; supported: "
     r"one operand of the output's shape"),
    (lambda g, x: g.op("SIN", [x], (1, L, C)),
     r"operator SIN \(index 0\) is not supported in a graph walked step by step; "
     r"supported: .*CONV_2D")])
def test_what_the_walk_cannot_express_is_refused_naming_operator_and_reason(build, match,
                                                                           tmp_path):
    g = Graph()
    x = g.input("window", (1, L, C))
    (tmp_path / "m.tflite").write_bytes(g.build([x], [build(g, x)]))
    with pytest.raises(UnsupportedOpError, match=match):
        from_tflite(tmp_path / "m.tflite", input_shapes={"window": (1, L, C)})


def test_data_broadcast_over_data_in_either_layout_streams_like_litert(tmp_path):
    w = weights(5)
    g = Graph()
    x = g.input("window", (1, L, C))
    e = g.op("MEAN", [g.op("MUL", [x, x], (1, L, C)), g.ints([2])], (1, L, 1), keepDims=True)
    y = g.op("DIV", [x, g.op("ADD", [e, g.const(np.float32(1))], (1, L, 1))], (1, L, C))
    y = g.op("CONV_2D", [g.op("EXPAND_DIMS", [y, g.ints([1])], (1, 1, L, C)),
                         g.const(w["c1"]), g.const(w["c1_b"])], (1, 1, L, O1), padding=0,
             strideW=1, strideH=1)
    peak = g.op("REDUCE_MAX", [y, g.ints([3])], (1, 1, L, 1), keepDims=True)
    y = g.op("MEAN", [g.op("SUB", [y, peak], (1, 1, L, O1)), g.ints([2])], (1, 1, O1),
             keepDims=False)
    buf = g.build([x], [g.op("RESHAPE", [y, g.ints([1, O1])], (1, O1))])
    (tmp_path / "m.tflite").write_bytes(buf)
    model = from_tflite(tmp_path / "m.tflite", input_shapes={"window": (1, L, C)})
    assert [type(op).__name__ for op in model.layers].count("Dense") == 2
    f = features(STEPS + L, C)
    xs = np.stack([f[k:k + L] for k in range(STEPS)])
    rt, stream = LiteRT(buf), model.stream("exact")
    ref = np.stack([rt(v[None])[0][0] for v in xs])
    ys = np.stack([stream.step(v.reshape(-1)) for v in xs])
    want = []
    for v in xs.astype(np.float64):
        v = v / ((v * v).mean(1, keepdims=True) + 1)
        v = np.vstack([np.zeros((1, C)), v, np.zeros((1, C))])
        c = np.stack([np.einsum("okc,kc->o", w["c1"][:, 0], v[j:j + 3])
                      for j in range(L)]) + w["c1_b"]
        want.append((c - c.max(1, keepdims=True)).mean(0))
    assert np.abs(ys - ref).max() <= 1e-5 and np.abs(ys - np.array(want)).max() <= 1e-5


@pytest.mark.parametrize(("name", "fn"), [
    ("SOFTMAX", lambda v: np.exp(v - v.max()) / np.exp(v - v.max()).sum()),
    ("LOG_SOFTMAX", lambda v: v - v.max() - np.log(np.exp(v - v.max()).sum())),
    ("L2_NORMALIZATION", lambda v: v / max(np.sqrt((v * v).sum()), 1e-6))])
def test_vector_activation_of_a_reduced_window_streams_like_litert(name, fn, tmp_path):
    g = Graph()
    x = g.input("window", (1, L, C))
    y = g.op(name, [g.op("MEAN", [x, g.ints([1])], (1, C), keepDims=False)], (1, C),
             **({"beta": 1.0} if name == "SOFTMAX" else {}))
    buf = g.build([x], [y])
    (tmp_path / "m.tflite").write_bytes(buf)
    model = from_tflite(tmp_path / "m.tflite", input_shapes={"window": (1, L, C)})
    f = features(STEPS + L, C)
    xs = np.stack([f[k:k + L] for k in range(STEPS)])
    rt, stream = LiteRT(buf), model.stream("exact")
    ref = np.stack([rt(v[None])[0][0] for v in xs])
    ys = np.stack([stream.step(v.reshape(-1)) for v in xs])
    want = np.stack([fn(v.astype(np.float64).mean(0)) for v in xs])
    assert np.abs(ys - ref).max() <= 1e-5 and np.abs(ys - want).max() <= 1e-5
