"""The int8 oracle (tests/naive_quant.py) against hand-computed cases and against an
independent fake-quantisation formulation on top of the float oracle."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

import edgernn
from tests import naive, naive_quant


def _sig(v):
    return 1 / (1 + math.exp(-v))


def qp(mode, scales, input_scale=None, input_zero_point=0, state_scale=None,
       state_zero_point=0):
    return SimpleNamespace(mode=mode, scales=scales, input_scale=input_scale,
                           input_zero_point=input_zero_point, state_scale=state_scale,
                           state_zero_point=state_zero_point)


def qlayer(layer, weights, quant):
    """A stand-in quantised layer: the float layer's fields, int8 ``weights``, ``quant``."""
    f = {k.name: getattr(layer, k.name) for k in dataclasses.fields(layer)}
    for k in ("hidden_size", "input_size", "output_size"):
        if hasattr(layer, k):
            f[k] = getattr(layer, k)
    f.update({k: np.asarray(v, np.int8) for k, v in weights.items()})
    f["quant"] = quant
    return SimpleNamespace(kind=type(layer).__name__, **f)


def test_quantize_vector_static_rounds_half_to_even_and_saturates():
    v = np.array([0.25, 0.75, -0.25, 100.0, -100.0, 0.3], np.float32)
    q, s, zp = naive_quant.quantize_vector(v, "int8", 0.5, 0)
    assert q.tolist() == [0, 2, 0, 127, -128, 1] and s == np.float32(0.5) and zp == 0
    q, _, zp = naive_quant.quantize_vector(v, "int8", 0.5, 3)
    assert q.tolist() == [3, 5, 3, 127, -128, 4] and zp == 3


def test_quantize_vector_dynamic_scale_is_max_over_127():
    q, s, zp = naive_quant.quantize_vector(np.array([-1.0, 0.4, 0.0], np.float32),
                                           "int8-weights")
    assert s == np.float32(np.float32(1) / np.float32(127)) and zp == 0
    assert q.tolist() == [-127, 51, 0]
    q, s, _ = naive_quant.quantize_vector(np.zeros(3, np.float32), "int8-weights")
    assert s == 1 and q.tolist() == [0, 0, 0]


def test_quantize_vector_dynamic_with_zero_point_variant():
    q, s, zp = naive_quant.quantize_vector(np.array([-0.5, 2.0, 0.0], np.float32),
                                           "int8-weights", dynamic_zp=True)
    assert s == np.float32(np.float32(2.5) / np.float32(255)) and zp == -77
    assert q.tolist() == [-128, 127, -77]


def test_quantize_vector_rounds_half_away_from_zero_when_asked():
    v = np.array([0.25, -0.25, 0.75, -0.75, 0.3], np.float32)
    q, _, _ = naive_quant.quantize_vector(v, "int8", 0.5, 0)
    assert q.tolist() == [0, 0, 2, -2, 1]
    q, _, _ = naive_quant.quantize_vector(v, "int8", 0.5, 0, away=True)
    assert q.tolist() == [1, -1, 2, -2, 1]
    q, _, _ = naive_quant.quantize_vector(v, "int8", 0.5, -5, away=True)  # zp added after
    assert q.tolist() == [-4, -6, -3, -7, -4]


def test_dense_output_put_on_its_int8_grid():
    dense = edgernn.Dense(np.zeros((4, 1)), [0.26, -0.74, 10.0, 100.0])
    q = SimpleNamespace(**vars(qp("int8", {"weight": np.float32([1, 1, 1, 1])}, 1.0)),
                        output_scale=0.5, output_zero_point=1)
    layer = qlayer(dense, {"weight": np.zeros((4, 1))}, q)
    # y / 0.5 = [0.52, -1.48, 20, 200] -> rint + 1 = [2, 0, 21, 201 -> 127]; - 1, * 0.5
    y = naive_quant.step(layer, np.array([0.0]), {})
    np.testing.assert_array_equal(y, [0.5, -0.5, 10.0, 63.0])


