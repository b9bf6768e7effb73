"""Model files of format 1.0, written by edgernn 0.1.0, with that release's outputs.

Run with the 0.1.0 sources first on the path (commit 69e56e5):

    git worktree add /tmp/edgernn-0.1 69e56e5
    PYTHONPATH=/tmp/edgernn-0.1 .venv/bin/python tests/data/make_format1_fixtures.py

Writes ``tests/data/format1/<name>.ernn`` and ``expected.npz`` (inputs and the
outputs 0.1.0 computed), read by ``tests/test_fileformat.py``.
"""

from pathlib import Path

import numpy as np

import edgernn

OUT = Path(__file__).resolve().parent / "format1"


def main():
    assert edgernn.__version__ == "0.1.0", f"needs edgernn 0.1.0, got {edgernn.__version__}"
    rng = np.random.default_rng(7)

    def r(*s):
        return (rng.standard_normal(s) * 0.3).astype(np.float32)

    models = {
        "stack": edgernn.Model([
            edgernn.LSTM(r(32, 5), r(32, 8), r(32), r(32), peephole=r(3, 8), cell_clip=2.0),
            edgernn.GRU(r(18, 8), r(18, 6), r(18), r(18), linear_before_reset=False),
            edgernn.RNN(r(6, 6), r(6, 6), nonlinearity="relu"),
            edgernn.Dense(r(4, 6), r(4), "softmax")], provenance={"source": "unit-test"}),
        "tokens_bidir": edgernn.Model([
            edgernn.Embedding(r(11, 4)),
            edgernn.Bidirectional(edgernn.GRU(r(18, 4), r(18, 6)), edgernn.GRU(r(18, 4), r(18, 6)),
                                  "concat"),
            edgernn.Dense(r(3, 12), None, edgernn.Activation("leaky_relu", 0.2))]),
    }
    init = edgernn.Model([edgernn.GRU(r(30, 3), r(30, 10)), edgernn.Dense(r(2, 10))])
    state = edgernn.StreamState(("0.h",), (r(10),))
    models["initial_state_last"] = edgernn.Model(init.layers, return_sequences=False,
                                                 initial_state=state)
    expected = {}
    for name, model in models.items():
        xs = (np.arange(60) % 11) if model.num_tokens else r(60, model.input_size) * 3
        model.save(OUT / f"{name}.ernn")
        expected[f"{name}.xs"] = xs
        expected[f"{name}.ys"] = model.stream().run(xs)
    np.savez(OUT / "expected.npz", **expected)


if __name__ == "__main__":
    main()
