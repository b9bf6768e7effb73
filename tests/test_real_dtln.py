"""DTLN (breizhn/DTLN, MIT; ../shared/models/dtln): its published ONNX stages convert and
stream step by step with their state inside edgernn, against ONNX Runtime with the
state fed back by hand as the authors' real-time loop does, on real recorded speech."""

import numpy as np

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
