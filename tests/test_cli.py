"""The edgernn command line, run as a user would (a subprocess, real files)."""

import json
import subprocess
import sys

import numpy as np
import pytest

import edgernn


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "edgernn", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    m = edgernn.Model([edgernn.LSTM(rng.standard_normal((16, 3)).astype(np.float32) * .3,
                                    rng.standard_normal((16, 4)).astype(np.float32) * .3),
                       edgernn.Dense(rng.standard_normal((2, 4)).astype(np.float32))],
                      provenance={"source": "unit-test"})
    path = tmp_path_factory.mktemp("cli") / "m.ernn"
    m.save(path)
    return m, path


def test_inspect_shows_layers_and_provenance(model_file):
    _, path = model_file
    out = _cli("inspect", path)
    assert out.returncode == 0, out.stderr
    assert "LSTM" in out.stdout and "source: unit-test" in out.stdout and "ok" in out.stdout


def test_run_writes_the_stream_outputs(model_file, tmp_path):
    model, path = model_file
    xs = np.random.default_rng(1).standard_normal((50, 3)).astype(np.float32)
    np.save(tmp_path / "xs.npy", xs)
    out = _cli("run", path, "--input", tmp_path / "xs.npy", "--output", tmp_path / "ys.npy")
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "ys.npy"), model.stream().run(xs))


def test_bench_reports_percentiles_and_allocations(model_file, tmp_path):
    _, path = model_file
    out = _cli("bench", path, "--steps", 2000, "--no-cold", "--json", tmp_path / "b.json")
    assert out.returncode == 0, out.stderr
    res = json.loads((tmp_path / "b.json").read_text())
    assert 0 < res["step"]["p50_us"] <= res["step"]["p99_us"]
    assert res["allocations"]["net_blocks_per_step"] < 0.01


def test_warmup_compiles_every_entry_point():
    out = _cli("warmup")
    assert out.returncode == 0, out.stderr
    assert "engine ready" in out.stdout


@pytest.mark.parametrize("args,match", [
    (["inspect", "missing.ernn"], "No such file"),
    (["inspect", "NOTAMODEL"], "zip archive was expected"),
    (["run", "M", "--input", "bad.npy", "--output", "o.npy"], "expected a float array"),
])
def test_bad_input_is_one_line_and_exit_2(model_file, tmp_path, args, match):
    (tmp_path / "NOTAMODEL").write_text("hello")
    np.save(tmp_path / "bad.npy", np.zeros((4, 7), np.float32))
    args = [str(model_file[1]) if a == "M" else a for a in args]
    args = [str(tmp_path / a) if a in ("NOTAMODEL", "bad.npy", "o.npy") else a for a in args]
    out = _cli(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert match in out.stderr
