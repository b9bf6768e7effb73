"""The float tiles of ``edgernn.kernels.tile``: a batch's two-stream tile (half of a 32-row
panel per call) sums as the one-stream tile does, bit for bit, and as numpy's float64
product, within float32 rounding."""

import numpy as np
import pytest
from numba import njit

from edgernn.kernels.spec.linalg import pack_panels
from edgernn.kernels.tile import mac16x2, mac32

U = np.uint64


@njit
def _alone(W, K1, K2, S, x1, x2, y):
    mac32(W, U(0), U(K1), U(K2), S, U(x1), U(x2), U(y))


@njit
def _pair(W, K1, K2, S, x1, x2, y, x1b, x2b, yb):
    for h in (U(0), U(16)):
        mac16x2(W, h, U(K1), U(K2), S, U(x1), U(x2), U(y) + h, U(x1b), U(x2b), U(yb) + h)


@pytest.mark.parametrize("K1,K2", [(42, 96), (1, 0), (7, 3), (0, 33), (256, 256)])
def test_two_streams_half_tiles_equal_one_stream_tiles(rng, K1, K2):
    w = rng.standard_normal((32, K1 + K2)).astype(np.float32)
    W = pack_panels(w)
    assert W.size == 32 * (K1 + K2)   # one 32-row tile: column c is W[32c:32c+32]
    xs = rng.standard_normal((2, K1 + K2)).astype(np.float32)
    y0 = rng.standard_normal((2, 32)).astype(np.float32)
    # per stream: [x1 | pad | x2 | y], as a stream's arena holds them apart
    off_x2, off_y, A = K1 + 3, K1 + 3 + K2 + 5, K1 + K2 + 8 + 32
    S = np.zeros(2 * A, np.float32)
    for s in range(2):
        S[s * A:s * A + K1] = xs[s, :K1]
        S[s * A + off_x2:s * A + off_x2 + K2] = xs[s, K1:]
        S[s * A + off_y:s * A + off_y + 32] = y0[s]
    alone = S.copy()
    for s in range(2):
        _alone(W, K1, K2, alone, s * A, s * A + off_x2, s * A + off_y)
    pair = S.copy()
    _pair(W, K1, K2, pair, 0, off_x2, off_y, A, A + off_x2, A + off_y)
    np.testing.assert_array_equal(pair.view(np.uint32), alone.view(np.uint32))
    for s in range(2):
        want = y0[s].astype(np.float64) + w.astype(np.float64) @ xs[s].astype(np.float64)
        np.testing.assert_allclose(pair[s * A + off_y:s * A + off_y + 32], want,
                                   rtol=1e-5, atol=1e-5 * np.sqrt(K1 + K2 + 1))
