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
H_NROWS = 0       # rows after the header
H_NIN = 1         # model input size (concatenated inputs)
H_NOUT = 2        # model output size (concatenated outputs)
H_TOKENS = 3      # number of token ids (0: float input)
H_SBYTES = 4      # bytes of one stream's state arena
H_WBYTES = 5      # bytes of the weight arena
H_EXACT = 6       # 1: libm activations
H_MATVEC = 7      # address of linalg.matvec_kernel
H_ACT = 8         # address of mathfn.act_kernel (0: the model uses none of its activations)
H_QMATVEC = 9     # address of qlinalg.qmatvec_kernel (0: no int8 op)

# common columns of every row
OP, Y, NO, X, NI, X2, NI2, SCR, C0 = 0, 1, 2, 3, 4, 5, 6, 7, 8
FN = WIDTH - 1     # address of the op's kernel (edgernn.kernels.abi)
# C0.. : op-specific columns

# opcodes
INPUT, OUTPUT, COPY = 1, 2, 3
DENSE, ACT, EMBED, RNN, LSTM, GRU = 4, 5, 6, 7, 8, 9
ADD, SUB, MUL = 10, 11, 12

# op-specific columns
WOFF, BOFF = C0, C0 + 1                       # packed weights (panels), bias (-1: none)
ACT_CODE, PAR = C0 + 2, C0 + 3                # activation code, float params in W
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

# flags
F_PEEPHOLE, F_CLIP, F_CELL_CLIP, F_INPUT_FORGET, F_LBR = 1, 2, 4, 8, 16

# state arena header (int64 view): S_i64[S_NONFINITE], ...
S_NONFINITE = 0   # steps in which some op's output or state was non-finite
S_FLAG = 1        # set by a kernel during the current step when it saw a non-finite value
S_HEADER_BYTES = 64

# call descriptor (int64[16]; see edgernn.engine)
D_P, D_NROWS, D_W, D_WBYTES, D_S, D_SSTRIDE, D_NSTREAMS, D_IDX, D_M, D_MODE = range(10)
D_SIZE = 16
