"""Build the LiteRT versions of the reference nets S, M, L of BENCH.md.

Runs in a separate TensorFlow environment (never needed by tests or edgernn)::

    /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 \
        ai-edge-litert==2.3.0 torch==2.13.0
    /work/tfvenv/bin/python bench/make_litert_models.py

Each net is built in PyTorch (``torch.manual_seed(1, 2, 3)`` before S, M, L),
its weights copied into a tf-keras model with input shape (1, 1, I) (LSTM
non-stateful -> fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` with variable-tensor
state; GRU ``stateful=True`` -> ``WHILE`` loop), and converted to LiteRT float32
and dynamic-range int8. Writes ``bench/models/{S,M,L}_{f32,drq}.tflite`` and
``{S,M,L}_torch.npz`` (the torch ``state_dict`` as numpy), after checking that
LiteRT streaming outputs match torch over 50 steps.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as K  # noqa: E402
import torch  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nets  # noqa: E402

OUT = Path(__file__).resolve().parent / "models"
STEPS = 50
TOL_F32 = 1e-4


def build_torch(name):
    """The reference net ``name`` (batch_first: LiteRT streams (1, 1, I) inputs)."""
    return nets.build_torch(name, batch_first=True)


def _np(t):
    return t.detach().numpy().astype(np.float32)


def _gru_keras_order(w):
    """Rows r, z, n (torch) -> z, r, h (Keras)."""
    r, z, n = np.split(w, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def build_keras(net):
    """A tf-keras model with input (1, 1, I) holding the torch net's weights."""
    rnn, lin = net.rnn, net.linear
    layers, weights = [], []
    for k in range(rnn.num_layers):
        w_ih, w_hh = _np(getattr(rnn, f"weight_ih_l{k}")), _np(getattr(rnn, f"weight_hh_l{k}"))
        b_ih, b_hh = _np(getattr(rnn, f"bias_ih_l{k}")), _np(getattr(rnn, f"bias_hh_l{k}"))
        more = k < rnn.num_layers - 1
        if isinstance(rnn, nn.LSTM):  # i,f,g,o is Keras' i,f,c,o
            layers.append(K.layers.LSTM(rnn.hidden_size, return_sequences=more))
            weights.append([w_ih.T, w_hh.T, b_ih + b_hh])
        else:
            layers.append(K.layers.GRU(rnn.hidden_size, stateful=True, return_sequences=more,
                                       reset_after=True))
            weights.append([_gru_keras_order(w_ih).T, _gru_keras_order(w_hh).T,
                            np.stack([_gru_keras_order(b_ih), _gru_keras_order(b_hh)])])
    dense = K.layers.Dense(lin.out_features, activation="sigmoid" if net.sigmoid else None)
    model = K.Sequential([K.Input(batch_shape=(1, 1, rnn.input_size)), *layers, dense])
    for layer, w in zip(layers, weights, strict=True):
        layer.set_weights(w)
    dense.set_weights([_np(lin.weight).T, _np(lin.bias)])
    return model


def convert(model, drq):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if drq:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()


def litert_stream(buf, xs):
    """LiteRT outputs for xs float32[T, I], one ``invoke`` per step."""
    it = Interpreter(model_content=buf, num_threads=1)
    it.allocate_tensors()
    i_idx = it.get_input_details()[0]["index"]
    o_idx = it.get_output_details()[0]["index"]
    ys = []
    for x in xs:
        it.set_tensor(i_idx, x.reshape(1, 1, -1))
        it.invoke()
        ys.append(it.get_tensor(o_idx).reshape(-1).copy())
    return np.stack(ys)


def torch_stream(net, xs):
    state, ys = None, []
    with torch.no_grad():
        for x in xs:
            y, state = net(torch.from_numpy(x).reshape(1, 1, -1), state)
            ys.append(y.numpy().reshape(-1))
    return np.stack(ys)


def main():
    OUT.mkdir(exist_ok=True)
    failed = False
    for name in ("S", "M", "L"):
        net = build_torch(name).eval()
        np.savez(OUT / f"{name}_torch.npz",
                 **{k: v.numpy() for k, v in net.state_dict().items()})
        xs = np.random.default_rng(0).standard_normal((STEPS, net.rnn.input_size))
        xs = xs.astype(np.float32)
        ref = torch_stream(net, xs)
        model = build_keras(net)
        for kind in ("f32", "drq"):
            buf = convert(model, drq=(kind == "drq"))
            path = OUT / f"{name}_{kind}.tflite"
            path.write_bytes(buf)
            diff = float(np.abs(litert_stream(buf, xs) - ref).max())
            bad = kind == "f32" and diff > TOL_F32
            failed |= bad
            flag = f"  FAIL (> {TOL_F32:g})" if bad else ""
            print(f"{path.name}: {len(buf)} bytes, max |LiteRT - torch| over {STEPS} "
                  f"steps = {diff:.3g}{flag}")
    if failed:
        sys.exit("LiteRT float32 outputs do not match torch")


if __name__ == "__main__":
    main()
