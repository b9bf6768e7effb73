"""The audio front end from the native image: no numba in a warm process, numba's bits.

Fresh interpreters share one cache folder of the test's own: a cold one (numba
compiles the front end's C entries, :mod:`edgernn.audio.stft`, and writes them
into the image), a warm one (the image alone: numba, llvmlite and scipy must not
be imported) and one with ``EDGERNN_NATIVE=0`` (numba's own functions, the front
end as it ran before the image held it). Their features, synthesised audio and a
whole :class:`~edgernn.audio.Denoiser` run must be the same bit for bit, and
within the numpy oracle's tolerances of ``tests/test_audio_frontend.py``. A
damaged item falls back to numba with the same bits and is written again.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from edgernn.audio import FrontEndConfig
from edgernn.audio.layout import ANALYZE, SYNTHESIZE
from edgernn.kernels import cachedir, native
from tests.helpers import assert_same_bits, run_child
from tests.test_audio_frontend import _oracle

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64" or sys.platform != "linux",
                                reason="the native image is used by default on x86-64 Linux")

_CHILD = r"""
import json, sys
import numpy as np
from edgernn.audio import Denoiser, FrontEnd, FrontEndConfig

cfg = FrontEndConfig()
H, B, T = cfg.hop, cfg.num_bands, 60
rng = np.random.default_rng(7)
t = np.arange(T * H) / cfg.sample_rate
x = (0.3 * np.sin(2 * np.pi * 150 * t) * (t > 0.2) + 0.05 * rng.standard_normal(t.size))
x = x.astype(np.float32)
gains = rng.uniform(-0.2, 1.2, (T, B)).astype(np.float32)
res = {}
fe = FrontEnd(cfg)                      # the oracle's case: floor 0
f, y = [], []
for i in range(T):
    f.append(fe.analyze(x[i * H:(i + 1) * H]).copy())
    y.append(fe.synthesize(gains[i]).copy())
res["features"], res["out"] = np.array(f), np.concatenate(y)
d = Denoiser(attenuation_limit_db=12)
res["denoised"] = np.concatenate([d.process(x[k:k + 500]) for k in range(0, x.size, 500)])
info = {m: m in sys.modules for m in ("numba", "llvmlite", "scipy")}
odd = gains.copy()                      # NaN and out-of-range gains, floors, odd inputs
odd[5, 3], odd[9, :4] = np.nan, np.inf
fe2, f, y = FrontEnd(cfg), [], []
for i in range(T):
    hop = x[i * H:(i + 1) * H]
    if i % 3 == 1:
        hop = np.repeat(hop, 2)[::2]    # strided: numba's path in every process
    elif i % 3 == 2:
        hop = hop.astype(np.float64)
    f.append(fe2.analyze(hop).copy())
    g = odd[i].astype(np.float64) if i % 4 == 3 else odd[i]
    y.append(fe2.synthesize(g, 0.1 * (i % 5)).copy())
res["odd_features"], res["odd_out"] = np.array(f), np.concatenate(y)
np.savez(sys.argv[1], **res)
print(json.dumps(info | {"native": fe._analyze_c is not None}))
"""


def _run(cache: Path, out: Path, native: bool = True):
    return run_child(_CHILD, [], cache, out, native)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(cache folder, cold run, numba-only run): the cold one wrote the image."""
    tmp = tmp_path_factory.mktemp("audio-native")
    cache = tmp / "cache"
    cold_info, cold = _run(cache, tmp / "cold.npz")
    assert cold_info["native"]
    numba_info, numba_only = _run(cache, tmp / "numba.npz", native=False)
    assert numba_info["numba"] and not numba_info["native"]
    assert_same_bits(cold, numba_only)
    return cache, cold


def _items(cache: Path) -> list:
    """The front end's image items in ``cache``, for the sources as they are now."""
    folder = native.image_dir(cachedir.engine_dir(cache))
    return [p for name in (ANALYZE, SYNTHESIZE)
            if (p := folder / f"{name.replace(':', '.')}.o").exists()]


def test_a_warm_front_end_imports_no_numba_and_computes_numbas_bits(runs, tmp_path):
    cache, cold = runs
    assert len(_items(cache)) == 2
    info, warm = _run(cache, tmp_path / "warm.npz")
    assert info == {"numba": False, "llvmlite": False, "scipy": False, "native": True}
    assert_same_bits(warm, cold)


def test_the_native_front_end_matches_the_numpy_oracle(runs, tmp_path):
    cache, _ = runs
    _, warm = _run(cache, tmp_path / "warm.npz")
    cfg = FrontEndConfig()
    rng = np.random.default_rng(7)
    t = np.arange(60 * cfg.hop) / cfg.sample_rate
    x = (0.3 * np.sin(2 * np.pi * 150 * t) * (t > 0.2) + 0.05 * rng.standard_normal(t.size))
    gains = rng.uniform(-0.2, 1.2, (60, cfg.num_bands)).astype(np.float32)
    ref_f, ref_y = _oracle(x.astype(np.float32).astype(np.float64), gains, cfg)
    np.testing.assert_allclose(warm["features"][:, :-1], ref_f[:, :-1], rtol=1e-6, atol=2e-6)
    np.testing.assert_allclose(warm["features"][:, -1], ref_f[:, -1], atol=1e-5)
    np.testing.assert_allclose(warm["out"], ref_y, atol=1e-6)


@pytest.mark.parametrize("damage", ["corrupt", "missing", "stale"])
def test_a_damaged_front_end_item_falls_back_to_numba_and_is_written_again(runs, tmp_path,
                                                                           damage):
    cache, cold = runs
    obj = _items(cache)[0]
    meta = obj.with_suffix(".json")
    good_obj, good_meta = obj.read_bytes(), meta.read_text()
    try:
        if damage == "corrupt":
            obj.write_bytes(good_obj[:64] + bytes(len(good_obj) - 64))
        elif damage == "missing":
            obj.unlink()
        else:
            meta.write_text(json.dumps({**json.loads(good_meta), "source": "0" * 64}))
        info, got = _run(cache, tmp_path / "damaged.npz")
        assert info["numba"] and info["native"], (info, _items(cache))   # numba made it
        assert_same_bits(got, cold)
        info, again = _run(cache, tmp_path / "again.npz")
        assert not info["numba"] and info["native"]   # the item was written again
        assert_same_bits(again, cold)
    finally:
        obj.write_bytes(good_obj)
        meta.write_text(good_meta)
