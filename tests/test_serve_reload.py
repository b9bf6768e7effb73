"""SIGHUP reloads and systemd notifications of edgernn serve, against real files and sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time

import numpy as np

from tests import naive
from tests.serve_helpers import Daemon, make_model, wait_until, warm_engine


def _config(path, model_id, extra=""):
    path.write_text(f"""
device = "bench"
[model]
path = "m.ernn"
id = "{model_id}"
[source]
kind = "stdin"
format = "json"
[[sink]]
type = "stdout"
[metrics]
listen = ""
{extra}""")


def _send(d, xs, start, stop, pause=0.0):
    for i in range(start, stop):
        line = {"stream": i % 2, "seq": i // 2, "x": xs[i].tolist()}
        d.proc.stdin.write(json.dumps(line).encode() + b"\n")
        d.proc.stdin.flush()
        if pause:
            time.sleep(pause)


def test_sighup_keeps_old_model_on_corrupt_file_and_swaps_good_one_losing_no_frame(tmp_path):
    warm_engine()
    a, b = make_model(seed=1), make_model(seed=2, kind="gru")
    mpath, cfg = tmp_path / "m.ernn", tmp_path / "edgernn.toml"
    a.save(mpath)
    good_b = tmp_path / "b.ernn"
    b.save(good_b)
    _config(cfg, "a")
    xs = np.random.default_rng(7).standard_normal((600, 16)).astype(np.float32)
    d = Daemon(cfg, stdin=subprocess.PIPE)
    try:
        d.wait_ready()
        _send(d, xs, 0, 200)
        wait_until(lambda: len(d.lines) >= 200, 30, "200 results")
        # a truncated copy of model b (what an interrupted copy leaves behind), new id too
        mpath.write_bytes(good_b.read_bytes()[: good_b.stat().st_size // 2])
        _config(cfg, "b")
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("reload failed; still serving a")
        _send(d, xs, 200, 400)
        wait_until(lambda: len(d.lines) >= 400, 30, "400 results")
        tmp = tmp_path / "m.ernn.new"  # the good model arrives atomically (rename)
        tmp.write_bytes(good_b.read_bytes())
        os.replace(tmp, mpath)
        sender = threading.Thread(target=_send, args=(d, xs, 400, 600, 0.002))
        sender.start()  # frames keep coming while the reload happens
        time.sleep(0.1)
        d.proc.send_signal(signal.SIGHUP)
        sender.join()
        d.wait_log("INFO reloaded: serving b")
        d.proc.stdin.close()  # end of input: the daemon answers everything and exits 0
        assert d.proc.wait(30) == 0
    finally:
        d.kill()
    log = d.stderr()
    assert "m.ernn" in log.split("reload failed")[1].splitlines()[0]  # the reason names the file
    res = d.results()
    assert len(res) == 600 and all("y" in r for r in res)
    s = d.summary()
    assert s["accepted"] == s["answered"] == 600 and s["unaccounted"] == 0
    for sid in (0, 1):
        rows = [r for r in res if r["stream"] == sid]
        assert [r["seq"] for r in rows] == list(range(300))  # none lost, in order
        ids = [r["model"] for r in rows]
        k = ids.index("b")
        assert 200 <= k < 300 and ids == ["a"] * k + ["b"] * (300 - k)  # one clean switch
        mine = xs[sid::2]
        ya = np.array([r["y"] for r in rows[:k]], np.float32)
        yb = np.array([r["y"] for r in rows[k:]], np.float32)
        sa, sb = a.stream(), b.stream()  # a's state carried over the failed reload;
        np.testing.assert_array_equal(ya, np.stack([sa.step(x) for x in mine[:k]]))
        np.testing.assert_array_equal(yb, np.stack([sb.step(x) for x in mine[k:]]))  # b fresh
        np.testing.assert_allclose(ya, naive.run(a, mine[:k]), atol=2e-5)
        np.testing.assert_allclose(yb, naive.run(b, mine[k:]), atol=2e-5)


def _datagrams(sock, until, timeout=30.0):
    """Notifications received until one contains ``until``: list of {KEY: VALUE} dicts."""
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            break
        got.append(dict(line.split("=", 1) for line in data.splitlines() if line))
        if until in got[-1]:
            return got
    raise AssertionError(f"no {until} notification; got {got}")


def test_serve_notifies_ready_watchdog_reloading_stopping_on_a_real_socket(tmp_path):
    warm_engine()
    make_model().save(tmp_path / "m.ernn")
    cfg = tmp_path / "edgernn.toml"
    _config(cfg, "m")
    addr = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    d = Daemon(cfg, env={"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "200000"},
               stdin=subprocess.PIPE)
    try:
        first = _datagrams(sock, "READY", timeout=120)
        assert "serving m" in first[-1]["STATUS"]
        pings = []
        t0 = time.monotonic()
        while len(pings) < 3:  # every WATCHDOG_USEC / 2 while the stepping loop lives
            pings += [g for g in _datagrams(sock, "WATCHDOG", 2.0) if "WATCHDOG" in g]
        assert time.monotonic() - t0 < 1.0
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        d.proc.send_signal(signal.SIGHUP)
        msgs = _datagrams(sock, "RELOADING")
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        rel = msgs[-1]
        assert rel["RELOADING"] == "1" and before <= int(rel["MONOTONIC_USEC"]) <= after
        done = _datagrams(sock, "READY")
        assert done[-1]["READY"] == "1" and "serving m" in done[-1]["STATUS"]
        d.proc.send_signal(signal.SIGTERM)
        bye = _datagrams(sock, "STOPPING")
        assert bye[-1]["STOPPING"] == "1"
        assert d.proc.wait(10) == 0
    finally:
        d.kill()
        sock.close()


def test_notifier_abstract_socket_watchdog_pid_and_errors(tmp_path):
    from edgernn_serve.notify import Notifier

    name = f"edgernn-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        env = {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "500000"}
        n = Notifier(environ={**env, "WATCHDOG_PID": str(os.getpid())})
        assert n.enabled and n.watchdog_s == 0.5
        assert n.ready("up") and sock.recv(100) == b"READY=1\nSTATUS=up\n"
        assert Notifier(environ={**env, "WATCHDOG_PID": "1"}).watchdog_s is None  # not us
    finally:
        sock.close()
    assert not n.watchdog() and n.errors == 1  # the manager's socket went away: counted
    off = Notifier(environ={})
    assert not off.enabled and not off.ready() and off.errors == 0


def test_serve_pins_cpus_and_asks_realtime_priority_for_the_stepping_thread(tmp_path):
    import re

    make_model().save(tmp_path / "m.ernn")
    cfg = tmp_path / "edgernn.toml"
    _config(cfg, "m", "[process]\ncpus = [0]\nrealtime_priority = 5\n")
    d = Daemon(cfg, stdin=subprocess.PIPE)
    try:
        d.wait_ready()
        status = open(f"/proc/{d.proc.pid}/status").read()
        assert re.search(r"Cpus_allowed_list:\s+0\n", status), status
        log = d.stderr()
        applied = re.search(r"stepper thread \(tid (\d+)\) runs SCHED_FIFO priority 5", log)
        if applied:  # root or LimitRTPRIO: check the kernel's view of that thread
            tid = int(applied.group(1))
            assert os.sched_getscheduler(tid) == os.SCHED_FIFO
            assert os.sched_getparam(tid).sched_priority == 5
            assert os.sched_getscheduler(d.proc.pid) == os.SCHED_OTHER  # only that thread
        else:  # refused: said so, and serving on
            assert "process.realtime_priority = 5 not applied" in log
        _send(d, np.zeros((4, 16), np.float32), 0, 4)
        wait_until(lambda: len(d.lines) == 4, 30, "4 results")
        rc, _ = d.terminate()
        assert rc == 0
    finally:
        d.kill()
