"""Make the ONNX Runtime-quantised fixtures of ``tests/test_quantized_sources.py``.

    .venv/bin/python tests/data/make_onnx_quant_fixtures.py

PyTorch modules (fixed seeds) exported to ONNX, then quantised by the real
``onnxruntime.quantization``:

``lstm_dynamic``  one-step LSTM(8 -> 16) + Linear(16 -> 4), ``x, h0, c0 -> y, hn, cn``,
                  ``quantize_dynamic(per_channel=True, weight_type=QInt8)``:
                  DynamicQuantizeLSTM + DynamicQuantizeLinear/MatMulInteger
``gru_dynamic``   the same with a GRU (ORT leaves the GRU float; the Linear is quantised)
``mlp_static``    Linear(8 -> 16) -> tanh -> Linear(16 -> 4), ``quantize_static``
                  (QOperator format, per channel, int8 activations calibrated on 50
                  Gaussian vectors): QuantizeLinear -> QGemm -> DequantizeLinear

Beside each ``<case>.onnx`` a ``<case>.npz``: ``x`` float32[T, I] and ``y`` ONNX
Runtime's outputs, one call per step with the returned state fed back.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

OUT = Path(__file__).resolve().parent / "onnx_quant"
I, H, O, T = 8, 16, 4, 200


class OneStep(torch.nn.Module):
    def __init__(self, rnn, lin):
        super().__init__()
        self.rnn, self.lin = rnn, lin

    def forward(self, x, h, c=None):
        if c is None:
            y, hn = self.rnn(x, h)
            return self.lin(y), hn
        y, (hn, cn) = self.rnn(x, (h, c))
        return self.lin(y), hn, cn


def _export(module, args, names, outs) -> bytes:
    buf = io.BytesIO()
    torch.onnx.export(module, args, buf, input_names=names, output_names=outs, dynamo=False)
    return buf.getvalue()


def _stream(path, xs, names):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state = [np.zeros((1, H), np.float32) for _ in names[1:]]
    ys = []
    for x in xs:
        out = sess.run(None, {"x": x[None], **dict(zip(names[1:], state, strict=True))})
        state = out[1:]
        ys.append(out[0][0])
    return np.stack(ys)


class _Reader(CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(11)
        self.it = iter([{"x": rng.standard_normal((1, I)).astype(np.float32)}
                        for _ in range(50)])

    def get_next(self):
        return next(self.it, None)


def main():
    OUT.mkdir(exist_ok=True)
    xs = np.random.default_rng(3).standard_normal((T, I)).astype(np.float32)
    for name, kind in (("lstm_dynamic", torch.nn.LSTM), ("gru_dynamic", torch.nn.GRU)):
        torch.manual_seed(len(name))
        mod = OneStep(kind(I, H), torch.nn.Linear(H, O)).eval()
        lstm = kind is torch.nn.LSTM
        names = ["x", "h0", "c0"] if lstm else ["x", "h0"]
        args = tuple(torch.zeros(1, n) for n in (I, H, H)[: len(names)])
        src = OUT / f"{name}_float.onnx"
        src.write_bytes(_export(mod, args, names, ["y", "hn", "cn"][: len(names)]))
        quantize_dynamic(str(src), str(OUT / f"{name}.onnx"), per_channel=True,
                         weight_type=QuantType.QInt8)
        src.unlink()
        np.savez_compressed(OUT / f"{name}.npz", x=xs, y=_stream(OUT / f"{name}.onnx", xs,
                                                                 names))
    torch.manual_seed(5)
    mlp = torch.nn.Sequential(torch.nn.Linear(I, H), torch.nn.Tanh(), torch.nn.Linear(H, O))
    src = OUT / "mlp_float.onnx"
    src.write_bytes(_export(mlp.eval(), (torch.zeros(1, I),), ["x"], ["y"]))
    quantize_static(str(src), str(OUT / "mlp_static.onnx"), _Reader(),
                    quant_format=QuantFormat.QOperator, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QInt8)
    src.unlink()
    np.savez_compressed(OUT / "mlp_static.npz", x=xs, y=_stream(OUT / "mlp_static.onnx", xs,
                                                               ["x"]))
    for p in sorted(OUT.glob("*.onnx")):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
