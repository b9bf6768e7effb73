"""Columns of :mod:`edgernn.kernels.layer_norm`."""

from ..optable import C0

#: op-specific column: the normalised length n
NORM = C0 + 5
