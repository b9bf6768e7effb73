"""Files written by release 0.1.0 (format 1.0) still load and give the outputs 0.1.0 gave.

The files and the outputs that release computed were committed by
``tests/data/make_v1_fixtures.py``; ``demo_m.ernn`` is the release's bundled model.
"""

from pathlib import Path

import numpy as np
import pytest

import edgernn

V1 = Path(__file__).parent / "data" / "v1"


@pytest.mark.parametrize("name", ["tokens_bidir", "gru_state_last", "rnn_relu"])
def test_release_0_1_0_files_load_and_reproduce_their_outputs(name):
    model = edgernn.load(V1 / f"{name}.ernn")
    xs, want = np.load(V1 / f"{name}.xs.npy"), np.load(V1 / f"{name}.ys.npy")
    np.testing.assert_allclose(model.stream().run(xs), want, rtol=0, atol=1e-6)


def test_release_0_1_0_demo_model_loads():
    model = edgernn.load(V1 / "demo_m.ernn")
    assert (model.input_size, model.output_size) == (42, 22)
    feats = np.load(Path(edgernn.__file__).parent / "data" / "demo_features.npy")[:50]
    ys = model.stream().run(feats)
    assert ys.shape == (50, 22) and np.all((ys > 0) & (ys < 1))  # sigmoid gains
