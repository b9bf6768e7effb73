"""Codes and columns of :mod:`edgernn.kernels.reduce`."""

from ..optable import C0

#: the function of a row (column FUNC)
MEAN, SUM, MAX, MIN, L2, SUM_SQUARE, MEAN_LITERT = range(7)
#: op-specific columns: the length of the last axis, the axis reduced (1: the last, 0: rows)
COLS, LAST = C0 + 5, C0 + 6
