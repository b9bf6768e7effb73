"""Codes and columns of :mod:`edgernn.kernels.pad`."""

from ..optable import C0

#: the mode of a row (column FUNC)
CONSTANT, REFLECT, EDGE = range(3)
#: op-specific columns: the input's last-axis length, the padding before and after
COLS, BEFORE, AFTER = C0 + 5, C0 + 6, C0 + 7
