"""``from_tflite(arithmetic="litert")``: LOGISTIC, TANH and MEAN computed as LiteRT's
builtin kernels compute them, bit for bit, against LiteRT itself (no delegate) on
single-op TFLite graphs; edgernn's own arithmetic stays as it was."""

import numpy as np
import pytest

import edgernn
from tests.helpers import need_module
from tests.tflite_build import Graph


def _builtin(buf, *feeds):
    """LiteRT's builtin kernels (no XNNPack delegate), one thread."""
    litert = need_module("ai_edge_litert.interpreter", "ai-edge-litert (the dev extra)")
    it = litert.Interpreter(model_content=buf, num_threads=1,
                            experimental_op_resolver_type=litert.OpResolverType
                            .BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds, strict=True):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def _values(n):
    """Gate pre-activations and beyond: normal, wide uniform, a dense grid, and the
    edges (saturation, zero, tiny); LOGISTIC's results stay normal floats (edgernn
    flushes subnormals while a stream runs)."""
    rng = np.random.default_rng(0)
    parts = [rng.normal(0, 2, n), rng.uniform(-20, 20, n), np.linspace(-18, 18, n),
             [0.0, -0.0, 1e-30, -1e-30, 3e-4, -3e-4, 7.9073896, -7.9073896, 8.5, 16.6355324,
              16.7, -80.0, 80.0]]
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("n", [40003, 257, 7])   # packets of 4 and a tail (LOGISTIC: scalar)
def test_activations_equal_litert_bit_for_bit(op, n, tmp_path):
    from converters import from_tflite

    x = _values(n // 3 + 1)[:n]
    g = Graph()
    inp = g.input("x", (1, 1, n))
    buf = g.build([inp], [g.op(op, [inp], (1, 1, n))])
    want = _builtin(buf, x[None, None])[0, 0]
    path = tmp_path / "act.tflite"
    path.write_bytes(buf)
    own = from_tflite(path)
    mine = from_tflite(path, arithmetic="litert")
    assert own.provenance.get("arithmetic") is None and mine.provenance["arithmetic"] == "litert"
    for math in ("fast", "exact"):
        np.testing.assert_array_equal(mine.stream(math=math).step(x), want)
    # the oracle has teeth: libm's correctly rounded values are not LiteRT's
    assert (own.stream(math="exact").step(x) != want).sum() > n // 10


def test_mean_sums_in_float32_in_order_as_litert(tmp_path):
    from converters import from_tflite

    rng = np.random.default_rng(1)
    g = Graph()
    inp = g.input("x", (1, 1, 256))
    buf = g.build([inp], [g.op("MEAN", [inp, g.ints([2])], (1, 1, 1), keepDims=True)])
    path = tmp_path / "mean.tflite"
    path.write_bytes(buf)
    edgernn.save(from_tflite(path, arithmetic="litert"), tmp_path / "mean.ernn")
    mine = edgernn.load(tmp_path / "mean.ernn").stream()   # "mean_litert" survives the file
    own = from_tflite(path).stream()
    same_own = 0
    for _ in range(200):
        x = (rng.normal(0, 1, 256) * 10.0 ** rng.integers(-6, 3)).astype(np.float32)
        want = _builtin(buf, x[None, None]).reshape(-1)
        np.testing.assert_array_equal(mine.step(x), want)
        same_own += bool(own.step(x)[0] == want[0])
    assert same_own < 150   # edgernn's own mean (float64 sum) is another rounding


def test_arithmetic_names_what_it_takes(tmp_path):
    from converters import from_tflite

    g = Graph()
    inp = g.input("x", (1, 1, 4))
    path = tmp_path / "tanh.tflite"
    path.write_bytes(g.build([inp], [g.op("TANH", [inp], (1, 1, 4))]))
    with pytest.raises(ValueError, match="arithmetic: expected 'litert', 'edgernn' or None"):
        from_tflite(path, arithmetic="eigen")
