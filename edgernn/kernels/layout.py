"""Sizes and offsets that packing (in :mod:`edgernn.ops`) and the kernels must agree on.

Each helper is written once, in plain Python on integers, and used twice: the
kernels call the jitted copy made by :mod:`edgernn.kernels.abi` (inlined, so it
folds away), an op's ``pack`` and ``scratch_floats`` call it here (no numba: a
warm start packs a model without it). A scratch layout therefore cannot drift
between the description and its kernel. The helpers do not call one another (the
jitted copies could not).

Scratch of the recurrent ops, in floats from the op's ``SCR`` offset, with
``pad8(n) = 8 * ceil(n / 8)`` (the matrix kernels write whole tiles of 8 rows):

=======  =========================================================================
GRU      rz[pad8(2H)] | n_x[pad8(H)] | n_h[pad8(H)] | r*h[H], then the int8 scratch
LSTM     gates[pad8(4H)], then the int8 scratch
RNN      pre-activation[pad8(H)], then the int8 scratch
Dense    y[pad8(out)], then the int8 scratch
=======  =========================================================================
"""


def pad8(n):
    """``n`` rounded up to a multiple of 8 (the matrix kernels' row-tile granularity)."""
    return (n + 7) // 8 * 8


def ceil_div(n, d):
    """``ceil(n / d)`` for ``n >= 0, d > 0``."""
    return (n + d - 1) // d


def gru_scratch(H):
    """GRU scratch offsets ``(rz, nx, nh, rh, end)`` from ``SCR`` (module docstring)."""
    h8 = (H + 7) // 8 * 8
    nx = (2 * H + 7) // 8 * 8
    return 0, nx, nx + h8, nx + 2 * h8, nx + 2 * h8 + H
