"""Typed byte arenas: 64-byte aligned blocks (in absolute address) of any dtype.

A model's weights live in one read-only byte arena and each stream's state in
one byte arena; the engine views them as float32, int8, int32 or int64 through
their addresses (:mod:`edgernn.kernels.pointers`). Every block starts on a
64-byte boundary of the real address, so a block never straddles more cache
lines than it must, and vector loads of a block's start are aligned.
"""

from __future__ import annotations

import numpy as np

ALIGN = 64


def aligned_zeros(nbytes: int) -> np.ndarray:
    """A zeroed ``uint8[nbytes]`` whose data address is a multiple of 64.

    The pages are touched here (zero-filled), so the first step does not pay
    page faults.
    """
    nbytes = max(int(nbytes), ALIGN)
    raw = np.zeros(nbytes + ALIGN, np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start:start + nbytes]


def address(a: np.ndarray) -> int:
    """The data address of ``a`` (kept alive by the caller)."""
    return int(a.ctypes.data)


class ArenaBuilder:
    """Append-only layout of typed blocks, each 64-byte aligned; offsets in bytes."""

    def __init__(self, start: int = 0):
        self.size = int(start)
        self.blocks: list[tuple[int, np.ndarray]] = []

    def alloc(self, nbytes: int) -> int:
        """Reserve ``nbytes`` (zeros); returns the block's byte offset."""
        off = round_up(self.size, ALIGN)
        self.size = off + int(nbytes)
        return off

    def put(self, a: np.ndarray) -> int:
        """Store ``a``'s bytes (C order) in a new block; returns its byte offset."""
        a = np.ascontiguousarray(a)
        off = self.alloc(a.nbytes)
        self.blocks.append((off, a))
        return off

    def build(self, writeable: bool = False) -> np.ndarray:
        """The arena: aligned ``uint8[size rounded up to 64]`` holding every block."""
        out = aligned_zeros(round_up(self.size, ALIGN))
        for off, a in self.blocks:
            out[off:off + a.nbytes] = a.reshape(-1).view(np.uint8)
        out.flags.writeable = writeable
        return out


def round_up(n: int, m: int) -> int:
    """``n`` rounded up to a multiple of ``m``."""
    return (int(n) + m - 1) // m * m
