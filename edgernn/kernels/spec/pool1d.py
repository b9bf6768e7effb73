"""Codes and columns of :mod:`edgernn.kernels.pool1d`."""

from ..optable import C0

#: the function of a row (column FUNC)
MAX, AVG = 0, 1
#: op-specific columns: L_in, K, stride, dilation, left padding, channels, L_out,
#: count_include_pad
LIN, KSIZE, STRIDE, DIL, PADB, CH, LOUT, INCL = range(C0 + 5, C0 + 13)
