"""Codes of :mod:`edgernn.kernels.unary`."""

#: the function of a row (column FUNC)
(ABS, NEG, SQRT, LOG, EXP, RECIPROCAL, SQUARE, POW, CLIP, MAX, MIN, ERF, SIGN, FLOOR, CEIL,
 ROUND) = range(16)