def test_dense_static_with_zero_point_hand_case():
    dense = edgernn.Dense(np.zeros((2, 2)), [0.5, -1.0])
    layer = qlayer(dense, {"weight": [[10, -20], [127, 0]]},
                   qp("int8", {"weight": np.float32([0.5, 0.25])}, 0.125, 3))
    # x / 0.125 = [2, -4] -> q = [5, -1]; q - zp = [2, -4]; acc = [100, 254]
    y = naive_quant.step(layer, np.array([0.25, -0.5]), {})
    np.testing.assert_allclose(y, [100 * 0.0625 + 0.5, 254 * 0.03125 - 1.0], rtol=0, atol=0)


def test_dense_dynamic_hand_case():
    dense = edgernn.Dense(np.zeros((2, 2)), activation="tanh")
    layer = qlayer(dense, {"weight": [[1, 2], [3, -1]]},
                   qp("int8-weights", {"weight": np.float32([0.5, 0.25])}))
    y = naive_quant.step(layer, np.array([-1.0, 0.4]), {})  # q = [-127, 51]
    np.testing.assert_allclose(y, np.tanh([-25 * 0.5 / 127, -432 * 0.25 / 127]), rtol=1e-6)


def test_lstm_one_unit_two_steps_hand_case():
    lstm = edgernn.LSTM(np.zeros((4, 1)), np.zeros((4, 1)), [0.125, 0, 0, 0])
    layer = qlayer(lstm, {"weight_ih": [[2], [4], [-6], [8]], "weight_hh": [[1], [1], [1], [1]]},
                   qp("int8", {"weight_ih": np.float32([0.25] * 4),
                               "weight_hh": np.float32([0.5] * 4)}, 0.5, 0, 1 / 128, 0))
    st = {}
    h1 = naive_quant.step(layer, np.array([1.0]), st)[0]     # x_q = 2, h = 0
    i, f, g, o = _sig(0.625), _sig(1.0), math.tanh(-1.5), _sig(2.0)
    c1 = i * g
    assert h1 == pytest.approx(o * math.tanh(c1), abs=1e-12)
    h2 = naive_quant.step(layer, np.array([-0.5]), st)[0]    # x_q = -1
    gh = round(h1 * 128) * 0.5 / 128
    i, f, g, o = (_sig(-0.125 + gh), _sig(-0.5 + gh), math.tanh(0.75 + gh), _sig(-1 + gh))
    c2 = f * c1 + i * g
    assert h2 == pytest.approx(o * math.tanh(c2), abs=1e-12)
    assert st["c"][0] == pytest.approx(c2, abs=1e-12)


@pytest.mark.parametrize("lbr", [True, False])
def test_gru_one_unit_two_steps_hand_case(lbr):
    gru = edgernn.GRU(np.zeros((3, 1)), np.zeros((3, 1)), [0, 0, 0.25], [0.5, -0.5, 0.75],
                      linear_before_reset=lbr)
    layer = qlayer(gru, {"weight_ih": [[4], [-4], [8]], "weight_hh": [[2], [6], [-3]]},
                   qp("int8", {"weight_ih": np.float32([0.25] * 3),
                               "weight_hh": np.float32([0.5] * 3)}, 0.25, -1, 1 / 64, 2))
    # x = 0.5 -> rint(2) - 1 = 1, q - zp = 2
    x_r, x_z, x_n = 2 * 4 * 0.0625, 2 * -4 * 0.0625, 2 * 8 * 0.0625 + 0.25
    r, z = _sig(x_r + 0.5), _sig(x_z - 0.5)
    n = math.tanh(x_n + r * 0.75 if lbr else x_n + 0.75)   # h = 0: products vanish
    h1 = (1 - z) * n
    st = {}
    assert naive_quant.step(layer, np.array([0.5]), st)[0] == pytest.approx(h1, abs=1e-12)
    # second step, x = -0.25 -> rint(-1) - 1 = -2, q - zp = -1
    x_r, x_z, x_n = -4 * 0.0625, 4 * 0.0625, -8 * 0.0625 + 0.25

    def hq(v):  # static state quantisation, scale 1/64, zp 2 (dequantised)
        return (max(-128, min(127, round(v * 64) + 2)) - 2) / 64

    r = _sig(x_r + 2 * 0.5 * hq(h1) + 0.5)
    z = _sig(x_z + 6 * 0.5 * hq(h1) - 0.5)
    if lbr:
        n = math.tanh(x_n + r * (-3 * 0.5 * hq(h1) + 0.75))
    else:
        n = math.tanh(x_n + -3 * 0.5 * hq(r * h1) + 0.75)
    h2 = (1 - z) * n + z * h1
    assert naive_quant.step(layer, np.array([-0.25]), st)[0] == pytest.approx(h2, abs=1e-12)


