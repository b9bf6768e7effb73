"""Layout of the op table ``P: int64[n_rows, WIDTH]`` and of the state arena header.

Row 0 is the header; rows 1..n are run in order for every timestep. Offsets
into the weight arena ``W`` and a stream's state arena ``S`` are element
offsets into their float32 view (``*_Q`` columns: into their int8 view). Every
row has the common columns; the rest belong to the op (see each op's ``pack``
in :mod:`edgernn.ops` and its kernel's docstring).

Copies from the step's input ``X`` (``INPUT``), to its output ``Y``
(``OUTPUT``) and between slots (``COPY``, for a Concat whose input could not be
placed inside it) are rows too.
"""

WIDTH = 32

# header (row 0)
H_NRUN = 0        # rows run every step (rows 1..H_NRUN); the STATE rows follow
H_NIN = 1         # model input size (concatenated inputs)
H_NOUT = 2        # model output size (concatenated outputs)
H_SBYTES = 3      # bytes of one stream's state arena
H_MATVEC = 4      # address of linalg.matvec_kernel
H_ACT = 5         # address of mathfn.act_kernel (0: the model uses none of its activations)
H_QMATVEC = 6     # address of qlinalg.qmatvec_kernel (0: no int8 op)

# common columns of every row
OP, Y, NO, X, NI, X2, NI2, SCR, C0 = 0, 1, 2, 3, 4, 5, 6, 7, 8
FN = WIDTH - 1     # address of the op's kernel (edgernn.kernels.abi)
# C0.. : op-specific columns

# row kinds (column OP); every op kind's row is a KERNEL row: the engine calls FN
KERNEL, INPUT, OUTPUT, COPY = 0, 1, 2, 3
STATE = 4          # not run: a state span ``S[Y:Y+NO]`` that the plan allocated (reset
                   # to zero after a step in which it became non-finite)

# op-specific columns
WOFF, BOFF = C0, C0 + 1                       # packed weights (panels), bias (-1: none)
ACT_CODE, PAR = C0 + 2, C0 + 3                # activation code, float params in W
FUNC = ACT_CODE                               # which function of its kind (elementwise ops)
FLAGS = C0 + 4
STATE_C = C0 + 5                              # LSTM cell state
PEEP = C0 + 6                                 # LSTM peephole [3, H]
WIN, WHN = C0 + 7, C0 + 8                     # GRU: W_in and W_hn panels
AG, AH = C0 + 9, C0 + 10                      # LSTM/GRU: candidate and cell activations
CONST = C0 + 11                               # ADD/SUB/MUL: constant operand in W (-1: X2)
NUM = C0 + 12                                 # EMBED: number of embeddings
# int8 ops (-1: float): int32 headers of the quantised matrices in W (qlinalg.py),
# float32 [mode_x, s_x, zp_x, mode_h, s_h, zp_h, s_out, zp_out] at QPAR, scratch at QBUF
QM0, QM1, QM2, QM3, QPAR, QBUF = C0 + 13, C0 + 14, C0 + 15, C0 + 16, C0 + 17, C0 + 18
# slots of those parameters: (mode, scale, zero point) of an input, of the state;
# (scale, zero point) of a re-quantised output (0 scale: none)
QP_X, QP_H, QP_OUT = 0, 3, 6

# flags
F_PEEPHOLE, F_CLIP, F_CELL_CLIP, F_INPUT_FORGET, F_LBR = 1, 2, 4, 8, 16

# state arena header (int64 view): S_i64[S_NONFINITE], ...
S_NONFINITE = 0   # steps in which some op's output or state was non-finite
S_FLAG = 1        # set by a kernel during the current step when it saw a non-finite value
S_HEADER_BYTES = 64

# call descriptor (int64[16]; see edgernn.engine)
D_P, D_NROWS, D_W, D_WBYTES, D_S, D_SSTRIDE, D_NSTREAMS, D_IDX, D_M, D_MODE = range(10)
D_SIZE = 16
