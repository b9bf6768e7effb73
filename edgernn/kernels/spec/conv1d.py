"""Columns of :mod:`edgernn.kernels.conv1d`."""

from ..optable import C0

#: op-specific columns: L_in, K, stride, dilation, left padding, groups, C_in, C_out,
#: and (after the int8 columns QM0..QBUF) the int64 offset of the positions
#: ``0 .. L_out-1`` in the weight arena
LIN, KSIZE, STRIDE, DIL, PADB, GROUPS, CIN, COUT = range(C0 + 5, C0 + 13)
POS = C0 + 19
