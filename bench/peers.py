"""The runtimes edgernn is timed against, each streaming one step per call from Python.

Every factory returns ``step(x float32[I]) -> float32[O]`` with the state carried
inside, or raises; the caller reports the reason in its table and goes on.

- ONNX Runtime: a one-step module ``x, h0[, c0] -> y, hn[, cn]`` exported from
  torch, one thread, the returned state fed back.
- LiteRT (``ai_edge_litert``, one thread): ``bench/models/{net}_{f32,drq}.tflite``
  made by ``bench/make_litert_models.py`` (fused LSTM with variable-tensor state,
  stateful GRU); per step ``set_tensor``, ``invoke``, ``get_tensor``.
- torch eager: the module itself, state carried, ``torch.inference_mode``.

:func:`int8_model` makes edgernn's int8 version of a net (``converters.quantize``,
or a clearly labelled symmetric per-row quantiser when that fails).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from int8_simple import quantise_rows


class _OneStep(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.lstm = net, isinstance(net.rnn, torch.nn.LSTM)

    def forward(self, x, h, c=None):
        state = (h, c) if self.lstm else h
        y, st = self.net(x, state)
        return (y, *st) if self.lstm else (y, st)


def onnx_one_step(net, in_size: int):
    """(ONNX bytes of one step of ``net`` with its state as inputs and outputs, the
    input names, the zero state tensors)."""
    layers, hid = net.rnn.num_layers, net.rnn.hidden_size
    lstm = isinstance(net.rnn, torch.nn.LSTM)
    x = torch.zeros(1, in_size)
    h = torch.zeros(layers, hid)
    args = (x, h, torch.zeros(layers, hid)) if lstm else (x, h)
    names = ["x", "h0", "c0"][: len(args)]
    buf = io.BytesIO()
    with warnings.catch_warnings():  # torch's note on batch sizes of exported GRUs
        warnings.simplefilter("ignore")
        torch.onnx.export(_OneStep(net), args, buf, input_names=names, dynamo=False,
                          output_names=["y", "hn", "cn"][: len(args)])
    return buf.getvalue(), names, args[1:]


def onnxruntime(net, in_size: int):
    import onnxruntime as ort

    onnx_bytes, names, zeros = onnx_one_step(net, in_size)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    state = [a.numpy() for a in zeros]
    feed = {}

    def step(xv):
        feed["x"] = xv.reshape(1, -1)
        for n, s in zip(names[1:], state, strict=True):
            feed[n] = s
        out = sess.run(None, feed)
        state[:] = out[1:]
        return out[0][0]
    return step


def litert(path: Path):
    if not path.exists():
        raise FileNotFoundError(f"{path.name} not found (make it with "
                                f"bench/make_litert_models.py in a TensorFlow venv)")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    set_tensor, invoke, get_tensor = it.set_tensor, it.invoke, it.get_tensor

    def step(xv):
        set_tensor(i, xv.reshape(1, 1, -1))
        invoke()
        return get_tensor(o)[0]
    return step


def torch_eager(net):
    state = [None]

    def step(xv):
        with torch.inference_mode():
            y, state[0] = net(torch.from_numpy(xv).reshape(1, -1), state[0])
        return y[0].numpy()
    return step


def max_diff(step, xs, ref, n: int) -> float:
    """Max |step output - torch| over the first ``n`` steps of ``xs`` (fresh state)."""
    got = np.stack([np.asarray(step(x), np.float32).reshape(-1).copy() for x in xs[:n]])
    return float(np.abs(got - ref[:n]).max())


def int8_model(model, calibration: np.ndarray, mode: str) -> tuple:
    """(int8 model, how it was made): ``converters.quantize``, else the bench's quantiser."""
    try:
        from converters import quantize

        q = quantize(model, calibration=calibration, mode=mode, progress=False)
        return q, f"converters.quantize(mode={mode!r})"
    except Exception as exc:  # noqa: BLE001 -- the fallback says why
        why = f"{type(exc).__name__}: {exc}"[:200]
    return quantise_rows(model), (f"bench/int8_simple.py symmetric per-row int8-weights quantiser "
                                    f"(converters.quantize failed: {why})")
