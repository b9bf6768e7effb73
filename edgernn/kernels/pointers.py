"""Typed array views over raw addresses, for the engine's entry point.

The entry point receives one integer: the address of a call descriptor (an
int64 array owned by the Python stream object, see :mod:`edgernn.engine`).
Everything else -- op table, weight arena, state arenas, stream indices -- is
reached through addresses stored in it and viewed with :func:`view` (a
``numba.carray``, which allocates nothing and carries no reference count).
The Python side keeps every array it published an address of alive.
"""

import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..cache import CACHE


@intrinsic
def _voidptr(typingctx, addr):
    if not isinstance(addr, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(addr), codegen


@njit(cache=CACHE, inline="always")
def f32_view(addr, n):
    """float32[n] at byte address ``addr``."""
    return carray(_voidptr(addr), n, np.float32)


@njit(cache=CACHE, inline="always")
def i8_view(addr, n):
    """int8[n] at byte address ``addr``."""
    return carray(_voidptr(addr), n, np.int8)


@njit(cache=CACHE, inline="always")
def u8_view(addr, n):
    """uint8[n] at byte address ``addr``."""
    return carray(_voidptr(addr), n, np.uint8)


@njit(cache=CACHE, inline="always")
def i32_view(addr, n):
    """int32[n] at byte address ``addr``."""
    return carray(_voidptr(addr), n, np.int32)


@njit(cache=CACHE, inline="always")
def i64_view(addr, n):
    """int64[n] at byte address ``addr``."""
    return carray(_voidptr(addr), n, np.int64)


@njit(cache=CACHE, inline="always")
def i64_table(addr, rows, cols):
    """int64[rows, cols] at byte address ``addr``."""
    return carray(_voidptr(addr), (rows, cols), np.int64)
