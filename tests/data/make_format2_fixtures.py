"""Model files of format 2.0, written by edgernn 0.2.0 before the house moved (commit
c67bef9), with that release's outputs.

Run with those sources first on the path:

    git worktree add /tmp/before c67bef9
    PYTHONPATH=/tmp/before .venv/bin/python tests/data/make_format2_fixtures.py

Writes ``tests/data/format2/<name>.ernn`` and ``expected.npz``, read by
``tests/test_fileformat.py``: a graph (concatenations, a slice, elementwise ops with
constants, two inputs and outputs), an int8 graph quantised by that release, and a
stack with an initial state.
"""

from pathlib import Path

import numpy as np

import edgernn

OUT = Path(__file__).resolve().parent / "format2"


def main():
    assert "/before/" in edgernn.__file__ or edgernn.__version__ == "0.2.0"
    rng = np.random.default_rng(11)

    def r(*s):
        return (rng.standard_normal(s) * 0.3).astype(np.float32)

    x = edgernn.Input(6, name="x")
    aux = edgernn.Input(2, name="aux")
    d = edgernn.Dense(r(8, 6), r(8), "tanh")(x, name="dense")
    g1 = edgernn.GRU(r(24, 8), r(24, 8), r(24), r(24))(d, name="gru1")
    lo, hi = edgernn.split(g1, [3, 5])
    g2 = edgernn.LSTM(r(16, 18), r(16, 4))(edgernn.concat([x, g1, aux, edgernn.slice(d, 0, 2)]),
                                           name="lstm")
    y1 = edgernn.Dense(r(3, 4), None, "sigmoid")(edgernn.add(g2, 1.0), name="gains")
    y2 = edgernn.sub(hi, edgernn.mul(hi, 0.25), name="rest")
    graph = edgernn.Model(inputs=[x, aux], outputs=[y1, y2])
    stack = edgernn.Model([edgernn.RNN(r(5, 3), r(5, 5), nonlinearity="relu"),
                           edgernn.Dense(r(2, 5))],
                          initial_state=edgernn.StreamState(("0.h",), (r(5),)))
    from converters import quantize

    xs = {"graph": r(40, 8), "stack": r(40, 3)}
    q = quantize(graph, calibration=r(300, 8), mode="int8", progress=False)
    OUT.mkdir(exist_ok=True)
    expected = {}
    for name, m in (("graph", graph), ("graph_int8", q), ("stack", stack)):
        m.save(OUT / f"{name}.ernn")
        data = xs["stack" if name == "stack" else "graph"]
        expected[f"{name}.xs"] = data
        expected[f"{name}.ys"] = m.stream().run(data)
    np.savez(OUT / "expected.npz", **expected)


if __name__ == "__main__":
    main()
