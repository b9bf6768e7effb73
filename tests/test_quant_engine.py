"""int8 ops in the engine against the plain-numpy oracle of edgernn.ir.quant's arithmetic."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import edgernn
from edgernn import QuantParams
from tests import naive_quant as nq
from tests.helpers import int8_paths_here
from tests.int8_ops import q8, quantized


def _r(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


MODES = {
    "dynamic": ("int8-weights", {}),
    "dynamic_zp": ("int8-weights", {"dynamic_zero_point": True}),
    "static": ("int8", {"input_scale": 0.02, "input_zero_point": 3, "state_scale": 1 / 127}),
    "dynamic_zp_half_away": ("int8-weights", {"dynamic_zero_point": True,
                                              "round_half_away": True}),
}


def _layers(rng, I=10, H=24):
    return [
        edgernn.LSTM(_r(rng, 4 * H, I), _r(rng, 4 * H, H), _r(rng, 4 * H), _r(rng, 4 * H)),
        edgernn.GRU(_r(rng, 3 * H, H), _r(rng, 3 * H, H), _r(rng, 3 * H), _r(rng, 3 * H)),
        edgernn.GRU(_r(rng, 3 * H, H), _r(rng, 3 * H, H), _r(rng, 3 * H), None,
                    linear_before_reset=False, clip=2.0),
        edgernn.LSTM(_r(rng, 4 * H, H), _r(rng, 4 * H, H), None, _r(rng, 4 * H),
                     peephole=_r(rng, 3, H), cell_clip=1.5),
        edgernn.RNN(_r(rng, H, H), _r(rng, H, H), _r(rng, H), nonlinearity="relu"),
        edgernn.Dense(_r(rng, 6, H), _r(rng, 6), "tanh"),
    ]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_int8_ops_match_the_oracle(rng, mode):
    name, kw = MODES[mode]
    model = edgernn.Model([quantized(la, name, **kw) for la in _layers(rng)])
    matches_the_oracle(model, _r(rng, 60, 10, scale=1.5))


def matches_the_oracle(model, xs):
    """``model`` (int8 ops) against tests/naive_quant.py over ``xs``; step == run, and a
    stream in a batch of three == alone, bit for bit."""
    ys = model.stream().run(xs)
    ref = nq.run(model, xs)
    # integer products are exact; the rest is float32 against float64, and a state
    # vector that lands on a rounding threshold may flip one quantisation step
    np.testing.assert_allclose(ys[:5], ref[:5], atol=2e-6, rtol=0)
    np.testing.assert_allclose(ys, ref, atol=5e-3, rtol=0)
    assert np.abs(ys - ref).mean() < 1e-5
    s = model.stream()
    np.testing.assert_array_equal(np.stack([s.step(x) for x in xs]), ys)
    batch = model.streams(3)
    X = np.stack([xs, xs[::-1], xs * 0.5], axis=1)
    np.testing.assert_array_equal(batch.run(np.ascontiguousarray(X))[:, 0], ys)


def test_requantised_dense_output_matches_the_oracle(rng):
    dense = edgernn.Dense(_r(rng, 7, 12), _r(rng, 7), "tanh")
    q = quantized(dense, "int8", input_scale=0.05, input_zero_point=-2, output_scale=1 / 100,
                  output_zero_point=5)
    model = edgernn.Model([q])
    xs = _r(rng, 50, 12, scale=2)
    ys = model.stream().run(xs)
    np.testing.assert_allclose(ys, nq.run(model, xs), atol=1e-6, rtol=0)
    grid = np.rint(ys * 100) / 100  # every output sits on the int8 grid
    np.testing.assert_allclose(ys, grid, atol=1e-6)


def test_int8_model_round_trips_and_is_about_a_quarter_of_the_float_file(rng, tmp_path):
    float_model = edgernn.Model([edgernn.GRU(_r(rng, 288, 42), _r(rng, 288, 96), _r(rng, 288),
                                             _r(rng, 288)),
                                 edgernn.Dense(_r(rng, 22, 96), _r(rng, 22), "sigmoid")])
    model = edgernn.Model([quantized(la, "int8-weights") for la in float_model.layers])
    float_model.save(tmp_path / "f.ernn")
    model.save(tmp_path / "q.ernn")
    again = edgernn.load(tmp_path / "q.ernn")
    assert again.layers[0].weight_ih.dtype == np.int8
    xs = _r(rng, 100, 42, scale=1)
    np.testing.assert_array_equal(again.stream().run(xs), model.stream().run(xs))
    ratio = (tmp_path / "q.ernn").stat().st_size / (tmp_path / "f.ernn").stat().st_size
    assert ratio < 0.3, ratio  # 40 kB of int8 weights plus per-entry overheads


@pytest.mark.parametrize("bad,match", [
    (lambda la, s: QuantParams("int4", s), "mode"),
    (lambda la, s: QuantParams("int8", s), "input_scale: required"),
    (lambda la, s: QuantParams("int8-weights", {"weight_ih": s["weight_ih"]}),
     "exactly"),
    (lambda la, s: QuantParams("int8-weights", {**s, "weight_ih": s["weight_ih"][:3]}),
     "scales"),
    (lambda la, s: QuantParams("int8-weights", s, input_zero_point=300), "zero_point"),
])
def test_bad_quant_params_are_refused(rng, bad, match):
    gru = edgernn.GRU(_r(rng, 12, 3), _r(rng, 12, 4))
    w = {f: q8(getattr(gru, f)) for f in gru.quantizable}
    scales = {f: v[1] for f, v in w.items()}
    with pytest.raises(edgernn.ModelFormatError, match=match):
        dataclasses.replace(gru, weight_ih=w["weight_ih"][0], weight_hh=w["weight_hh"][0],
                            quant=bad(gru, scales))


@pytest.mark.parametrize("forced", [p for p in int8_paths_here()
                                    if p in ("generic", "avx2", "neon", "neon-ir")])
def test_every_int8_path_gives_the_same_bits(rng, tmp_path, forced):
    """The machine's own int8 path and each forced one this CPU runs (the portable IR;
    AVX2's vpmaddwd where the CPU has AVX2; ARMv8.0's smull/sadalp on aarch64, and the
    same arithmetic in portable IR on any CPU) compute the same integers
    (``bench/aarch64_check.sh`` runs this test on emulated aarch64 CPUs)."""
    model = edgernn.Model([quantized(la, "int8-weights", dynamic_zero_point=True)
                           for la in _layers(rng)])
    model.save(tmp_path / "q.ernn")
    xs = _r(rng, 80, 10, scale=1.5)
    np.save(tmp_path / "xs.npy", xs)
    code = ("import sys, numpy as np, edgernn; from edgernn.kernels import tile_i8; "
            "m = edgernn.load(sys.argv[1]); np.save(sys.argv[3], m.stream().run("
            "np.load(sys.argv[2]))); print(tile_i8.path())")
    env = dict(os.environ, EDGERNN_INT8_PATH=forced)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "q.ernn"),
                          str(tmp_path / "xs.npy"), str(tmp_path / "ys.npy")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == forced
    np.testing.assert_array_equal(np.load(tmp_path / "ys.npy"), model.stream().run(xs))