# --- against fake quantisation on top of the float oracle ----------------------------

def _quantise_weights(w):
    s = (np.abs(w).max(axis=1) / 127).astype(np.float32)
    return np.clip(np.rint(w / s[:, None]), -127, 127).astype(np.int8), s


def _fq(v, mode, scale, zp):
    q, s, zp = naive_quant.quantize_vector(v, mode, scale, zp)
    return (q - zp) * np.float64(s)


LAYERS = {
    "dense-relu": lambda r: edgernn.Dense(r.normal(0, .5, (5, 6)), r.normal(0, .1, 5), "relu"),
    "rnn-relu-clip": lambda r: edgernn.RNN(r.normal(0, .5, (7, 6)), r.normal(0, .3, (7, 7)),
                                           r.normal(0, .1, 7), None, "relu", clip=2.0),
    "rnn-tanh": lambda r: edgernn.RNN(r.normal(0, .5, (7, 6)), r.normal(0, .5, (7, 7))),
    "lstm-all-options": lambda r: edgernn.LSTM(
        r.normal(0, .5, (20, 6)), r.normal(0, .5, (20, 5)), r.normal(0, .1, 20),
        r.normal(0, .1, 20), peephole=r.normal(0, .3, (3, 5)), cell_clip=1.5, clip=3.0,
        activations=("hard_sigmoid", "softsign", "tanh")),
    "lstm-input-forget": lambda r: edgernn.LSTM(
        r.normal(0, .5, (20, 6)), r.normal(0, .5, (20, 5)), input_forget=True),
}


@pytest.mark.parametrize("mode", ["int8", "int8-weights"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_oracle_equals_float_oracle_on_fake_quantised_inputs(name, mode):
    """Quantised step == float step of dequantised weights on fake-quantised x and h."""
    rng = np.random.default_rng(len(name))
    layer = LAYERS[name](rng)
    names = [k for k in ("weight", "weight_ih", "weight_hh") if hasattr(layer, k)]
    wq = {k: _quantise_weights(getattr(layer, k)) for k in names}
    quant = qp(mode, {k: s for k, (_, s) in wq.items()}, 0.03, -7, 1 / 120, 3)
    if mode == "int8-weights":
        quant = qp(mode, quant.scales)
    ql = qlayer(layer, {k: q for k, (q, _) in wq.items()}, quant)
    deq = dataclasses.replace(layer, **{k: q.astype(np.float64) * s[:, None]
                                        for k, (q, s) in wq.items()})
    xs = rng.normal(0, 1.2, (40, layer.input_size))
    st_q, st_f = {}, {}
    for x in xs:
        y = naive_quant.step(ql, x, st_q)
        fx = _fq(x, mode, 0.03, -7)
        if "h" in st_f:
            st_f["h"] = _fq(st_f["h"], mode, 1 / 120, 3)
        y_ref = naive.step(deq, fx, st_f)
        np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-6)
        if "h" in st_q:
            st_f["h"] = st_q["h"].copy()  # the float h, re-quantised at the next step


def test_flip_bound_is_one_step_of_one_input():
    w = np.array([[3, -127], [0, 1]], np.int8)
    b = naive_quant.flip_bound(w, np.float32([0.5, 2.0]), 0.25)
    np.testing.assert_allclose(b, [127 * 0.5 * 0.25, 1 * 2.0 * 0.25])
