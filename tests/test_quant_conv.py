"""int8 causal convolutions: the engine against the plain-numpy oracle of the int8
arithmetic (tests/naive_quant.py: the window of K frames is one product's input), and
the quantiser (data-free and calibrated) turning a convolution's weights into int8."""

import dataclasses

import numpy as np
import pytest

import edgernn
from converters import quantize
from edgernn import QuantParams
from tests import naive
from tests import naive_quant as nq
from tests.int8_ops import q8, quantized
from tests.test_quant_engine import MODES, matches_the_oracle


def _r(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _convs(rng):
    return [
        edgernn.CausalConv1d(_r(rng, 16, 6, 3), _r(rng, 16), dilation=2, activation="tanh"),
        edgernn.CausalConv1d(_r(rng, 16, 4, 2), None, groups=4, activation="relu"),
        edgernn.GRU(_r(rng, 36, 16), _r(rng, 36, 12), _r(rng, 36), _r(rng, 36)),
        edgernn.CausalConv1d(_r(rng, 5, 12, 1), _r(rng, 5)),
    ]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_int8_causal_convolutions_match_the_oracle(rng, mode):
    name, kw = MODES[mode]
    model = edgernn.Model([quantized(op, name, **kw) for op in _convs(rng)])
    assert all(op.quant is not None for op in model.layers)
    matches_the_oracle(model, _r(rng, 80, 6, scale=1.5))


def test_quantize_makes_convolutions_int8_without_data_and_with_it(rng, tmp_path):
    model = edgernn.Model(_convs(rng))
    xs = _r(rng, 200, 6, scale=1)
    ref = naive.run(model, xs)
    q = quantize(model, mode="int8-weights", min_macs=0, progress=False)
    for op in q.layers:
        assert op.quant is not None and op.quant.mode == "int8-weights"
    conv = q.layers[0]
    assert conv.weight.dtype == np.int8 and conv.weight.shape == (16, 6, 3)
    ys = q.stream().run(xs)
    np.testing.assert_allclose(ys, nq.run(q, xs), atol=5e-3, rtol=0)
    err = np.abs(ys - ref).max()
    assert 0 < err < 0.05 * np.abs(ref).max(), err
    q.save(tmp_path / "q.ernn")
    again = edgernn.load(tmp_path / "q.ernn")
    np.testing.assert_array_equal(again.stream().run(xs), ys)
    big = edgernn.Model([edgernn.CausalConv1d(_r(rng, 64, 64, 3), _r(rng, 64))])
    big.save(tmp_path / "f.ernn")
    quantize(big, mode="int8-weights", min_macs=0, progress=False).save(tmp_path / "b.ernn")
    ratio = (tmp_path / "b.ernn").stat().st_size / (tmp_path / "f.ernn").stat().st_size
    assert ratio < 0.35, ratio   # 48 KB of float32 weights against 12 KB of int8 + scales
    static = quantize(model, calibration=xs, mode="int8", min_macs=0, progress=False)
    assert static.layers[0].quant.mode == "int8" and static.layers[0].quant.input_scale > 0
    ys8 = static.stream().run(xs)
    np.testing.assert_allclose(ys8, nq.run(static, xs), atol=5e-3, rtol=0)
    assert np.abs(ys8 - ref).max() < 0.1 * np.abs(ref).max()


def test_bad_int8_convolution_weights_are_refused(rng):
    conv = edgernn.CausalConv1d(_r(rng, 4, 3, 2))
    w, s = q8(conv.weight)
    with pytest.raises(edgernn.ModelFormatError, match="only a Dense re-quantises"):
        dataclasses.replace(conv, weight=w, quant=QuantParams(
            "int8", {"weight": s}, input_scale=0.1, output_scale=0.05))
    with pytest.raises(edgernn.ModelFormatError, match="4 rows but 3 scales"):
        dataclasses.replace(conv, weight=w, quant=QuantParams("int8-weights", {"weight": s[:3]}))
    with pytest.raises(edgernn.ModelFormatError, match="int8 array"):
        dataclasses.replace(conv, weight=w.astype(np.int16),
                            quant=QuantParams("int8-weights", {"weight": s}))


def _within(rng):
    """Convolutions within a step over a [4, 12] input (Silero VAD's kind), then a GRU."""
    return [
        edgernn.Conv1d(_r(rng, 8, 4, 3), _r(rng, 8), length=12, stride=2, padding=(1, 2),
                       activation="relu"),
        edgernn.Conv1d(_r(rng, 6, 8, 2), None, length=7, dilation=2),
        edgernn.GRU(_r(rng, 15, 30), _r(rng, 15, 5), _r(rng, 15), _r(rng, 15)),
    ]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_int8_convolutions_within_a_step_match_the_oracle(rng, mode):
    name, kw = MODES[mode]
    model = edgernn.Model([quantized(op, name, **kw) for op in _within(rng)])
    matches_the_oracle(model, _r(rng, 40, 48, scale=1.5))


def test_int8_convolution_within_a_step_round_trips_a_file(rng, tmp_path):
    model = edgernn.Model([quantized(op, "int8-weights", dynamic_zero_point=True)
                           for op in _within(rng)])
    model.save(tmp_path / "q.ernn")
    again = edgernn.load(tmp_path / "q.ernn")
    assert again.layers[0].weight.dtype == np.int8 and again.layers[0].quant is not None
    xs = _r(rng, 30, 48, scale=1)
    np.testing.assert_array_equal(again.stream().run(xs), model.stream().run(xs))


@pytest.mark.parametrize("calibrated", [False, True])
def test_quantize_keeps_a_grouped_convolution_float_and_says_why(rng, calibrated):
    model = edgernn.Model([*_within(rng)[:2],
                           edgernn.Conv1d(_r(rng, 6, 2, 3), None, length=5, groups=3)])
    data = _r(rng, 30, 48, scale=1) if calibrated else None
    with pytest.warns(UserWarning, match="groups"):
        q = quantize(model, calibration=data, mode="int8-weights", min_macs=0, progress=False)
    assert [op.quant is not None for op in q.layers] == [True, True, False]
    xs = _r(rng, 30, 48, scale=1)
    np.testing.assert_allclose(q.stream().run(xs), nq.run(q, xs), atol=5e-3, rtol=0)
    conv = model.layers[2]
    w, s = q8(conv.weight)
    with pytest.raises(edgernn.ModelFormatError, match="groups 1"):
        dataclasses.replace(conv, weight=w, quant=QuantParams("int8-weights", {"weight": s}))
