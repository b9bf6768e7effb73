"""DTLN (breizhn/DTLN, MIT; ../shared/models/dtln): its published ONNX stages convert and
stream step by step with their state inside edgernn, against ONNX Runtime with the
state fed back by hand as the authors' real-time loop does, on real recorded speech."""

import numpy as np

from tests import naive
from tests.helpers import need_module
from tests.real_models import dtln_magnitudes, model_file, speech_16k

BLOCKS = 2000


def _ort_stage(path, inputs, state_shape):
    ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    state = np.zeros(state_shape, np.float32)
    outs, states = [], []
    for x in inputs:
        y, state = sess.run(None, {names[0]: x[None, None], names[1]: state})
        outs.append(y[0, 0])
        states.append(state)
    return np.stack(outs), states


def test_dtln_stage_1_onnx_streams_like_onnxruntime_on_real_speech():
    from converters.onnx import from_onnx, run_like_onnx

    path = model_file("dtln", "model_1.onnx")
    mags, _ = dtln_magnitudes(speech_16k(BLOCKS * 128 / 16000 + 1), BLOCKS)
    model = from_onnx(str(path))
    assert [type(op).__name__ for op in model.layers] == ["LSTM", "LSTM", "Dense"]
    want, states = _ort_stage(path, mags, (1, 2, 128, 2))
    # libm's sigmoid/tanh as ONNX Runtime's; math="fast" (rational, < 3e-7 each)
    # drifts to 2.2e-5 after 2000 blocks of this 128-unit LSTM pair
    s = model.stream(math="exact")
    got = np.stack([s.step(m).copy() for m in mags])          # state kept inside
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(model.stream(math="exact").run(mags), got)
    np.testing.assert_allclose(model.stream().run(mags), want, atol=5e-5, rtol=0)
    # the state input/output pair maps onto the LSTMs' h and c: [0, layer, :, h|c]
    out = run_like_onnx(model, {"input_2": mags[:300][None], "input_3": np.zeros(
        (1, 2, 128, 2), np.float32)}, math="exact")
    st = out["tf_op_layer_stack_2"]
    assert st.shape == (1, 2, 128, 2)
    np.testing.assert_allclose(st, states[299], rtol=1e-5, atol=1e-4)   # |c| reaches ~100


def _est_blocks(mags, phases, masks):
    """The authors' loop between the stages: ``irfft(mag * mask * e^{i phase})``."""
    return np.stack([np.fft.irfft(m * k * np.exp(1j * p)) for m, k, p in
                     zip(mags, masks, phases, strict=True)]).astype(np.float32)


def test_dtln_stage_2_onnx_unrolled_cells_and_layer_norm_stream_like_onnxruntime():
    """model_2.onnx writes its LSTMs out (MatMul, Split, Sigmoid, Tanh, Mul) and carries
    their h and c through input_5 -> tf_op_layer_stack_5: generic state inside edgernn."""
    from converters.onnx import from_onnx, run_like_onnx

    p1, p2 = model_file("dtln", "model_1.onnx"), model_file("dtln", "model_2.onnx")
    mags, phases = dtln_magnitudes(speech_16k(BLOCKS * 128 / 16000 + 1), BLOCKS)
    masks, _ = _ort_stage(p1, mags, (1, 2, 128, 2))
    blocks = _est_blocks(mags, phases, masks)
    want, states = _ort_stage(p2, blocks, (1, 2, 128, 2))
    model = from_onnx(str(p2), states={"input_5": "tf_op_layer_stack_5"})
    kinds = {type(op).__name__ for op in model.layers}
    assert {"State", "Reduce", "Div", "Unary"} <= kinds and "LSTM" not in kinds
    got = model.stream(math="exact").run(blocks)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got[:200], naive.run(model, blocks[:200]), atol=1e-5, rtol=0)
    out = run_like_onnx(model, {"input_4": blocks[:300][None], "input_5": np.zeros(
        (1, 2, 128, 2), np.float32)}, math="exact")
    np.testing.assert_allclose(out["tf_op_layer_stack_5"], states[299], rtol=1e-5, atol=1e-4)


def test_the_whole_dtln_pipeline_in_edgernn_equals_onnxruntime_on_a_recording():
    from converters.onnx import from_onnx

    p1, p2 = model_file("dtln", "model_1.onnx"), model_file("dtln", "model_2.onnx")
    speech = speech_16k(BLOCKS * 128 / 16000 + 1)
    mags, phases = dtln_magnitudes(speech, BLOCKS)

    def pipeline(stage1, stage2):
        masks = stage1(mags)
        blocks = stage2(_est_blocks(mags, phases, masks))
        out = np.zeros(BLOCKS * 128 + 384, np.float32)
        for k, b in enumerate(blocks):  # overlap-add, hop 128
            out[k * 128:k * 128 + 512] += b
        return out[:BLOCKS * 128]

    ort = pipeline(lambda x: _ort_stage(p1, x, (1, 2, 128, 2))[0],
                   lambda x: _ort_stage(p2, x, (1, 2, 128, 2))[0])
    m1 = from_onnx(str(p1))
    m2 = from_onnx(str(p2), states={"input_5": "tf_op_layer_stack_5"})
    ours = pipeline(lambda x: m1.stream(math="exact").run(x),
                    lambda x: m2.stream(math="exact").run(x))
    assert np.sqrt(np.mean(ours ** 2)) > 0.01  # real, enhanced speech came out
    np.testing.assert_allclose(ours, ort, atol=1e-4, rtol=0)


def test_the_cli_converts_both_stages_and_the_files_stream_the_same(tmp_path, capsys):
    import edgernn
    from converters.onnx import from_onnx
    from edgernn.cli import main

    p2 = model_file("dtln", "model_2.onnx")
    assert main(["convert", str(p2), "-o", str(tmp_path / "s2.ernn"), "--state",
                 "input_5=tf_op_layer_stack_5"]) == 0
    assert "state carried inside" in capsys.readouterr().out
    assert main(["convert", str(p2), "-o", str(tmp_path / "x.ernn"), "--state", "input_5"]) == 2
    assert "--state: expected INPUT=OUTPUT" in capsys.readouterr().err
    loaded = edgernn.load(tmp_path / "s2.ernn")
    assert loaded.manifest["format_version"] == "2.1"
    xs = np.random.default_rng(0).normal(0, 0.1, (50, 512)).astype(np.float32)
    want = from_onnx(str(p2), states={"input_5": "tf_op_layer_stack_5"}).stream().run(xs)
    np.testing.assert_array_equal(loaded.stream().run(xs), want)
