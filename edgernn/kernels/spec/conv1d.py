"""Columns of :mod:`edgernn.kernels.conv1d`."""

from ..optable import C0

#: op-specific columns: L_in, K, stride, dilation, left padding, groups, C_in, C_out
LIN, KSIZE, STRIDE, DIL, PADB, GROUPS, CIN, COUT = range(C0 + 5, C0 + 13)
