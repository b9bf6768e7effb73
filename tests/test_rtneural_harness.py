"""bench/rtneural.py: RTNeural, built here, is the oracle of the small-layer targets; its
weights mapping (layout, gate order, GRU's two biases) is proved against torch."""

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import require

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:  # appended: bench/serial.py must not shadow pyserial
    sys.path.append(str(BENCH))

import rtneural  # noqa: E402

SIZES = (("GRU", 16, 32), ("LSTM", 16, 32))


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """The harness with the two 16->32 layers, built once (about 10 s)."""
    require(rtneural.cxx() is not None, "a C++ compiler (c++, g++ or clang++; .ci/run "
                                        "installs g++)")
    require(rtneural.tarball() is not None, f"RTNeural's source tarball in "
                                            f"{rtneural.THIRD_PARTY} (or "
                                            f"EDGERNN_RTNEURAL_TARBALL)")
    tmp = tmp_path_factory.mktemp("rtneural")
    path, how = rtneural.build(tmp, SIZES, unpack_in=tmp)
    assert path is not None, how
    assert [p.name for p in tmp.iterdir()] == [path.name]  # the unpacked sources are gone
    return path


def _xs(i, steps=300):
    return np.random.default_rng(1).standard_normal((steps, i)).astype(np.float32)


@pytest.mark.parametrize("kind, i, h", SIZES)
def test_rtneural_layer_matches_torch(lib, kind, i, h):
    """RTNeural stepped over 300 steps in two calls equals torch's layer (state carried)."""
    mod, w = rtneural.torch_layer(kind, i, h, seed=5)
    layer = rtneural.RTNeuralLayer(lib, kind, *w)
    assert rtneural.max_diff_vs_torch(layer, mod, _xs(i)) <= rtneural.TOL


def test_rtneural_gru_wrong_mapping_is_caught(lib):
    """The check sees a mapping error: r and z swapped, or GRU's recurrent bias folded into
    the input one (torch's n gate scales b_hn by r), each moves the outputs past TOL."""
    mod, (w_ih, w_hh, b_ih, b_hh) = rtneural.torch_layer("GRU", 16, 32, seed=5)
    swap = np.r_[32:64, 0:32, 64:96]
    folded = rtneural.RTNeuralLayer(lib, "GRU", w_ih, w_hh, b_ih + b_hh, np.zeros_like(b_hh))
    swapped = rtneural.RTNeuralLayer(lib, "GRU", w_ih[swap], w_hh[swap], b_ih[swap],
                                     b_hh[swap])
    for wrong in (folded, swapped):
        assert rtneural.max_diff_vs_torch(wrong, mod, _xs(16)) > 100 * rtneural.TOL


def test_rtneural_lstm_reset_restarts_from_zero(lib):
    """reset() zeroes h and c: a rerun after reset gives the first run's outputs."""
    _, w = rtneural.torch_layer("LSTM", 16, 32, seed=5)
    layer = rtneural.RTNeuralLayer(lib, "LSTM", *w)
    xs = _xs(16, 50)
    a = layer.run(xs, np.empty((50, 32), np.float32)).copy()
    b = layer.run(xs, np.empty((50, 32), np.float32))
    assert not np.array_equal(a, b)
    layer.reset()
    assert np.array_equal(a, layer.run(xs, np.empty((50, 32), np.float32)))


def test_rtneural_refuses_a_size_not_built(lib):
    """A layer the library was not compiled with is refused, naming it."""
    _, w = rtneural.torch_layer("GRU", 42, 96)
    with pytest.raises(ValueError, match="not built with GRU 42->96"):
        rtneural.RTNeuralLayer(lib, "GRU", *w)
