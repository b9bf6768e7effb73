"""Tests of the simulated device: its signals, and its CLI driving the bridge CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from firmware_bridge.sim import Imu, Vibration
from tests.test_bridge import make_model

PY = sys.executable


def test_imu_rest_reads_gravity_and_gestures_move():
    imu = Imu(rate=1000, channels=6, seed=0)
    x = imu.block(0, 4000)  # 4 s: shake at 0.5-1.2 s, tilt at 2.5-3.2 s
    rest = x[:400]
    np.testing.assert_allclose(np.linalg.norm(rest[:, :3], axis=1).mean(), 9.81, atol=0.05)
    assert np.abs(rest[:, 3:]).max() < 0.1
    assert imu.gesture_at(0.8) == "shake" and x[600:1100, 0].std() > 2.0
    assert imu.gesture_at(2.85) == "tilt" and x[2850, 1] > 5.0
    assert imu.gesture_at(1.5) is None
    wide = Imu(rate=1000, channels=16, seed=0).block(0, 10)
    assert wide.shape == (10, 16) and wide.dtype == np.float32
    np.testing.assert_allclose(wide[:, 6:12], wide[:, :6] * 1.05, rtol=1e-6)


def test_vibration_fault_shows_as_impulses():
    v = Vibration(rate=1000, channels=16, seed=0, fault_at=1.0)
    healthy, faulty = v.block(0, 900), v.block(1100, 900)

    def crest(a):
        return np.abs(a).max() / np.sqrt((a ** 2).mean())

    assert crest(faulty) > 1.5 * crest(healthy)


def _start(args, **kw):
    return subprocess.Popen([PY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=os.path.dirname(os.path.dirname(__file__)), **kw)


def test_sim_and_bridge_clis_end_to_end_over_pty(tmp_path):
    model = make_model(seed=4)
    path = str(tmp_path / "m.ernn")
    model.save(path)
    tty = str(tmp_path / "tty")
    sim = _start(["-m", "firmware_bridge.sim", "--pty", tty, "--model", path, "--rate", "1000",
                  "--duration", "2", "--corrupt", "0.02", "--garbage", "0.02", "--drop", "0.01",
                  "--streams", "2", "--signal", "vibration", "--unplug-at", "1.0"])
    end = time.monotonic() + 20
    while not os.path.lexists(tty) and time.monotonic() < end:
        time.sleep(0.02)
    stats_path = tmp_path / "stats.json"
    bridge = _start(["-m", "firmware_bridge.cli", "--port", tty, "--model", path,
                     "--stats-interval", "0.5", "--json", str(stats_path)])
    try:
        out, err = sim.communicate(timeout=30)
        report = json.loads(out)
        assert sim.returncode == 0, (report, err)
        bridge.send_signal(signal.SIGINT)  # Ctrl-C
        # (30 s: a bridge still compiling its engine, e.g. on a cold cache of a busy
        # machine, finishes that before it handles the signal)
        b_out, b_err = bridge.communicate(timeout=30)
    finally:
        for proc in (sim, bridge):
            if proc.poll() is None:
                proc.kill()
    assert bridge.returncode == 0, b_err
    assert b"samples / results" in b_out and b"step latency us" in b_out
    assert b"results" in b_err  # live statistics lines
    stats = json.loads(stats_path.read_text())
    assert report["ok"] and report["unplugs"] == 1 and report["dropped"] > 0
    # RESULTs in flight at the unplug are lost: they count in lost_at_unplug
    assert report["matched"] <= stats["results"] <= report["matched"] + report["lost_at_unplug"]
    assert stats["streams"] == 2 and stats["reconnects"] >= 1


def test_sim_cli_exits_2_without_a_host(tmp_path):
    done = subprocess.run([PY, "-m", "firmware_bridge.sim", "--pty", str(tmp_path / "t"),
                           "--connect-timeout", "0.3", "--duration", "1"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "no host handshake within 0.3 s" in done.stderr


def test_bridge_cli_reports_user_errors_in_one_line(tmp_path):
    model = make_model()
    path = str(tmp_path / "m.ernn")
    model.save(path)
    done = subprocess.run([PY, "-m", "firmware_bridge.cli", "--port", "/dev/nope-fb",
                           "--model", path], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        "edgernn bridge: error: cannot open serial port '/dev/nope-fb'")
    done = subprocess.run([PY, "-m", "firmware_bridge.cli", "--port", "loop://",
                           "--model", str(tmp_path / "missing.ernn")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stderr.strip() == (
        f"edgernn bridge: error: cannot read model '{tmp_path / 'missing.ernn'}': "
        "No such file or directory")


def test_bridge_cli_module_does_not_import_pyserial():
    code = ("import sys, argparse, firmware_bridge.cli as c; c.add_arguments("
            "argparse.ArgumentParser()); print('serial' in sys.modules)")
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "False", done.stderr


def test_device_fault_injection_bookkeeping_matches_a_decoder():
    from firmware_bridge import protocol as p
    from firmware_bridge.sim import Device

    dev = Device(transport=None, channels=6, corrupt=0.3, garbage=0.3, drop=0.1, seed=5)
    block = dev.signal.block(0, 3000)
    decoder, seen = p.Decoder(), []
    for k in range(3000):
        dev._sample(k, block[k], now_ns=k)
        seen += decoder.feed(bytes(dev.backlog))  # what the I/O loop would write
        dev.backlog.clear()
    c = dev.c
    assert c["corrupted"] > 700 and c["garbage_bursts"] > 700 and c["dropped"] > 200
    assert [f.seq for f in seen] == [q for _, q in dev.expected]
    assert len(seen) == c["intact"] and decoder.rejected_total == c["expected_rejects"]
    gaps = sum(1 for a, b in zip(seen, seen[1:], strict=False) if b.seq != a.seq + 1)
    assert gaps == c["expected_gaps"]


def test_bridge_cli_stops_on_sigterm_with_a_summary(tmp_path):
    path = str(tmp_path / "m.ernn")
    make_model().save(path)
    bridge = _start(["-m", "firmware_bridge.cli", "--port", "loop://", "--model", path])
    try:
        assert b"Ctrl-C to stop" in bridge.stderr.readline()
        bridge.send_signal(signal.SIGTERM)
        out, _ = bridge.communicate(timeout=10)
    finally:
        if bridge.poll() is None:
            bridge.kill()
    assert bridge.returncode == 0 and b"frames in / out: 0 / 0" in out
