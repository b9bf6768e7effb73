"""Engine bugs met while making the converters produce graphs: minimal reproducers,
marked xfail(strict=True) until the engine is fixed (then the marks come off)."""

from __future__ import annotations

import numpy as np
import pytest

import edgernn


@pytest.mark.xfail(strict=True, raises=edgernn.ModelFormatError,
                   reason="a scalar constant of Add/Sub/Mul is saved as shape [1] and then "
                          "refused on load ('constant has 1 values, the tensor 4'); the "
                          "converters give float32[n] constants meanwhile")
def test_scalar_constant_of_mul_survives_save_and_load(tmp_path):
    x = edgernn.Input(4, name="x")
    model = edgernn.Model(inputs=x, outputs=edgernn.mul(x, 2.0, name="y"))
    model.save(tmp_path / "m.ernn")
    loaded = edgernn.load(tmp_path / "m.ernn")
    v = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(loaded.stream().step(v), 2 * v)
