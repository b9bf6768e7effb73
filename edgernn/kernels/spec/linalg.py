"""The panel layout of :mod:`edgernn.kernels.linalg` (described there), packed in numpy."""

import numpy as np

#: rows of a full tile and of a tail tile: the values of :mod:`edgernn.kernels.tile`'s
#: ``TILE`` and ``TAIL`` (which imports numba; a test checks they agree)
TILE, TAIL = 32, 8


def panel_size(rows: int, cols: int) -> int:
    """Floats taken by a packed ``[rows, cols]`` matrix."""
    return -(-rows // TAIL) * TAIL * cols


def pack_panels(a: np.ndarray) -> np.ndarray:
    """``float32[R, K]`` -> the flat panel layout described above."""
    R, K = a.shape
    R8 = -(-R // TAIL) * TAIL
    full = np.zeros((R8, K), np.float32)
    full[:R] = a
    n32 = R8 // TILE
    head = full[:n32 * TILE].reshape(n32, TILE, K).transpose(0, 2, 1)
    tail = full[n32 * TILE:].reshape(-1, TAIL, K).transpose(0, 2, 1)
    return np.concatenate([head.ravel(), tail.ravel()]).astype(np.float32)
