"""Layout of the op table ``P: int64[n_ops + 1, WIDTH]``.

Row 0 is the header; rows 1..n_ops are ops run in order for each timestep.
Every op reads ``S[X:X+NI]`` and writes ``S[Y:Y+NO]``. A recurrent op's input
slot is followed directly by its hidden state, ``S[X+NI:X+NI+H]``, so one fused
matvec computes ``[W_ih | W_hh] @ [x; h]``. Parameter floats (activation
alpha/beta, clip thresholds) live in the weight arena at ``PAR``.
"""

WIDTH = 16

# header (row 0)
H_NOPS, H_IN, H_NIN, H_OUT, H_NOUT, H_TOKENS, H_EXACT = 0, 1, 2, 3, 4, 5, 6

# every op row
OP, X, NI, Y, NO = 0, 1, 2, 3, 4

# opcodes
DENSE, ACT, EMBED, RNN, LSTM, GRU = 1, 2, 3, 4, 5, 6

# op-specific columns
WOFF, BOFF = 5, 6                       # dense, rnn, lstm, gru: weights / bias (-1: none)
D_ACT, D_PAR = 7, 8                     # dense
A_ACT, A_PAR = 5, 6                     # activation
E_WOFF, E_NUM = 5, 6                    # embedding
R_GOFF, R_ACT, R_PAR, R_FLAGS = 7, 8, 9, 10                     # rnn
L_COFF, L_GOFF, L_AF, L_AG, L_AH, L_PAR, L_FLAGS, L_PEEP = 7, 8, 9, 10, 11, 12, 13, 14  # lstm
G_GOFF, G_AF, G_AG, G_PAR, G_FLAGS, G_WIN, G_WHN = 7, 8, 9, 10, 11, 12, 13  # gru

# flags
F_PEEPHOLE, F_CLIP, F_CELL_CLIP, F_INPUT_FORGET, F_LBR = 1, 2, 4, 8, 16

# state arena header
S_NONFINITE = 0        # count of steps whose new state was non-finite (then reset)
S_HEADER = 8
