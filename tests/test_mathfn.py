"""Fast transcendental approximations stay within their documented error."""

import numpy as np

import edgernn


def _act_model(name, n):
    return edgernn.Model([edgernn.Dense(np.eye(n, dtype=np.float32), activation=name)])


def test_fast_tanh_and_sigmoid_error_bounds():
    x = np.linspace(-20, 20, 400_001).astype(np.float32)
    ref_t = np.tanh(x.astype(np.float64))
    ref_s = 1 / (1 + np.exp(-x.astype(np.float64)))
    n = 1001
    xs = x[: (x.size // n) * n].reshape(-1, n)
    for name, ref, bound in (("tanh", ref_t, 3e-7), ("sigmoid", ref_s, 1.5e-7)):
        fast = _act_model(name, n).stream().run(xs).ravel()
        exact = _act_model(name, n).stream(math="exact").run(xs).ravel()
        r = ref[: fast.size]
        assert np.abs(fast - r).max() < bound, (name, np.abs(fast - r).max())
        assert np.abs(exact - r).max() < 1e-7
    sat = _act_model("tanh", 3).stream().run(np.array([[30, -30, 0]], np.float32))
    np.testing.assert_allclose(sat, [[1, -1, 0]], atol=3e-7)
    assert np.abs(sat).max() <= 1
