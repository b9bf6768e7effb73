"""Silero VAD (snakers4/silero-vad, MIT; the ONNX files of the ``silero-vad`` wheel): each
converts with its input shape given and ``sr`` a constant (the ``If`` nodes on it and on
shapes fold), and streams 32 ms chunks with its LSTM state inside, within 1e-5 of ONNX
Runtime fed its state back as ``silero_vad.OnnxWrapper`` does, over 30 s of real speech."""

import numpy as np
import pytest

from tests.helpers import need_module
from tests.real_models import package_file, speech_16k

# file, rate, takes sr (then If nodes on it)
CASES = [("silero_vad.onnx", 16000, True), ("silero_vad.onnx", 8000, True),
         ("silero_vad_16k_op15.onnx", 16000, True), ("silero_vad_half.onnx", 16000, False),
         ("silero_vad_op18_ifless.onnx", 16000, True), ("silero_vad_op18_ifless.onnx", 8000, True),
         ("silero_vad_openvino_16k.onnx", 16000, False)]


def _chunks(rate, seconds=30):
    """The wrapper's inputs: each 32 ms chunk after the last 64 (32 at 8 kHz) samples of
    the one before (zeros at first)."""
    x = speech_16k(seconds)
    if rate == 8000:
        x = x[::2]   # the wrapper decimates by slicing too
    n, c = (512, 64) if rate == 16000 else (256, 32)
    ctx, out = np.zeros(c, np.float32), []
    for k in range(len(x) // n):
        chunk = np.concatenate([ctx, x[k * n:(k + 1) * n]])
        ctx = chunk[-c:]
        out.append(chunk)
    return np.stack(out).astype(np.float32)


@pytest.mark.parametrize("name, rate, takes_sr", CASES,
                         ids=[f"{c[0]}-{c[1] // 1000}k" for c in CASES])
def test_silero_vad_streams_like_onnxruntime(name, rate, takes_sr):
    ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
    from converters.onnx import from_onnx

    path = package_file("silero_vad", name, "silero-vad (the dev extra)")
    chunks = _chunks(rate)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state, want = np.zeros((2, 1, 128), np.float32), []
    for c in chunks:
        feed = {"input": c[None], "state": state}
        if takes_sr:
            feed["sr"] = np.array(rate, np.int64)
        out, state = sess.run(None, feed)
        want.append(out.reshape(-1)[0])
    model = from_onnx(str(path), input_shapes={"input": (1, chunks.shape[1]),
                                               "state": (2, 1, 128)},
                      constants={"sr": np.array(rate, np.int64)} if takes_sr else None)
    assert model.input_size == chunks.shape[1] and model.output_size == 1
    s = model.stream()
    got = np.array([s.step(c)[0] for c in chunks])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert 0.2 < np.mean(np.array(want) > 0.5) < 0.95   # real speech and its pauses
