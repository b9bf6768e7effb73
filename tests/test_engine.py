"""The engine as a process-level component: threads, the compiled-code cache, warm-up."""

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import edgernn
from edgernn.kernels import cache
from edgernn.kernels import native as native_image

ROOT = Path(__file__).resolve().parents[1]


def _lstm_model(rng, i=64, h=256):
    r = lambda *s: (rng.standard_normal(s) * 0.05).astype(np.float32)  # noqa: E731
    return edgernn.Model([edgernn.LSTM(r(4 * h, i), r(4 * h, h), r(4 * h)),
                          edgernn.Dense(r(8, h), r(8))])


def test_a_long_run_releases_the_gil(rng):
    model = _lstm_model(rng)
    xs = rng.standard_normal((6000, 64)).astype(np.float32)
    model.stream().run(xs[:5])
    s = model.stream()
    done = threading.Event()
    result = {}

    def work():
        result["ys"] = s.run(xs)
        done.set()

    t = threading.Thread(target=work)
    count = 0
    t.start()
    while not done.is_set():
        count += 1
    t.join()
    # with the GIL held for the whole run, this loop could not have run at all
    assert count > 10_000, count
    np.testing.assert_array_equal(result["ys"], model.stream().run(xs))


def test_threads_step_their_own_streams_in_parallel_with_serial_results(rng):
    model = _lstm_model(rng, 16, 32)
    xs = rng.standard_normal((4, 2000, 16)).astype(np.float32)
    serial = [model.stream().run(x) for x in xs]
    outs = [None] * 4

    def work(i):
        s, o = model.stream(), np.empty((2000, 8), np.float32)
        for t, x in enumerate(xs[i]):
            s.step(x, out=o[t])
        outs[i] = o

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_array_equal(outs[i], serial[i])


def _python(code, env_extra, cwd=None):
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


_PROBE = """
import numpy as np, edgernn
from edgernn.kernels import dense
m = edgernn.Model([edgernn.Dense(np.eye(3, dtype=np.float32), activation="relu")])
y = m.stream().run(np.ones((2, 3), np.float32))
k = dense.dense_kernel._cfunc   # None: loaded from the native image, without numba
print(y[0, 0], "image" if k is None else k.cache_hits)
"""


