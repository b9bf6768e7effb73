"""Activation codes of :mod:`edgernn.kernels.mathfn`."""

# activation codes (the op table's ACT_CODE; names and parameters in
# edgernn.ops.activation). Stable within a runtime: they are not stored in files.
LINEAR, RELU, TANH, SIGMOID, SOFTMAX, LEAKY_RELU, ELU, HARD_SIGMOID = 0, 1, 2, 3, 4, 5, 6, 7
SOFTSIGN, SOFTPLUS, AFFINE, THRESHOLDED_RELU, SCALED_TANH = 8, 9, 10, 11, 12
LOG_SOFTMAX, L2_NORMALIZE = 13, 14
SIGMOID_LITERT, TANH_LITERT = 15, 16
#: added to a code: the libm variant (``math="exact"``) of tanh, sigmoid, softplus, scaled_tanh
EXACT = 100
