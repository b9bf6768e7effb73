"""converters.common: the gate-order table against each framework's documented order,
the TFLite activation codes against LiteRT's generated schema, state names from ops."""

from __future__ import annotations

import numpy as np
import pytest

import edgernn
from converters.common import gates
from converters.common.state import state_prefixes
from converters.common.tflite_codes import FUSED_ACTIVATION

# the orders as each framework's documentation writes them (ONNX Operators.md, Keras
# source, LiteRT kernels), with the gate each letter is in PyTorch's names
DOCUMENTED = {("onnx", "LSTM"): ("i", "o", "f", "c"), ("onnx", "GRU"): ("z", "r", "h"),
              ("keras", "LSTM"): ("i", "f", "c", "o"), ("keras", "GRU"): ("z", "r", "h"),
              ("tflite", "LSTM"): ("i", "f", "c", "o"), ("tflite", "GRU"): ("z", "r", "h"),
              ("onnx", "peephole"): ("i", "o", "f")}
PYTORCH = {"LSTM": ("i", "f", "c", "o"), "GRU": ("r", "z", "h"), "peephole": ("i", "f", "o")}


@pytest.mark.parametrize("source,kind", sorted(DOCUMENTED))
def test_reorder_moves_each_documented_gate_block_to_pytorch_order(source, kind):
    names = DOCUMENTED[(source, kind)]
    h = 3
    a = np.concatenate([np.full((h, 2), k, np.float32) for k in range(len(names))])
    out = gates.reorder(a, source, kind)
    got = [names[int(out[k * h, 0])] for k in range(len(names))]
    assert got == list(PYTORCH[kind])
    assert out.shape == a.shape


def test_tflite_fused_activation_codes_match_litert_schema():
    from ai_edge_litert import schema_py_generated as S

    schema = {v: k for k, v in vars(S.ActivationFunctionType).items() if not k.startswith("_")}
    assert FUSED_ACTIVATION == schema


def test_state_prefixes_give_the_names_a_stream_uses():
    rng = np.random.default_rng(0)
    lstm = edgernn.LSTM(*(rng.standard_normal(s).astype(np.float32)
                          for s in ((8, 3), (8, 2), (8,), (8,))))
    for op in (lstm, edgernn.Bidirectional(lstm, lstm, "concat"), edgernn.Reverse(lstm)):
        names = [f"0.{p}{s}" for p in state_prefixes(op) for s, _ in lstm.state_vectors()]
        assert sorted(names) == sorted(edgernn.Model([op]).stream().get_state().names)
    assert state_prefixes(lstm) == [""]
