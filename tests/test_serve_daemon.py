"""edgernn serve end to end: the simulated serial device in, a real mosquitto broker out.

The daemon runs as a subprocess (``python -m edgernn serve``) exactly as systemd
would start it; the device is ``python -m firmware_bridge.sim`` on a real pty,
checking every RESULT bit for bit against its own copy of the model.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serve_helpers import (
    Broker,
    Daemon,
    Subscriber,
    free_port,
    make_model,
    wait_until,
    warm_engine,
)


def _sim(tmp_path, model_path, *args):
    warm_engine()
    dev = tmp_path / "dev"
    report = tmp_path / "sim.json"
    proc = subprocess.Popen([sys.executable, "-m", "firmware_bridge.sim", "--pty", str(dev),
                             "--model", str(model_path), "--report", str(report), *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    end = time.monotonic() + 120
    while not dev.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < end, "simulated device never created its pty"
        time.sleep(0.01)
    return proc, dev, report


def _config(tmp_path, dev, sinks: str, metrics_port: int) -> object:
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text(f"""
device = "pump-7"
[model]
path = "m.ernn"
[source]
url = "{dev}"
[streams]
reset_on_gap = true
[[sink]]
type = "serial"
[[sink]]
type = "stdout"
{sinks}
[metrics]
listen = "127.0.0.1:{metrics_port}"
""")
    return cfg


def _by_stream(records) -> dict:
    out = defaultdict(list)
    for r in records:
        out[r["stream"]].append(r)
    return out


def test_serve_sim_to_mqtt_and_stdout_in_order_none_lost_across_broker_restart(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgernn/pump-7/#")
    make_model().save(tmp_path / "m.ernn")
    sim, dev, report = _sim(tmp_path, tmp_path / "m.ernn", "--rate", 200, "--streams", 3,
                            "--duration", 5, "--corrupt", 0.01, "--garbage", 0.01,
                            "--reset-on-gap")
    cfg = _config(tmp_path, dev, f"""
[[sink]]
type = "mqtt"
name = "fleet"
url = "mqtt://127.0.0.1:{broker.port}"
topic = "edgernn/{{device}}/{{stream}}"
qos = 1
buffer = 100000
reconnect_min = 0.05
reconnect_max = 0.3
""", free_port())
    d = Daemon(cfg)
    try:
        d.wait_ready()
        wait_until(lambda: len(sub.messages) > 100, 30, "the first MQTT results")
        broker.stop()  # the fleet broker restarts while the device keeps streaming
        time.sleep(1.0)
        broker.start()
        assert sim.wait(60) == 0, sim.stderr.read().decode()
        rep = json.loads(report.read_text())
        assert rep["ok"] and rep["matched"] > 2000 and rep["missing"] == 0, rep
        wait_until(lambda: len({m[1] for m in sub.messages}) >= len(d.lines), 30,
              "every stdout result on the broker")
        rc, elapsed = d.terminate()
    finally:
        d.kill()
        sub.close()
        broker.stop()
    assert rc == 0 and elapsed < 2.0, (rc, elapsed)
    s = d.summary()
    assert s["unaccounted"] == 0 and s["accepted"] == s["answered"] == rep["matched"]
    assert s["sinks"]["fleet"]["dropped"] == 0 and s["sinks"]["serial0"]["delivered"] == \
        s["answered"]
    stdout = _by_stream(d.results())
    assert sorted(stdout) == [0, 1, 2] and sum(map(len, stdout.values())) == s["answered"]
    got = defaultdict(list)
    for topic, payload in sub.messages:
        r = json.loads(payload)
        assert topic == f"edgernn/pump-7/{r['stream']}"
        got[r["stream"]].append(r)
    for sid, rows in stdout.items():
        assert [r["n"] for r in rows] == list(range(1, len(rows) + 1))  # every step answered
        first = {}
        for r in got[sid]:  # QoS 1 is at-least-once: a resent message may repeat
            assert first.setdefault(r["n"], r) == r
        order = list(dict.fromkeys(r["n"] for r in got[sid]))
        assert order == [r["n"] for r in rows], f"stream {sid}: lost or reordered on MQTT"
        assert [first[r["n"]]["y"] for r in rows] == [r["y"] for r in rows]
    assert sub.connects >= 2  # the subscriber really went through the restart too
    log = d.stderr()
    assert "sink fleet: broker connection lost" in log and "sink fleet: reconnected" in log


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("broker")).start()
    yield b
    b.stop()


def test_serve_metrics_parse_and_sigterm_answers_or_counts_every_frame(tmp_path, broker):
    model_path = tmp_path / "m.ernn"
    make_model().save(model_path)
    sim, dev, report = _sim(tmp_path, model_path, "--rate", 0, "--streams", 4, "--duration", 30,
                            "--corrupt", 0.02, "--reset-on-gap", "--window", 256)
    port = free_port()
    cfg = _config(tmp_path, dev, f"""
[[sink]]
type = "mqtt"
url = "mqtt://127.0.0.1:{broker.port}"
qos = 1
""", port)
    d = Daemon(cfg)
    try:
        d.wait_ready()
        wait_until(lambda: len(d.lines) > 3000, 60, "results under full load")
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status == 200
        hz = json.loads(health.read())
        rc, elapsed = d.terminate()  # while the device streams as fast as it can
    finally:
        d.kill()
        sim.kill()
        sim.wait()
    assert rc == 0 and elapsed < 2.0, (rc, elapsed, d.stderr()[-2000:])
    s = d.summary()
    assert s["accepted"] > 3000 and s["in_queue"] == 0 and s["unaccounted"] == 0
    assert s["accepted"] == s["answered"] + sum(s["dropped"].values())
    assert len(d.lines) == s["sinks"]["stdout"]["delivered"] == s["answered"]
    assert s["sinks"]["serial0"]["delivered"] == s["answered"]  # sent before the port closed
    assert s["sinks"]["mqtt2"]["delivered"] + s["sinks"]["mqtt2"]["dropped"] == s["answered"]

    fams = {f.name: f for f in text_string_to_metric_families(text.decode())}
    assert all(name.startswith("edgernn_") for name in fams)
    for name in ("steps", "deadline_misses", "bad_frames", "reconnects", "queue_drops",
                 "nonfinite_resets", "frames_accepted", "frames_answered"):
        assert fams[f"edgernn_{name}"].type == "counter", name
    value = {(sm.name, tuple(sorted(sm.labels.items()))): sm.value
             for f in fams.values() for sm in f.samples}
    assert value["edgernn_steps_total", ()] > 1000
    assert value["edgernn_bad_frames_total", (("reason", "crc"),)] > 0  # the injected corruption
    assert ("edgernn_reconnects_total", (("component", "sink:mqtt2"),)) in value
    assert ("edgernn_queue_drops_total", (("queue", "input"),)) in value
    lat = fams["edgernn_step_latency_seconds"]
    assert lat.type == "histogram"
    buckets = {sm.labels["le"]: sm.value for sm in lat.samples if sm.name.endswith("_bucket")}
    assert float(min(buckets, key=float)) < 1e-4  # sub-millisecond resolution
    assert buckets["+Inf"] == value["edgernn_batches_total", ()]
    sha = hashlib.sha256(model_path.read_bytes()).hexdigest()
    info = fams["edgernn_model_info"].samples[0]
    assert info.name == "edgernn_model_info" and info.labels["sha256"] == sha
    assert info.labels["id"] == "m" and hz["status"] == "ok" and hz["model"]["sha256"] == sha
