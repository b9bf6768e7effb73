"""The bench's own instruments: the C yardstick's numbers and the cold-start probe."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import edgernn
from edgernn.cli import benchmark
from tests.helpers import c_compiler

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:  # appended: bench/serial.py must not shadow pyserial
    sys.path.append(str(BENCH))


def _need_cc():
    c_compiler()


@pytest.mark.parametrize("kind, i, h", [("GRU", 5, 7), ("LSTM", 16, 32), ("GRU", 42, 96)])
def test_c_yardstick_matches_torch(tmp_path, kind, i, h):
    """bench/c/rnn_step.c (packed panels, padded rows, fast tanh) against torch, with the
    state carried across two calls."""
    _need_cc()
    import yardstick

    lib, how = yardstick.build(tmp_path)
    assert lib is not None, how
    torch.manual_seed(3)
    mod = getattr(torch.nn, kind)(i, h)
    sd = {k: v.detach().numpy() for k, v in mod.state_dict().items()}
    c = yardstick.CLayer(lib, kind, sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"],
                         sd["bias_hh_l0"])
    xs = np.random.default_rng(0).standard_normal((300, i)).astype(np.float32)
    ys = np.empty((300, h), np.float32)
    c.run(xs[:120], ys[:120])
    c.run(xs[120:], ys[120:])
    with torch.no_grad():
        ref = mod(torch.from_numpy(xs))[0].numpy()
    assert np.abs(ys - ref).max() < 1e-5


@pytest.mark.coldcache
def test_cold_start_probe_uses_the_given_cache(tmp_path):
    """benchmark.cold_start_s compiles into the cache folder it is given (an empty one is
    a cold start), not into the user's cache."""
    rng = np.random.default_rng(0)
    model = edgernn.Model([edgernn.Dense(rng.standard_normal((2, 3)).astype(np.float32))])
    model.save(tmp_path / "d.ernn")
    cache = tmp_path / "cache"
    t = benchmark.cold_start_s(tmp_path / "d.ernn", str(cache))
    assert t > 0
    assert any(p.name.startswith("engine-") for p in cache.iterdir())


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")
                                          if "argparse" in p.read_text()))
def test_every_bench_script_with_a_command_line_starts(script):
    """``--help`` imports a script and everything it imports (a moved helper broke one)."""
    import subprocess

    out = subprocess.run([sys.executable, str(BENCH / script), "--help"], cwd=BENCH.parent,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-800:]
    assert "usage" in out.stdout
