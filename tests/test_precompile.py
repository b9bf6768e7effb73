"""Cold start: what the cache lacks is compiled in parallel processes
(edgernn.engine.precompile)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import edgernn
from edgernn.engine import precompile

# Loads the model in a fresh process, counts the compile processes it starts and tells,
# per kernel, whether this process compiled it or loaded it from the cache.
_LOAD = """
import json, subprocess, sys
import numpy as np
started = []
real = subprocess.Popen
class Counting(real):
    def __init__(self, *a, **k):
        started.append(a[0][-1])
        super().__init__(*a, **k)
subprocess.Popen = Counting
if len(sys.argv) > 2 and sys.argv[2] == "frozen":
    sys.frozen = True  # as PyInstaller sets it: sys.executable is the application
elif len(sys.argv) > 2:
    sys.executable = sys.argv[2]  # a child that cannot run
import edgernn
from edgernn.engine import precompile
from edgernn.kernels import abi
m = edgernn.load(sys.argv[1])
y = m.stream().run(np.linspace(-1, 1, 5 * m.input_size, dtype=np.float32)
                   .reshape(5, m.input_size))
here = {}
for name in precompile.kernels_of(m)[1:]:
    mod, fn = name.split(":")
    cf = getattr(getattr(__import__("edgernn.kernels." + mod).kernels, mod), fn)._cfunc
    here[name] = cf is not None and cf.cache_hits == 0   # None: from the native image
print(json.dumps({"started": len(started), "y": y.tolist(), "compiled_here": here,
                  "cached": {k: precompile.cached(k) for k in precompile.kernels_of(m)}}))
"""


def _model():
    r = np.random.default_rng(3)
    w = lambda *s: (r.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    return edgernn.Model([edgernn.GRU(w(24, 5), w(24, 8), w(24), w(24)),
                          edgernn.LSTM(w(16, 8), w(16, 4), w(16)),
                          edgernn.Dense(w(3, 4), w(3), activation="tanh")])


def _load(path, cache_dir, jobs, *extra, cwd=None, script=None):
    env = dict(os.environ, EDGERNN_CACHE_DIR=str(cache_dir), EDGERNN_COMPILE_JOBS=str(jobs))
    code = ["-c", textwrap.dedent(_LOAD)]
    if script is not None:  # run from a file: the working directory is not on sys.path
        script.write_text(textwrap.dedent(_LOAD))
        code = [str(script)]
    out = subprocess.run([sys.executable, *code, str(path), *extra], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.coldcache
def test_a_cold_load_compiles_in_parallel_and_a_warm_one_starts_no_process(tmp_path):
    _model().save(tmp_path / "m.ernn")
    cold = _load(tmp_path / "m.ernn", tmp_path / "par", 2)
    assert cold["started"] == 1  # this process and one child
    assert all(cold["cached"].values())
    # the child's share was loaded from the cache here, the rest compiled here
    assert 0 < sum(cold["compiled_here"].values()) < len(cold["compiled_here"])
    warm = _load(tmp_path / "m.ernn", tmp_path / "par", 2)
    assert warm["started"] == 0 and not any(warm["compiled_here"].values())
    serial = _load(tmp_path / "m.ernn", tmp_path / "serial", 1)
    assert serial["started"] == 0 and all(serial["compiled_here"].values())
    assert cold["y"] == serial["y"] == warm["y"]
    ref = _model().stream().run(np.linspace(-1, 1, 25, dtype=np.float32).reshape(5, 5))
    np.testing.assert_array_equal(np.float32(cold["y"]), ref)


@pytest.mark.coldcache
def test_a_child_that_fails_leaves_the_work_to_this_process(tmp_path):
    _model().save(tmp_path / "m.ernn")
    broken = tmp_path / "python3-broken"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    got = _load(tmp_path / "m.ernn", tmp_path / "c", 2, str(broken))
    assert got["started"] == 1 and all(got["compiled_here"].values())
    ref = _model().stream().run(np.linspace(-1, 1, 25, dtype=np.float32).reshape(5, 5))
    np.testing.assert_array_equal(np.float32(got["y"]), ref)


def test_a_frozen_application_never_starts_itself_again(tmp_path):
    _model().save(tmp_path / "m.ernn")
    got = _load(tmp_path / "m.ernn", tmp_path / "f", 2, "frozen")
    assert got["started"] == 0 and all(got["compiled_here"].values())


def test_the_work_is_split_by_cost():
    names = [precompile.ENGINE, "qlinalg:qmatvec_kernel", "linalg:matvec_kernel",
             "gru:gru_kernel", "dense:dense_kernel"]
    groups = precompile._split(names, 2)
    assert sorted(sum(groups, [])) == sorted(names)
    cost = [sum(precompile.COST.get(k, 1.0) for k in g) for g in groups]
    assert abs(cost[0] - cost[1]) <= 1.0
    assert precompile._split(names, 1) == [sorted(names, key=lambda k: -precompile.COST.get(
        k, 1.0))]


def test_kernels_of_a_model_include_nested_and_int8_ops():
    import converters

    r = np.random.default_rng(0)
    w = lambda *s: (r.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    bi = edgernn.Bidirectional(edgernn.GRU(w(12, 3), w(12, 4), w(12), w(12)),
                               edgernn.GRU(w(12, 3), w(12, 4), w(12), w(12)))
    assert set(precompile.kernels_of(edgernn.Model([bi]))) == {
        precompile.ENGINE, "linalg:matvec_kernel", "gru:gru_kernel"}
    m = _model()
    q = converters.quantize(m, [r.standard_normal((50, 5)).astype(np.float32)] * 3,
                            mode="int8-weights", progress=False, min_macs=0)
    assert "qlinalg:qmatvec_kernel" in precompile.kernels_of(q)
    assert "qlinalg:qmatvec_kernel" not in precompile.kernels_of(m)


@pytest.mark.coldcache
def test_a_child_does_not_import_from_the_working_directory(tmp_path):
    """`python -c` puts the working directory first on sys.path: a numba.py lying there
    must not be what a compile child imports."""
    _model().save(tmp_path / "m.ernn")
    work = tmp_path / "work"
    work.mkdir()
    (work / "numba.py").write_text("raise SystemExit('the working directory was imported')\n")
    got = _load(tmp_path / "m.ernn", tmp_path / "c", 2, cwd=work, script=tmp_path / "load.py")
    assert got["started"] == 1 and not all(got["compiled_here"].values())
