"""The int8 matrix layout of :mod:`edgernn.kernels.qlinalg` (described there), in numpy."""

import numpy as np

#: output rows of an int8 tile (:mod:`edgernn.kernels.tile_i8`)
ROWS = 32
HEADER = 7
#: most columns of an int8 matrix: ``|w| <= 128`` and ``|v_q - zp|``, ``v_q + 128``,
#: ``128 + zp`` are at most 255, so ``acc``, ``off * rowsum`` and their difference stay
#: within ``255 * 128 * K`` < 2^31: the int32 sums never wrap
MAX_COLS = (2**31 - 1) // (255 * 128)


def pack_q8(wq: np.ndarray, wbytes: int = 1):
    """``int8[R, K]`` -> (panels int8[:], rowsum int32[R32]) in the layout above, the
    weights as ``wbytes``-byte integers (:func:`weight_bytes`)."""
    R, K = wq.shape
    R32, G = -(-R // ROWS) * ROWS, -(-K // 4)
    full = np.zeros((R32, 4 * G), np.int8)
    full[:R, :K] = wq
    rowsum = full.astype(np.int32).sum(axis=1).astype(np.int32)
    wide = np.dtype(f"<i{wbytes}")
    parts = []
    for t in range(R32 // ROWS):
        blk = full[t * ROWS:(t + 1) * ROWS]
        parts.append(blk.reshape(ROWS, G, 4).transpose(1, 0, 2).ravel().astype(wide)
                     .view(np.int8))
        parts.append((128 * rowsum[t * ROWS:(t + 1) * ROWS]).astype(np.int32).view(np.int8))
    return np.concatenate(parts), rowsum


def qscratch_floats(cols: int, rows: int) -> int:
    """Scratch floats :func:`qmatvec_impl` needs for two ``[rows, <= cols]`` matrices."""
    return 2 * -(-cols // 4) + 4 + 2 * -(-rows // ROWS) * ROWS


def weight_bytes(path: str) -> int:
    """Bytes per weight in the panels of int8 path ``path``
    (:func:`edgernn.kernels.tile_i8.path`): 2 for ``avx2`` (int16), else 1."""
    return 2 if path == "avx2" else 1
