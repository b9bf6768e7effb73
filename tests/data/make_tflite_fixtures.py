"""Make the LiteRT fixtures of ``tests/test_convert_tflite.py``.

Runs in a separate TensorFlow environment, never in tests::

    python3 -m venv /work/tfvenv
    /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 ai-edge-litert==2.3.0
    /work/tfvenv/bin/python tests/data/make_tflite_fixtures.py

Models are built with tf-keras (Keras 2), whose converter emits the fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` for a non-stateful LSTM and a ``WHILE`` loop
for stateful layers, and (``k3_*``) with Keras 3, whose converter emits
``WHILE`` loops for LSTMs as well. Weights are random (fixed seeds, biases
non-zero so they are not folded away). Each ``<case>.tflite`` has a
``<case>.npz`` beside it:

``x``  float32[T, I]  the input sequence
``y``  float32[T, O]  LiteRT ``Interpreter`` outputs, one ``invoke`` per step
                      (``mode == "stream"``; ``"stream_reset"`` when the
                      model restarts from zero state at every invoke), or of
                      one ``invoke`` over the
                      whole sequence (``mode == "sequence"``; for layers with
                      ``return_sequences=False`` only the last row is given)
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as K  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

OUT = Path(__file__).resolve().parent / "tflite"
L = K.layers
I = 3
STEPS = 1000
SEQ = 20


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(np.float32)
                       for w in model.get_weights()])


def _convert(model, optimize=False):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if optimize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()


def _with_peephole_and_clip(buf, seed, cell_clip):
    """The model's fused LSTM given random peephole weights and a cell clip.

    Keras never emits peepholes; the flatbuffer is edited with the schema's
    object API so the converter's peephole and clip paths meet LiteRT itself.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S

    m = S.ModelT.InitFromPackedBuf(buf, 0)
    sg = m.subgraphs[0]
    op = next(o for o in sg.operators if m.operatorCodes[o.opcodeIndex].builtinCode
              == S.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM)
    op.inputs = np.array(op.inputs).copy()
    H = sg.tensors[op.inputs[5]].shape[0]
    rng = np.random.default_rng(seed)
    for k in (9, 10, 11):  # cell-to-input, cell-to-forget, cell-to-output
        b = S.BufferT()
        b.data = rng.normal(0.0, 0.5, H).astype(np.float32).tobytes()
        m.buffers.append(b)
        t = S.TensorT()
        t.shape, t.type, t.buffer = [H], S.TensorType.FLOAT32, len(m.buffers) - 1
        t.name = f"peephole_{k}".encode()
        sg.tensors.append(t)
        op.inputs[k] = len(sg.tensors) - 1
    op.builtinOptions.cellClip = cell_clip
    fb = flatbuffers.Builder(0)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def _stream(buf, x):
    """One ``invoke`` per row of ``x`` (float32[T, I]); state persists."""
    it = Interpreter(model_content=buf, num_threads=1)
    it.allocate_tensors()
    i_idx = it.get_input_details()[0]["index"]
    o_idx = it.get_output_details()[0]["index"]
    ys = []
    for t in range(x.shape[0]):
        it.set_tensor(i_idx, x[t].reshape(1, 1, -1))
        it.invoke()
        ys.append(it.get_tensor(o_idx).reshape(-1).copy())
    return np.stack(ys)


def _sequence(buf, x):
    it = Interpreter(model_content=buf, num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x[None])
    it.invoke()
    y = it.get_tensor(it.get_output_details()[0]["index"])
    return y.reshape(-1, y.shape[-1]).copy()


def _stream_cases():
    return {
        "lstm_fused": [L.LSTM(8), L.Dense(4)],
        "lstm_fused_stack": [L.LSTM(16, return_sequences=True), L.LSTM(8),
                             L.Dense(3, activation="softmax")],
        "gru_while": [L.GRU(8, stateful=True), L.Dense(2, activation="sigmoid")],
        "gru_while_reset_before": [L.GRU(8, stateful=True, reset_after=False), L.Dense(2)],
        "lstm_while": [L.LSTM(8, stateful=True), L.Dense(2)],
        "rnn_while": [L.SimpleRNN(8, stateful=True), L.Dense(3, activation="softmax")],
        "rnn_relu_while": [L.SimpleRNN(6, activation="relu", stateful=True), L.Dense(2)],
        "lstm_unroll": [L.LSTM(8, stateful=True, unroll=True),
                        L.Dense(2, activation="sigmoid")],
        "gru_unroll": [L.GRU(8, stateful=True, unroll=True), L.Dense(2)],
        "gru_unroll_reset_before": [L.GRU(6, stateful=True, unroll=True, reset_after=False),
                                    L.Dense(2, activation="tanh")],
        "gru_while_stack": [L.GRU(8, stateful=True, return_sequences=True),
                            L.GRU(4, stateful=True), L.Dense(2)],
        "lstm_unroll_stack": [L.LSTM(6, stateful=True, unroll=True, return_sequences=True),
                              L.LSTM(4, stateful=True, unroll=True), L.Dense(2)],
        "rnn_unroll": [L.SimpleRNN(5, stateful=True, unroll=True), L.Dense(2)],
        "lstm_fused_peephole_clip": [L.LSTM(8), L.Dense(2)],
    }


