"""edgernn.Pool1d (an op kind in two runtime files, ops/pool1d.py and kernels/pool1d.py)
against a plain-numpy oracle written from its equations: step == run, a batch of streams
== one stream, the file round trip, bad configs refused."""

import numpy as np
import pytest

import edgernn
from edgernn.errors import ModelFormatError

F32 = np.float32


def oracle(x, func, c, k, stride=1, dilation=1, padding=(0, 0), count_include_pad=False):
    """x [T, C * L] -> [T, C * L_out], from the docstring of edgernn.kernels.pool1d."""
    t = x.shape[0]
    x = x.reshape(t, c, -1)
    length = x.shape[2]
    out = (length + sum(padding) - dilation * (k - 1) - 1) // stride + 1
    y = np.empty((t, c, out), F32)
    for o in range(out):
        pos = [o * stride + j * dilation - padding[0] for j in range(k)]
        win = x[:, :, [p for p in pos if 0 <= p < length]]
        if func == "max":
            y[:, :, o] = win.max(-1)
        else:
            n = k if count_include_pad else win.shape[-1]
            y[:, :, o] = win.sum(-1, dtype=F32) / F32(n)
    return y.reshape(t, -1)


CASES = [dict(func="max", kernel_size=2, stride=2), dict(func="max", kernel_size=3,
                                                         dilation=2, padding=(2, 1)),
         dict(func="avg", kernel_size=3, padding=(1, 1)),
         dict(func="avg", kernel_size=3, stride=2, padding=(1, 2), count_include_pad=True),
         dict(func="avg", kernel_size=5)]


@pytest.mark.parametrize("kw", CASES)
def test_pool1d_matches_the_oracle_step_run_and_batch(rng, kw):
    c, length = 3, 11
    xs = rng.normal(0, 2, (40, c * length)).astype(F32)
    x = edgernn.Input(c * length)
    op = edgernn.Pool1d(channels=c, length=length, **kw)
    m = edgernn.Model(inputs=x, outputs=op(x))
    ys = m.stream().run(xs)
    assert ys.shape == (40, c * op.out_length)
    k = dict(kw)
    want = oracle(xs, k.pop("func"), c, k.pop("kernel_size"), **k)
    if kw["func"] == "max":
        np.testing.assert_array_equal(ys, want)
    else:  # float32 sums the compiler may reassociate (kernels take fastmath reassoc)
        np.testing.assert_allclose(ys, want, rtol=1e-6, atol=1e-6)
    s = m.stream()
    np.testing.assert_array_equal(np.stack([s.step(v).copy() for v in xs]), ys)
    batch = m.streams(2)
    np.testing.assert_array_equal(np.stack([batch.step(np.stack([-v, v]))[1] for v in xs]), ys)


def test_pool1d_round_trips_through_a_file(tmp_path, rng):
    x = edgernn.Input(12)
    m = edgernn.Model(inputs=x, outputs=edgernn.Pool1d("avg", 2, 6, 3, stride=2,
                                                       padding=(1, 1),
                                                       count_include_pad=True)(x))
    edgernn.save(m, tmp_path / "p.ernn")
    xs = rng.normal(0, 1, (10, 12)).astype(F32)
    np.testing.assert_array_equal(edgernn.load(tmp_path / "p.ernn").stream().run(xs),
                                  m.stream().run(xs))


@pytest.mark.parametrize("kw, match", [
    (dict(func="min", channels=1, length=4, kernel_size=2), "Pool1d.func: expected one of"),
    (dict(func="max", channels=1, length=4, kernel_size=2, padding=(2, 0)), "Pool1d.padding"),
    (dict(func="max", channels=1, length=2, kernel_size=4), "shorter than the window"),
    (dict(func="max", channels=0, length=2, kernel_size=1), "Pool1d.channels"),
])
def test_pool1d_refuses_bad_configs(kw, match):
    with pytest.raises(ModelFormatError, match=match):
        edgernn.Pool1d(**kw)


def test_pool1d_refuses_an_input_of_another_size():
    x = edgernn.Input(10)
    with pytest.raises(ModelFormatError, match="the input has 10"):
        edgernn.Pool1d("max", 3, 4, 2)(x)
