"""Codes of :mod:`edgernn.kernels.elementwise`."""

#: the function of a row (column FUNC)
ADD, SUB, MUL, DIV = 0, 1, 2, 3
