"""edgernn.Unary's erf, sign and rounding functions against a plain-numpy oracle written
from their equations: step == run, a batch of streams == one stream, the file round trip,
bad configs refused."""

import math

import numpy as np
import pytest

import edgernn
from edgernn.errors import ModelFormatError

F32 = np.float32


def oracle(func, x):
    """The equations of edgernn.kernels.unary in numpy (float32 in and out)."""
    if func == "erf":
        return np.array([math.erf(float(v)) for v in x.reshape(-1)], F32).reshape(x.shape)
    return {"sign": np.sign, "floor": np.floor, "ceil": np.ceil, "round": np.round}[func](x)


@pytest.mark.parametrize("func", ["erf", "sign", "floor", "ceil", "round"])
def test_unary_matches_the_oracle_step_run_and_batch(rng, func):
    xs = rng.normal(0, 3, (60, 9)).astype(F32)
    xs[0] = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.0, 1e-30, -8e6 - 0.5]  # halves to even
    x = edgernn.Input(9)
    m = edgernn.Model(inputs=x, outputs=edgernn.Unary(func)(x))
    ys = m.stream().run(xs)
    # erf: the kernel's and Python's math.erf may round apart by one ulp; the rest exact
    np.testing.assert_allclose(ys, oracle(func, xs), rtol=2.5e-7 if func == "erf" else 0,
                               atol=0)
    s = m.stream()
    np.testing.assert_array_equal(np.stack([s.step(v).copy() for v in xs]), ys)
    batch = m.streams(2)
    got = np.stack([batch.step(np.stack([v, -v]))[0] for v in xs])
    np.testing.assert_array_equal(got, ys)


def test_unary_passes_infinities_and_nan_and_counts_the_step():
    x = edgernn.Input(3)
    m = edgernn.Model(inputs=x, outputs=edgernn.Unary("erf")(x))
    s = m.stream()
    y = s.step(np.array([np.inf, -np.inf, 0.0], F32))
    assert list(y) == [1.0, -1.0, 0.0] and s.nonfinite_steps == 0
    y = edgernn.Model(inputs=x, outputs=edgernn.Unary("floor")(x)).stream()
    assert np.isnan(y.step(np.array([np.nan, 1.5, -1.5], F32))[0]) and y.nonfinite_steps == 1


def test_unary_round_trips_through_a_file(tmp_path, rng):
    x = edgernn.Input(4)
    m = edgernn.Model(inputs=x, outputs=edgernn.Unary("round")(x))
    edgernn.save(m, tmp_path / "p.ernn")
    xs = rng.normal(0, 3, (20, 4)).astype(F32)
    np.testing.assert_array_equal(edgernn.load(tmp_path / "p.ernn").stream().run(xs),
                                  m.stream().run(xs))


def test_unary_refuses_an_unknown_function():
    with pytest.raises(ModelFormatError, match="Unary.func: expected one of"):
        edgernn.Unary("gelu")
