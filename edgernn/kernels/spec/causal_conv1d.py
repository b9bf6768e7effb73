"""Columns of :mod:`edgernn.kernels.causal_conv1d`."""

from ..optable import C0

#: op-specific columns: history offset in the state arena, taps, dilation
HIST, KSIZE, DIL = C0 + 5, C0 + 19, C0 + 20