@pytest.mark.coldcache
@pytest.mark.parametrize("native", ["0", "1"])
def test_a_changed_kernel_source_is_never_served_from_a_stale_cache(tmp_path, native):
    """In a copy of the package: compile, load from cache, then edit the Dense kernel so
    it adds 1; the next process must compile the edited kernel, not load the old one
    (from numba's cache, or from the native image, edgernn.kernels.native)."""
    pkg = tmp_path / "pkg"
    shutil.copytree(ROOT / "edgernn", pkg / "edgernn",
                    ignore=shutil.ignore_patterns("__pycache__", "data"))
    env = {"PYTHONPATH": str(pkg), "EDGERNN_CACHE_DIR": str(tmp_path / "cache"),
           "EDGERNN_NATIVE": native}
    runs = []
    for _ in range(2):
        out = _python(_PROBE, env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        runs.append(out.stdout.split())
    # compiled, then cached (numba's cache, or the image where the machine has one)
    again = "image" if native == "1" and native_image.enabled() else "1"
    assert runs[0] == ["1.0", "0"] and runs[1] == ["1.0", again]
    kern = pkg / "edgernn" / "kernels" / "dense.py"
    src = kern.read_text()
    edited = src.replace("        copy(S, b + src, S, b + dst, n)",
                         "        copy(S, b + src, S, b + dst, n)\n"
                         "    for j in range(n):\n        S[b + dst + j] += 1.0")
    assert edited != src
    kern.write_text(edited)
    out = _python(_PROBE, env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2.0", "0"]


@pytest.mark.coldcache
def test_an_unwritable_cache_directory_warns_and_still_runs(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = _python(_PROBE, {"EDGERNN_CACHE_DIR": str(blocker / "cache")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "1.0"
    assert "not writable" in out.stderr and "EDGERNN_CACHE_DIR" in out.stderr
    assert not (blocker / "cache").exists()


def test_cache_directory_comes_from_the_environment():
    d = cache.cache_dir()
    want = Path(os.environ["EDGERNN_CACHE_DIR"]) if "EDGERNN_CACHE_DIR" in os.environ \
        else cache.default_dir()
    assert d is not None and d.parent == want.expanduser()
    assert d.name == f"engine-{cache.source_hash()[:16]}"


def test_load_compiles_what_the_model_needs_before_the_first_step(tmp_path):
    """(numba's path: with the native image, nothing is compiled in a warm process)"""
    code = """
    import sys, numpy as np, edgernn
    from edgernn.kernels import dense, lstm, gru
    m = edgernn.load(sys.argv[1])
    print(dense.dense_kernel._cfunc is not None, lstm.lstm_kernel._cfunc is not None,
          gru.gru_kernel._cfunc is None)
    """
    rng = np.random.default_rng(0)
    _lstm_model(rng, 4, 8).save(tmp_path / "m.ernn")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(tmp_path / "m.ernn")],
                         capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, EDGERNN_NATIVE="0"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"]


def test_denormals_flush_inside_the_engine_and_the_callers_mode_is_kept():
    """A state decaying by halves passes through subnormals: the engine flushes them to
    zero (no slow subnormal arithmetic), and leaves the process's FP mode as it was."""
    H = 16
    model = edgernn.Model([edgernn.RNN(np.zeros((H, 2), np.float32),
                                       np.eye(H, dtype=np.float32) * 0.5,
                                       nonlinearity="linear")])
    s = model.stream()
    s.set_state(edgernn.StreamState(("0.h",), (np.ones(H, np.float32),)))
    ys = s.run(np.zeros((160, 2), np.float32))
    tiny = np.finfo(np.float32).tiny
    assert np.all((ys == 0) | (np.abs(ys) >= tiny))  # never a subnormal
    assert ys[125, 0] == 2.0 ** -126 and ys[126, 0] == 0.0
    sub = np.float32(tiny) * np.float32(0.25)
    assert 0 < sub < tiny  # numpy still sees IEEE subnormals after the call


def test_step_trusts_a_checked_out_array_but_not_a_reshaped_one(rng):
    model = _lstm_model(rng, 4, 8)
    s = model.stream()
    x = np.ones(4, np.float32)
    out = np.empty(8, np.float32)
    s.step(x, out=out)
    out.shape = (2, 4)
    with pytest.raises(edgernn.StreamError, match=r"shape \(8,\)"):
        s.step(x, out=out)


@pytest.mark.parametrize("mode", ["float32", "int8-weights", "int8"])
def test_step_and_batch_step_make_no_native_allocations(tmp_path, mode):
    """Numba's runtime counts its C-level mallocs (NUMBA_NRT_STATS); tracemalloc cannot see
    them. Crossing into the engine with ``out=`` must allocate nothing: no MemInfo per array,
    nothing in the float or the int8 kernels. (numba's own path, ``EDGERNN_NATIVE=0``: code
    from the native image is not linked to numba's runtime at all, tests/test_native.py.)"""
    code = """
    import sys, numpy as np, edgernn
    from numba.core.runtime import rtsys
    m = edgernn.load(sys.argv[1])
    s, b = m.stream(), m.streams(4)
    x, out = np.ones(m.input_size, np.float32), np.empty(m.output_size, np.float32)
    X, Y = np.ones((4, m.input_size), np.float32), np.empty((4, m.output_size), np.float32)
    for _ in range(50):
        s.step(x, out=out), b.step(X, out=Y)
    a = rtsys.get_allocation_stats()
    for _ in range(2000):
        s.step(x, out=out), b.step(X, out=Y)
    z = rtsys.get_allocation_stats()
    print(z.alloc - a.alloc, z.mi_alloc - a.mi_alloc)
    """
    rng = np.random.default_rng(0)
    model = _lstm_model(rng, 4, 8)
    if mode != "float32":
        import converters

        cal = [rng.standard_normal((40, 4)).astype(np.float32) for _ in range(3)]
        model = converters.quantize(model, cal, mode=mode, progress=False, min_macs=0)
    model.save(tmp_path / "m.ernn")
    out = _python(code.replace("sys.argv[1]", repr(str(tmp_path / "m.ernn"))),
                  {"NUMBA_NRT_STATS": "1", "EDGERNN_NATIVE": "0"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "0"]


def test_loading_a_model_does_not_import_scipy_linalg(tmp_path):
    """numba's BLAS probe imports scipy.linalg (0.3-0.6 s of every start): edgernn skips it
    (edgernn.kernels.startup), and numba code that convolves still gives numpy's results."""
    code = """
    import sys, numpy as np, edgernn, numba
    m = edgernn.load(sys.argv[1])
    m.stream().step(np.ones(m.input_size, np.float32))
    print("scipy.linalg" in sys.modules)
    import scipy.linalg
    a, b = np.arange(7.0), np.array([1.0, -2.0, 0.5])
    f = numba.njit(lambda a, b: (np.convolve(a, b), np.correlate(a, b)))
    print(all(np.allclose(x, y) for x, y in zip(f(a, b), (np.convolve(a, b),
                                                          np.correlate(a, b)))))
    """
    _lstm_model(np.random.default_rng(0), 4, 8).save(tmp_path / "m.ernn")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(tmp_path / "m.ernn")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
