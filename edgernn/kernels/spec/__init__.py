"""What packing (:mod:`edgernn.ops`) and the kernels agree on, importable without numba.

One module per kernel module that has such things: its op-specific columns and
function codes, and the plain-numpy packing of its weights. The kernel module
imports them from here (so each is written once), and so does the op, so that
loading a model from the native image (:mod:`edgernn.kernels.native`) imports no
numba.
"""
