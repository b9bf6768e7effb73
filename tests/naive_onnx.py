"""Helpers for the ONNX converter tests: random recurrent graphs built with
``onnx.helper`` and run with ONNX Runtime (the oracle)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def ort_run(model: onnx.ModelProto, feeds: dict) -> dict:
    """Run ``model`` with ONNX Runtime (CPU) and return ``{output name: array}``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def recurrent_model(op, rng, *, hidden=4, inputs=3, direction="forward", attrs=None,
                    scale=0.5, peephole=False, init="none", batch=3, seq_lens=False, layout=0,
                    outputs=("Y", "Y_h", "Y_c")):
    """A one-node ONNX graph ``op`` with random weights as initializers.

    Parameters
    ----------
    op : "LSTM", "GRU" or "RNN"
    init : "none", "const" (random initial_h/c initializers) or "input"
        (graph inputs ``h0``/``c0``)
    batch : int
        Batch size of constant initial states.
    seq_lens : bool
        Add a graph input ``seq_lens: int32[B]``.
    layout : 0 or 1

    Returns
    -------
    onnx.ModelProto
    """
    g = GATES[op]
    nd = 2 if direction == "bidirectional" else 1
    h, i = hidden, inputs
    inits = [numpy_helper.from_array((rng.standard_normal((nd, g * h, i)) * scale)
                                     .astype(np.float32), "W"),
             numpy_helper.from_array((rng.standard_normal((nd, g * h, h)) * scale)
                                     .astype(np.float32), "R"),
             numpy_helper.from_array((rng.standard_normal((nd, 2 * g * h)) * scale)
                                     .astype(np.float32), "B")]
    x_shape = ["T", "N", i] if layout == 0 else ["N", "T", i]
    s_shape = [nd, "N", h] if layout == 0 else ["N", nd, h]
    g_in = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)]
    node_in = ["X", "W", "R", "B", "", "", "", ""]
    if seq_lens:
        g_in.append(helper.make_tensor_value_info("seq_lens", TensorProto.INT32, ["N"]))
        node_in[4] = "seq_lens"
    states = ["h", "c"] if op == "LSTM" else ["h"]
    for k, st in enumerate(states):
        if init == "input":
            g_in.append(helper.make_tensor_value_info(f"{st}0", TensorProto.FLOAT, s_shape))
            node_in[5 + k] = f"{st}0"
        elif init == "const":
            a = (rng.standard_normal((nd, batch, h)) * 0.5).astype(np.float32)
            a = np.ascontiguousarray(a if layout == 0 else a.transpose(1, 0, 2))
            inits.append(numpy_helper.from_array(a, f"{st}0"))
            node_in[5 + k] = f"{st}0"
    if peephole:
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((nd, 3 * h)) * scale).astype(np.float32), "P"))
        node_in[7] = "P"
    while node_in[-1] == "":
        node_in.pop()
    outs = [o for o in outputs if o != "Y_c" or op == "LSTM"]
    node = helper.make_node(op, node_in, outs, hidden_size=h, direction=direction,
                            **({"layout": layout} if layout else {}), **(attrs or {}))
    y_shape = ["T", nd, "N", h] if layout == 0 else ["N", "T", nd, h]
    g_out = [helper.make_tensor_value_info(o, TensorProto.FLOAT,
                                           y_shape if o == "Y" else s_shape) for o in outs]
    graph = helper.make_graph([node], "rnn", g_in, g_out, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=9)


def with_head(op="LSTM", nodes=(), inits=(), out="out", **kw):
    """A recurrent node whose Y is squeezed to [T, B, H] and fed to ``nodes``."""
    m = recurrent_model(op, np.random.default_rng(0), outputs=("Y",), **kw)
    g = m.graph
    g.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "ax1"))
    g.node.append(helper.make_node("Squeeze", ["Y", "ax1"], ["Ys"], name="squeeze_y"))
    g.node.extend(nodes)
    g.initializer.extend(numpy_helper.from_array(np.asarray(a), n) for n, a in inits)
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, None))
    return m


W4 = np.ones((4, 4), np.float32)
