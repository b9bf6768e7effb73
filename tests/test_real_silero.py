"""Silero VAD (snakers4/silero-vad, MIT; the ONNX files of the ``silero-vad`` wheel): each
converts with its input shape given and ``sr`` a constant (the ``If`` nodes on it and on
shapes fold), and streams 32 ms chunks with its LSTM state inside, within 1e-5 of ONNX
Runtime fed its state back as ``silero_vad.OnnxWrapper`` does, over 30 s of real speech;
and the sequence export (``silero_vad_16k_sequence.onnx``) one chunk per step."""

import numpy as np
import pytest

from tests.helpers import need_module
from tests.real_models import package_file, silero_vad_file, speech_16k

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


def test_the_sequence_export_streams_one_chunk_per_step_like_onnxruntime():
    """``silero_vad_16k_sequence.onnx`` takes ``[sequence_length, 576]`` chunks and the LSTM's
    ``h``, ``c``: given one chunk per step (``input_shapes``), the chunk axis is time, the
    LSTM keeps ``h`` and ``c`` inside, and the probabilities are those of ONNX Runtime fed
    ``hn``, ``cn`` back (which equal its own whole-sequence call) over 30 s of real speech.
    On the way: a slice of the STFT convolution's length axis (a crop of each channel)."""
    ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
    from converters.onnx import from_onnx

    path = package_file("silero_vad", "silero_vad_16k_sequence.onnx",
                        "silero-vad (the dev extra)")
    chunks = _chunks(16000)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    h = c = np.zeros((1, 1, 128), np.float32)
    want = []
    for x in chunks:
        y, h, c = sess.run(None, {"input": x[None], "h": h, "c": c})
        want.append(y.reshape(-1)[0])
    zero = np.zeros((1, 1, 128), np.float32)
    whole = sess.run(None, {"input": chunks, "h": zero, "c": zero})[0]
    np.testing.assert_allclose(whole, want, atol=1e-6, rtol=0)
    model = from_onnx(str(path), input_shapes={"input": (1, 576)})
    assert model.input_size == 576 and model.output_size == 1
    assert any(type(op).__name__ == "LSTM" for op in model.layers)
    s = model.stream()
    got = np.array([s.step(x)[0] for x in chunks])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert 0.2 < np.mean(np.array(want) > 0.5) < 0.95


@pytest.fixture(scope="module")
def vad_file(tmp_path_factory):
    return silero_vad_file(tmp_path_factory.mktemp("vad"))


@pytest.mark.parametrize("kw", [{}, {"threshold": 0.6, "min_speech_duration_ms": 100,
                                     "min_silence_duration_ms": 50, "speech_pad_ms": 10}])
def test_edgernn_vad_gives_silero_vads_own_segments_on_recordings(vad_file, tmp_path, kw,
                                                                  capsys):
    """``edgernn vad`` against ``silero_vad.get_speech_timestamps`` (its own ONNX wrapper)
    on real speech with pauses: the same segments, each boundary within one 32 ms chunk."""
    import json

    torch = need_module("torch", "torch (the dev extra)")
    silero_vad = need_module("silero_vad", "silero-vad (the dev extra)")
    sf = need_module("soundfile", "soundfile (the audio extra)")
    from edgernn.cli import main

    x = speech_16k(30)
    sf.write(tmp_path / "speech.wav", x, 16000, subtype="FLOAT")
    ref = silero_vad.get_speech_timestamps(torch.from_numpy(x), silero_vad.load_silero_vad(
        onnx=True), sampling_rate=16000, **kw)
    flags = {"threshold": "--threshold", "min_speech_duration_ms": "--min-speech-ms",
             "min_silence_duration_ms": "--min-silence-ms", "speech_pad_ms": "--pad-ms"}
    argv = ["vad", str(tmp_path / "speech.wav"), "--model", str(vad_file), "--json"]
    for k, v in kw.items():
        argv += [flags[k], str(v)]
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)["segments"]
    assert len(got) == len(ref) and len(ref) >= 5
    for g, r in zip(got, ref, strict=True):
        assert abs(g["start"] * 16000 - r["start"]) <= 512, (g, r)
        assert abs(g["end"] * 16000 - r["end"]) <= 512, (g, r)


def test_vad_streams_probabilities_for_any_block_size(vad_file):
    import edgernn
    from edgernn.audio import VAD

    vad = VAD(vad_file)
    x = speech_16k(5)
    whole = vad.probabilities(x)
    vad.reset()
    parts = np.concatenate([vad.process(x[a:b]) for a, b in ((0, 100), (100, 40000),
                                                             (40000, len(x)))])
    np.testing.assert_array_equal(parts, whole[:len(parts)])
    x3 = edgernn.Input(3)
    with pytest.raises(edgernn.EdgeRNNError, match="kind 'vad'"):
        VAD(edgernn.Model(inputs=x3, outputs=edgernn.Unary("abs")(x3)))


def test_convert_cli_takes_input_shapes_and_constants(tmp_path, capsys):
    """``edgernn convert silero_vad.onnx --input-shape ... --constant sr=8000`` gives the
    model ``from_onnx(input_shapes=, constants=)`` gives (the 8 kHz branch taken, its
    probabilities those of ONNX Runtime fed ``sr=8000``); malformed flags are one-line
    refusals naming the flag."""
    ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
    import edgernn
    from edgernn.cli import main

    path = package_file("silero_vad", "silero_vad.onnx", "silero-vad (the dev extra)")
    out = tmp_path / "vad8k.ernn"
    assert main(["convert", str(path), "--input-shape", "input=1,288",
                 "--input-shape", "state=2,1,128", "--constant", "sr=8000",
                 "-o", str(out)]) == 0
    model = edgernn.load(out)
    assert model.input_size == 288
    chunks = _chunks(8000, seconds=4)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state, s = np.zeros((2, 1, 128), np.float32), model.stream()
    for c in chunks:
        want, state = sess.run(None, {"input": c[None], "state": state,
                                      "sr": np.array(8000, np.int64)})
        np.testing.assert_allclose(s.step(c), want.reshape(-1), atol=1e-5, rtol=0)
    capsys.readouterr()
    for flags, words in ((["--input-shape", "input"], "--input-shape: expected NAME=VALUE"),
                         (["--input-shape", "input=1,x"], "expected positive integers"),
                         (["--constant", "sr=fast"], "--constant: expected a number"),
                         (["--constant", "sr=0.5"], "sr is int64"),
                         (["--constant", "rate=8000"], "not graph inputs")):
        code = main(["convert", str(path), "--input-shape", "state=2,1,128", *flags,
                     "-o", str(tmp_path / "bad.ernn")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and words in err and len(err.splitlines()) == 1, (flags, err)
        assert not (tmp_path / "bad.ernn").exists()
