"""``kernels.minmax.vrange``: the range an int8 product quantises its input from, in
vector registers, equal to numpy's ``min(0, nanmin)``, ``max(0, nanmax)``."""

import numpy as np
import pytest
from numba import njit

from edgernn.kernels.minmax import vrange

U = np.uint64


@njit
def _vrange(S, o, n):
    return vrange(S, U(o), U(n))


def _want(v):
    v = v[~np.isnan(v)]
    return (min(0.0, float(v.min())) if v.size else 0.0,
            max(0.0, float(v.max())) if v.size else 0.0)


@pytest.mark.parametrize("n", [0, 1, 7, 15, 16, 17, 31, 32, 42, 96, 257])
def test_range_equals_numpy_at_every_length_and_offset(rng, n):
    for o in (0, 1, 5):
        S = (rng.standard_normal(o + n + 3) * 7).astype(np.float32)
        assert _vrange(S, o, n) == _want(S[o:o + n])


def test_nans_are_skipped_infinities_kept_and_one_sign_gives_a_zero_bound(rng):
    S = rng.standard_normal(50).astype(np.float32)
    S[[0, 16, 33, 49]] = np.nan
    assert _vrange(S, 0, 50) == _want(S)
    S[20], S[40] = np.inf, -np.inf
    assert _vrange(S, 0, 50) == (-np.inf, np.inf)
    pos = np.abs(rng.standard_normal(40)).astype(np.float32) + 1
    assert _vrange(pos, 0, 40) == (0.0, float(pos.max()))
    assert _vrange(-pos, 0, 40) == (float(-pos.max()), 0.0)
    assert _vrange(np.full(20, np.nan, np.float32), 0, 20) == (0.0, 0.0)
