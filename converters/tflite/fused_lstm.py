"""``UNIDIRECTIONAL_SEQUENCE_LSTM`` -> :class:`edgernn.LSTM`.

Inputs (TFLite kernel order): 0 x float[1, T, I]; 1-4 input weights for the
i, f, c, o gates float[H, I]; 5-8 recurrent weights float[H, H]; 9-11 peephole
(cell-to-gate) weights for i, f, o float[H]; 12-15 gate biases float[H];
16-17 projection weights and bias; 18-19 output and cell state (variable
tensors: the state persists across ``invoke`` calls); 20-23 layer-norm
coefficients. Gate order i, f, c, o is PyTorch's i, f, g, o.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError

_ACT = {0: None, 1: "relu", 4: "tanh"}
INT8_MESSAGE = "int8 LSTM arrives with the quantisation issue"


def state_persists(sg, op) -> bool:
    """True when both state inputs are variable tensors (kept across ``invoke``)."""
    ins = op.inputs + [-1] * (24 - len(op.inputs))
    return all(ins[i] >= 0 and sg.tensors[ins[i]].is_variable for i in (18, 19))


def convert_fused_lstm(sg, op):
    """The edgernn LSTM for ``op``; raises UnsupportedOpError for what it cannot express."""
    ins = op.inputs + [-1] * (24 - len(op.inputs))

    def tensor(i):
        return None if ins[i] < 0 else sg.tensors[ins[i]]

    w = [tensor(i) for i in range(1, 9)]
    if any(t is not None and t.type_code != 0 for t in w):
        kinds = sorted({np.dtype(t.dtype).name for t in w if t is not None and t.type_code})
        raise UnsupportedOpError(f"{op}: weights of type {kinds}; {INT8_MESSAGE} "
                                 f"(supported: float32 weights)")
    if w[0] is None:
        raise UnsupportedOpError(f"{op}: no input-gate weights (CIFG: TFLite computes the "
                                 f"input gate as i = 1 - f) is not supported; edgernn's "
                                 f"input_forget coupling is ONNX's f = 1 - i, a different "
                                 f"cell; supported: all four gates")
    for i, what in ((16, "projection weights"), (20, "layer normalisation")):
        if tensor(i) is not None:
            raise UnsupportedOpError(f"{op}: {what} (input {i}) are not supported")
    if op.opt("TimeMajor", False):
        raise UnsupportedOpError(f"{op}: time_major=True is not supported; supported: "
                                 f"batch-major [1, T, I] input")
    act = op.opt("FusedActivationFunction", 4)
    if act not in _ACT or _ACT[act] is None:
        raise UnsupportedOpError(f"{op}: cell activation code {act} is not supported; "
                                 f"supported: TANH (4), RELU (1)")
    for i in (18, 19):
        st = tensor(i)
        if st is not None and st.data is not None and np.any(st.data):
            raise UnsupportedOpError(f"{op}: state input {i} ({st.name!r}) starts non-zero; "
                                     f"edgernn streams start from zero state")
    data = [None if t is None else t.data for t in w]
    if any(d is None for d in data):
        raise UnsupportedOpError(f"{op}: weights that are not constants are not supported")
    peep = [tensor(i) for i in (9, 10, 11)]
    peephole = None
    if any(p is not None for p in peep):
        H = data[4].shape[0]
        peephole = np.stack([np.zeros(H, np.float32) if p is None else p.data for p in peep])
    bias = [tensor(i) for i in range(12, 16)]
    b = None if all(t is None for t in bias) else np.concatenate(
        [np.zeros(data[0].shape[0], np.float32) if t is None else t.data for t in bias])
    clip = op.opt("CellClip", 0.0) or None
    g = _ACT[act]
    return edgernn.LSTM(np.concatenate(data[:4]), np.concatenate(data[4:]), b, None,
                        peephole=peephole, cell_clip=clip,
                        activations=("sigmoid", g, g))
