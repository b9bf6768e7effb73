"""What a running daemon has loaded: no numba, llvmlite or scipy unless it must compile.

Model M's kernels and the denoiser's (its model and the audio front end) are first
compiled into a cache folder of the test's own by a fresh process (which writes
the native image, :mod:`edgernn.kernels.native`); the daemon then starts on that
cache (``python -m edgernn serve``, as systemd would) and is checked from outside,
through ``/proc/PID/maps``: the shared objects it mapped are those of its imports,
so a numba, llvmlite or scipy extension module there means the package was imported.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import need_module
from tests.serve_helpers import Daemon, free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
MODEL_M = ROOT / "edgernn" / "data" / "demo_m.ernn"
HEAVY = ("numba", "llvmlite", "scipy")
pytestmark = pytest.mark.skipif(platform.machine() != "x86_64" or sys.platform != "linux",
                                reason="the native image is used by default on x86-64 Linux")

_WARM = r"""
import sys
import numpy as np
import edgernn

m = edgernn.load(sys.argv[1])
m.stream().step(np.zeros(m.input_size, np.float32))
m.streams(2).step(np.zeros((2, m.input_size), np.float32))
from edgernn.audio import Denoiser

Denoiser().process(np.zeros(4000, np.float32))
"""


def _env(cache: Path) -> dict:
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {k: v for k, v in os.environ.items() if k != "EDGERNN_NATIVE"}
    return dict(env, PYTHONPATH=path, EDGERNN_CACHE_DIR=str(cache))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache folder holding model M's and the bundled denoiser's kernels and the audio
    front end's, and their native image."""
    cache = tmp_path_factory.mktemp("cache")
    p = subprocess.run([sys.executable, "-c", _WARM, str(MODEL_M)], env=_env(cache),
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert any(cache.glob("*/native-*/loop._engine_c.o")), "no native image was written"
    return cache


def heavy_objects(pid: int) -> list[str]:
    """The numba, llvmlite and scipy shared objects mapped into process ``pid``."""
    with open(f"/proc/{pid}/maps") as f:
        paths = {ln.split(None, 5)[5].strip() for ln in f if len(ln.split(None, 5)) == 6}
    return sorted(p for p in paths if any(f"/{name}/" in p or f"/{name}." in p
                                          for name in HEAVY))


def test_heavy_objects_sees_an_interpreter_that_imported_numba(tmp_path):
    """The oracle itself: a process that imported numba shows its shared objects."""
    p = subprocess.Popen([sys.executable, "-c", "import numba, sys; sys.stdin.read()"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: {name for name in HEAVY[:2] for o in heavy_objects(p.pid)
                            if f"/{name}/" in o} == set(HEAVY[:2]), 60,
                   "numba's and llvmlite's shared objects in the child's maps")
    finally:
        p.stdin.close()
        p.wait(30)


def test_serve_model_m_from_a_serial_device_maps_no_numba_llvmlite_or_scipy(tmp_path, cache):
    """The soak's daemon (model M, the simulated device on a pty, serial and unix-socket
    sinks) answers every frame bit-exactly with none of them loaded."""
    (tmp_path / "m.ernn").write_bytes(MODEL_M.read_bytes())
    dev, report = tmp_path / "dev", tmp_path / "sim.json"
    sim = subprocess.Popen([sys.executable, "-m", "firmware_bridge.sim", "--pty", str(dev),
                            "--model", str(tmp_path / "m.ernn"), "--rate", "500",
                            "--duration", "4", "--report", str(report)],
                           env=_env(cache), cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    wait_until(dev.exists, 120, "the simulated device's pty")
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text(f'device = "lean"\n[model]\npath = "m.ernn"\n[source]\nurl = "{dev}"\n'
                   f'[[sink]]\ntype = "serial"\n[[sink]]\ntype = "stdout"\n'
                   f'[metrics]\nlisten = "127.0.0.1:{free_port()}"\n')
    d = Daemon(cfg, env=_env(cache))
    try:
        d.wait_ready()
        wait_until(lambda: len(d.lines) > 200, 60, "the daemon's first results")
        loaded = heavy_objects(d.proc.pid)
        assert sim.wait(60) == 0, sim.stderr.read().decode()
        rc, _ = d.terminate()
    finally:
        d.kill()
        if sim.poll() is None:
            sim.kill()
    assert loaded == [], f"the daemon mapped {loaded}"
    assert rc == 0, d.stderr()
    rep = json.loads(report.read_text())
    assert rep["ok"] and rep["mismatched"] == 0 and rep["missing"] == 0, rep
    assert rep["matched"] > 1000 and len(d.lines) == rep["matched"]
    assert np.isfinite(d.results()[-1]["y"]).all()


def test_serve_denoise_wav_maps_no_numba_and_equals_the_offline_denoiser(tmp_path, cache):
    """A denoising daemon (bundled model, a WAV file in real time, a WAV file out) runs the
    front end from the native image too, bit for bit the offline :class:`Denoiser`'s."""
    sf = need_module("soundfile", "soundfile (the audio extra)")
    from edgernn.audio import Denoiser

    x, rate = sf.read(ROOT / "edgernn" / "data" / "denoise_demo.wav", dtype="float32")
    x = x[:3 * rate]
    sf.write(tmp_path / "noisy.wav", x, rate, subtype="FLOAT")
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text('device = "mic-1"\n[source]\nkind = "wav"\npath = "noisy.wav"\n'
                   'denoise = true\nrealtime = true\n[[sink]]\ntype = "wav"\n'
                   'path = "clean.wav"\n[metrics]\nlisten = ""\n')
    d = Daemon(cfg, env=_env(cache))
    try:
        d.wait_ready()
        time.sleep(1.0)  # a second of the file's three, in real time: the front end ran
        loaded = heavy_objects(d.proc.pid)
        d.run_to_end(60)
    finally:
        d.kill()
    assert loaded == [], f"the daemon mapped {loaded}"
    y = sf.read(tmp_path / "clean.wav", dtype="float32")[0]
    n = len(x) // 160 * 160
    assert len(y) == n
    np.testing.assert_array_equal(y, Denoiser().process(x[:n]))  # bit for bit
