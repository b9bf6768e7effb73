"""converters.quantize on graph models: an RNNoise-shaped denoiser converted from Keras
(Concatenate feeding GRUs, two heads) and a two-input graph with a shared Dense and
merges, against the int8 oracle evaluated node by node (tests/naive_quant.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import converters
import edgernn
from converters.quantize.qlayer import quant
from tests import naive, naive_quant

DATA = Path(__file__).parent / "data" / "keras"


def _frames(n, T, size, seed):
    """Sines plus noise, as feature frames of a signal would vary."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    return [(0.8 * np.sin(rng.uniform(0.02, 0.3, size) * t + rng.uniform(0, 6.3, size)) +
             0.3 * rng.standard_normal((T, size))).astype(np.float32) for _ in range(n)]


@pytest.fixture(scope="module")
def rnnoise():
    return converters.from_keras(DATA / "graph_rnnoise.h5")


@pytest.mark.parametrize("mode", ["int8", "int8-weights"])
def test_rnnoise_graph_quantised_node_by_node(rnnoise, mode, tmp_path):
    q = converters.quantize(rnnoise, _frames(4, 400, 42, 0), mode=mode, progress=False, min_macs=0)
    old, new = rnnoise.graph, q.graph
    assert [t.name for t in new.nodes] == [t.name for t in old.nodes]
    assert [[i.name for i in t.inputs] for t in new.nodes] == \
        [[i.name for i in t.inputs] for t in old.nodes]
    assert (q.inputs, q.outputs) == (rnnoise.inputs, rnnoise.outputs)
    kinds = {t.name: type(t.op).__name__ for t in new.nodes}
    for t in new.nodes:
        if kinds[t.name] in ("Dense", "GRU"):
            assert quant(t.op).mode == mode and t.op.quantizable[0] in quant(t.op).scales
        else:  # the Concatenates stay as they were
            assert quant(t.op) is None and t.op is old.nodes[new.nodes.index(t)].op
    assert {e["name"]: e["precision"] for e in q.quantization["layers"]
            if e["type"] in ("Dense", "GRU")} == {n: mode for n, k in kinds.items()
                                                  if k in ("Dense", "GRU")}
    xs = _frames(1, 120, 42, 9)[0]
    ys = q.stream().run(xs)
    np.testing.assert_allclose(ys, naive_quant.run(q, xs), rtol=0, atol=2e-5)
    q.save(tmp_path / "q.ernn")
    again = edgernn.load(tmp_path / "q.ernn")
    np.testing.assert_array_equal(again.stream().run(xs), ys)
    assert again.quantization == q.quantization
    # the report's end-to-end figure is what the quantised graph does against the float one
    held = _frames(4, 400, 42, 0)[-1]  # carved off: the last of the 4 sequences
    err = np.abs(naive_quant.run(q, held) - naive.run(rnnoise, held))
    assert q.quantization["end_to_end"]["held_out"]["max_abs"] == pytest.approx(
        err.max(), rel=0.05)
    assert err.max() < 0.05


def test_rnnoise_mixed_precision_by_node_name(rnnoise):
    q = converters.quantize(rnnoise, _frames(4, 400, 42, 1), progress=False, min_macs=0,
                            mode={"default": "int8-weights", "denoise_gru": "float32",
                                  "vad": "int8"})
    ops = {t.name: t.op for t in q.graph.nodes}
    assert quant(ops["denoise_gru"]) is None and quant(ops["vad"]).mode == "int8"
    assert quant(ops["noise_gru"]).mode == "int8-weights"
    assert q.quantization["mode"] == "mixed"
    with pytest.raises(edgernn.ModelFormatError, match=r"layer 'gru9' does not exist.*vad_gru"):
        converters.quantize(rnnoise, _frames(2, 400, 42, 1), mode={"gru9": "int8"},
                            progress=False, min_macs=0)


def test_two_input_graph_with_a_shared_dense_and_merges():
    """graph_merges: inputs a and b, a Dense shared by two nodes, Add of three, Subtract,
    Multiply, Average, an LSTM; each node of the shared Dense gets its own ranges."""
    model = converters.from_keras(DATA / "graph_merges.h5")
    data = _frames(4, 150, model.input_size, 2)
    q = converters.quantize(model, data, mode="int8", progress=False, min_macs=0)
    shared = [t for t in q.graph.nodes if type(t.op).__name__ == "Dense"
              and t.op.weight.shape == (4, 3)]
    assert len(shared) == 2
    assert quant(shared[0].op).input_scale != quant(shared[1].op).input_scale
    xs = _frames(1, 80, model.input_size, 3)[0]
    np.testing.assert_allclose(q.stream().run(xs), naive_quant.run(q, xs), rtol=0, atol=2e-5)
    assert q.quantization["end_to_end"]["held_out"]["snr_db"] > 25
