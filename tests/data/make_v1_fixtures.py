"""Model files written by edgernn 0.1.0 (format 1.0), kept to prove they still load.

Run once at release 0.1.0 (commit 69e56e5); the files and the outputs that
release computed are committed in ``tests/data/v1/``. Later releases must load
them and reproduce those outputs (``tests/test_fileformat_compat.py``).
``demo_m.ernn`` is the release's bundled demo model, copied unchanged.

    .venv/bin/python tests/data/make_v1_fixtures.py
"""

from pathlib import Path

import numpy as np

import edgernn

OUT = Path(__file__).resolve().parent / "v1"


def main() -> None:
    assert edgernn.__version__ == "0.1.0", "run this with the 0.1.0 release"
    rng = np.random.default_rng(7)
    r = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    state = edgernn.StreamState(("0.h",), (r(6),))
    models = {
        "tokens_bidir": (edgernn.Model([
            edgernn.Embedding(r(11, 4)),
            edgernn.LSTM(r(32, 4), r(32, 8), r(32), None, peephole=r(3, 8), cell_clip=3.0),
            edgernn.Bidirectional(edgernn.GRU(r(18, 8), r(18, 6), linear_before_reset=False),
                                  edgernn.GRU(r(18, 8), r(18, 6)), "sum"),
            edgernn.Dense(r(5, 6), r(5), edgernn.Activation("leaky_relu", 0.2)),
            edgernn.Activation("softmax")], provenance={"source": "unit-test"}),
            np.arange(30) % 11),
        "gru_state_last": (edgernn.Model(
            [edgernn.GRU(r(18, 3), r(18, 6), r(18), r(18)), edgernn.Dense(r(2, 6))],
            return_sequences=False, initial_state=state), r(25, 3)),
        "rnn_relu": (edgernn.Model([edgernn.RNN(r(5, 3), r(5, 5), nonlinearity="relu",
                                                clip=2.0), edgernn.Activation("tanh")]),
                     r(25, 3)),
    }
    for name, (model, xs) in models.items():
        model.save(OUT / f"{name}.ernn")
        np.save(OUT / f"{name}.xs.npy", xs)
        np.save(OUT / f"{name}.ys.npy", model.stream().run(xs))


if __name__ == "__main__":
    main()