def _sequence_cases():
    return {
        "lstm_fused_seq": [L.LSTM(8, return_sequences=True), L.Dense(2)],
        "gru_seq": [L.GRU(8), L.Dense(2, activation="softmax")],
        "dense_relu_lstm_seq": [L.Dense(5, activation="relu"), L.LSTM(4), L.Dense(2)],
    }


def _keras3_cases(k3):
    """Keras 3 (TensorFlow backend) models: its converter emits WHILE loops for LSTMs too."""
    L3 = k3.layers
    return {
        "k3_gru_while": ("stream", (1, 1, I), [L3.GRU(8, stateful=True),
                                               L3.Dense(2, activation="sigmoid")]),
        "k3_lstm_while_reset": ("stream_reset", (1, 1, I), [L3.LSTM(8), L3.Dense(2)]),
        "k3_lstm_unroll": ("stream", (1, 1, I), [L3.LSTM(4, stateful=True, unroll=True),
                                                 L3.Dense(2)]),
        "k3_lstm_seq": ("sequence", (1, SEQ, I), [L3.LSTM(6, return_sequences=True),
                                                  L3.Dense(2)]),
    }


def _keras3_fixtures():
    import keras as k3

    for seed, (name, (mode, shape, layers)) in enumerate(_keras3_cases(k3).items(), start=200):
        k3.utils.set_random_seed(seed)
        model = k3.Sequential([k3.Input(batch_shape=shape), *layers])
        _randomise(model, seed)
        buf = _convert(model)
        rng = np.random.default_rng(seed)
        if mode == "sequence":
            x = rng.standard_normal((SEQ, I)).astype(np.float32)
            y = _sequence(buf, x)
        else:
            x = rng.standard_normal((STEPS, I)).astype(np.float32)
            y = _stream(buf, x)
        _save(name, buf, x=x, y=y, mode=mode)


def main():
    OUT.mkdir(exist_ok=True)
    for seed, (name, layers) in enumerate(_stream_cases().items()):
        rng = np.random.default_rng(seed)
        K.utils.set_random_seed(seed)
        model = K.Sequential([K.Input(batch_shape=(1, 1, I))] + layers)
        _randomise(model, seed)
        buf = _convert(model)
        x = rng.standard_normal((STEPS, I)).astype(np.float32)
        if name == "lstm_fused_peephole_clip":
            buf = _with_peephole_and_clip(buf, seed, cell_clip=0.7)
        _save(name, buf, x=x, y=_stream(buf, x), mode="stream")
    for seed, (name, layers) in enumerate(_sequence_cases().items(), start=100):
        rng = np.random.default_rng(seed)
        K.utils.set_random_seed(seed)
        model = K.Sequential([K.Input(batch_shape=(1, SEQ, I))] + layers)
        _randomise(model, seed)
        buf = _convert(model)
        x = rng.standard_normal((SEQ, I)).astype(np.float32)
        _save(name, buf, x=x, y=_sequence(buf, x), mode="sequence")
    _keras3_fixtures()
    # An op edgernn does not convert: a 1-D convolution.
    K.utils.set_random_seed(7)
    model = K.Sequential([K.Input(batch_shape=(1, 4, I)), L.Conv1D(2, 2), L.Flatten()])
    (OUT / "unsupported_conv.tflite").write_bytes(_convert(model))
    # A Bidirectional LSTM (a reversed second LSTM): not supported.
    K.utils.set_random_seed(9)
    model = K.Sequential([K.Input(batch_shape=(1, 4, I)), L.Bidirectional(L.LSTM(4))])
    (OUT / "unsupported_bidirectional.tflite").write_bytes(_convert(model))
    # An LSTM unrolled over a fixed sequence, not stateful: not supported.
    K.utils.set_random_seed(10)
    model = K.Sequential([K.Input(batch_shape=(1, 3, I)), L.LSTM(4, unroll=True)])
    _randomise(model, 10)
    (OUT / "unsupported_unroll_sequence.tflite").write_bytes(_convert(model))
    # Dynamic-range quantised fused LSTM: int8 weights (the converter quantises
    # tensors of 1024 elements and more), not yet supported.
    K.utils.set_random_seed(8)
    model = K.Sequential([K.Input(batch_shape=(1, 1, 40)), L.LSTM(32), L.Dense(2)])
    _randomise(model, 8)
    (OUT / "lstm_fused_drq.tflite").write_bytes(_convert(model, optimize=True))
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}")


def _save(name, buf, **arrays):
    (OUT / f"{name}.tflite").write_bytes(buf)
    np.savez_compressed(OUT / f"{name}.npz", **arrays)
    print(f"{name}: {len(buf)} bytes, y {arrays['y'].shape}")


if __name__ == "__main__":
    main()
