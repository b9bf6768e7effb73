"""Hostile configs at start and at reload, and a stop with the broker away (issue #21):
one line and exit 2 at start, the old config serving after a failed reload, never a
traceback."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from edgernn_serve.config import load_config
from edgernn_serve.daemon import Daemon
from tests.serve_helpers import ROOT, free_port, make_model, wait_until, warm_engine
from tests.serve_helpers import Daemon as DaemonProcess

BENCH = ROOT / "bench"
if str(BENCH) not in sys.path:  # appended: bench/serial.py must not shadow pyserial
    sys.path.append(str(BENCH))
from serve_faults import check_config, fuzz_base, mutate  # noqa: E402

BASE = ('device = "d"\n[model]\npath = "m.ernn"\n[source]\nkind = "stdin"\n'
        '[[sink]]\ntype = "stdout"\n[metrics]\nlisten = ""\n')
MQTT = '[[sink]]\ntype = "mqtt"\nurl = "mqtt://127.0.0.1:{port}"\n'


def _serve(cfg):
    return subprocess.run([sys.executable, "-m", "edgernn", "serve", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          stdin=subprocess.DEVNULL)


def _one_line(out, *words):
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr[-3000:]
    assert lines[0].startswith("edgernn: error: ") and "Traceback" not in out.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert len(lines[0]) < 400, lines[0]


def _busy_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        s.listen()
    return s


HOSTILE = {  # name: (config text from BASE and a dead broker's port, words of the error)
    "non-utf8": (lambda b, p: b.replace('"d"', '"d\xff"'), ["not valid TOML", "0xff", "line 1"]),
    "toml-syntax": (lambda b, p: b + "[streams\n", ["not valid TOML"]),
    "deep-nesting": (lambda b, p: "x = " + "[" * 5000 + "]" * 5000 + "\n" + b,
                     ["nested deeper than 16"]),
    "model-dev-zero": (lambda b, p: b.replace('"m.ernn"', '"/dev/zero"'),
                       ["/dev/zero", "not a regular file"]),
    "huge-device": (lambda b, p: b.replace('"d"', '"' + "d" * 70000 + '"'),
                    ["device", "at most 4096", "70002 characters"]),
    "wildcard-device": (lambda b, p: b.replace('"d"', '"d#1"'), ["device", "got '#' in 'd#1'"]),
    "long-device": (lambda b, p: b.replace('"d"', '"' + "d" * 200 + '"'),
                    ["device", "at most 128 characters, got 200"]),
    "nul-sink-name": (lambda b, p: b + '[[sink]]\ntype = "file"\npath = "o"\nname = "a\\u0000"\n',
                      ["sink[1].name", "control characters"]),
    "missing-dir-after-mqtt": (lambda b, p: b + MQTT.format(port=p)
                               + '[[sink]]\ntype = "file"\npath = "no/such/dir/out.jsonl"\n',
                               ["sink file2", "cannot open", "No such file"]),
    "unresolvable-udp-target": (lambda b, p: b + '[[sink]]\ntype = "udp"\n'
                                'target = "nonexistent.invalid:9"\n', ["cannot resolve"]),
    "unresolvable-metrics": (lambda b, p: b.replace(
        'listen = ""', 'listen = "nonexistent.invalid:9108"') + MQTT.format(port=p),
        ["metrics.listen", "nonexistent.invalid"]),
    "huge-topic": (lambda b, p: b + MQTT.format(port=p) + 'topic = "' + "t" * 70000 + '"\n',
                   ["sink[1].topic", "at most 4096"]),
    "config-is-a-directory": (None, ["not a regular file"]),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_config_at_start_gives_one_line_and_exit_2(tmp_path, name):
    make_model().save(tmp_path / "m.ernn")
    make, words = HOSTILE[name]
    cfg = tmp_path / "edgernn.toml"
    if make is None:
        cfg.mkdir()
    else:
        cfg.write_bytes(make(BASE, free_port()).encode().replace("\xff".encode(), b"\xff"))
    _one_line(_serve(cfg), *words)


@pytest.mark.parametrize("what", ["metrics", "udp-source"])
def test_port_in_use_after_an_mqtt_sink_names_the_port_not_a_thread_error(tmp_path, what):
    make_model().save(tmp_path / "m.ernn")
    kind = socket.SOCK_STREAM if what == "metrics" else socket.SOCK_DGRAM
    with _busy_port(kind) as s:
        port = s.getsockname()[1]
        text = BASE + MQTT.format(port=free_port())
        if what == "metrics":
            text = text.replace('listen = ""', f'listen = "127.0.0.1:{port}"')
            words = ["metrics.listen: cannot listen", str(port)]
        else:
            text = text.replace('kind = "stdin"', f'kind = "udp"\nlisten = "127.0.0.1:{port}"')
            words = ["source: cannot open the udp source", "in use"]
        (tmp_path / "edgernn.toml").write_text(text)
        out = _serve(tmp_path / "edgernn.toml")
    _one_line(out, *words)
    assert "cannot join thread" not in out.stderr


def _send(d, xs):
    for x in xs:
        d.proc.stdin.write(json.dumps({"x": x.tolist()}).encode() + b"\n")
    d.proc.stdin.flush()


def test_failed_reloads_keep_the_old_config_serving(tmp_path):
    """The two SIGHUP crashes of the issue (a non-UTF-8 byte; a file sink in a missing
    directory after an MQTT sink), and a model of another input size."""
    warm_engine()
    make_model().save(tmp_path / "m.ernn")
    cfg = tmp_path / "edgernn.toml"
    good = BASE + MQTT.format(port=free_port())
    cfg.write_text(good)
    xs = np.random.default_rng(3).standard_normal((40, 16)).astype(np.float32)
    d = DaemonProcess(cfg, stdin=subprocess.PIPE)
    try:
        d.wait_ready()
        reloads = [
            lambda: cfg.write_bytes(good.replace('"d"', '"d\xff"').encode("latin-1")),
            lambda: cfg.write_text(good + '[[sink]]\ntype = "file"\npath = "no/dir/o.jsonl"\n'),
            lambda: (cfg.write_text(good.replace("m.ernn", "m8.ernn")),
                     make_model(n_in=8).save(tmp_path / "m8.ernn")),
            lambda: cfg.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n" + good),
            lambda: cfg.write_text(good.replace("m.ernn", "/dev/zero")),
        ]
        for i, change in enumerate(reloads):
            change()
            d.proc.send_signal(signal.SIGHUP)
            wait_until(lambda i=i: d.stderr().count("reload failed") == i + 1, 30,
                       f"failed reload {i}")
            _send(d, xs[8 * i:8 * (i + 1)])
            wait_until(lambda i=i: len(d.lines) == 8 * (i + 1), 30, f"answers after {i}")
        rc, _ = d.terminate()
    finally:
        d.kill()
    assert rc == 0, d.stderr()
    log = d.stderr()
    assert "Traceback" not in log and "cannot join thread" not in log
    assert "input_size 8 differs from the running model's 16" in log
    assert "nested deeper than 16" in log and "not a regular file" in log
    s = make_model().stream()
    for r, x in zip(d.results(), xs, strict=True):
        np.testing.assert_allclose(r["y"], s.step(x), rtol=1e-5, atol=1e-6)


def test_stop_with_the_broker_unreachable_takes_under_2_s(tmp_path):
    warm_engine()
    make_model().save(tmp_path / "m.ernn")
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text(BASE + MQTT.format(port=free_port()) + "reconnect_max = 10.0\n")
    d = DaemonProcess(cfg, stdin=subprocess.PIPE)
    try:
        d.wait_ready()
        _send(d, np.zeros((50, 16), np.float32))
        wait_until(lambda: len(d.lines) == 50, 30, "the stdout answers")
        time.sleep(1.5)  # paho is in its reconnect wait
        rc, elapsed = d.terminate()
    finally:
        d.kill()
    assert rc == 0 and elapsed < 2.0, (rc, elapsed, d.stderr()[-2000:])
    assert d.summary()["sinks"]["mqtt1"]["dropped"] == 50


def test_100_mutated_configs_at_start_and_reload_give_only_one_line_errors(tmp_path):
    """bench/serve_faults.py runs 500 (docs/serve.md); the same mutations and checks."""
    make_model().save(tmp_path / "m.ernn")
    base = fuzz_base(tmp_path / "m.ernn", free_port())
    (tmp_path / "edgernn.toml").write_text(base)
    with open(os.devnull, "rb") as stdin:
        live = Daemon(load_config(tmp_path / "edgernn.toml"), stdin=stdin)
        live.start()
        rng, outcomes = random.Random(21), {"ok": 0, "refused": 0}
        try:
            for i in range(101):
                text = mutate(base, rng) if i else base
                outcome, msg = check_config(tmp_path / "m.toml", text)
                assert outcome != "TRACEBACK", (text, msg)
                outcomes[outcome] += 1
                outcome, msg = check_config(tmp_path / "edgernn.toml", text, running=live)
                assert outcome != "TRACEBACK", (text, msg)
                assert live.scheduler.alive and live.health()[0]
        finally:
            live.stop()
    assert outcomes["refused"] > 50 and outcomes["ok"] >= 1, outcomes


@pytest.mark.parametrize("started", [False, True])
def test_every_sink_closes_safely_never_started_started_and_twice(tmp_path, started):
    import tty

    from edgernn_serve.audio import AudioFormat
    from edgernn_serve.sinks import SinkContext, build_sink

    master, slave = os.openpty()
    tty.setraw(slave)
    make_model().save(tmp_path / "m.ernn")
    (tmp_path / "e.toml").write_text(
        '[model]\npath = "m.ernn"\n[source]\nkind = "wav"\npath = "in.wav"\ndenoise = true\n'
        '[[sink]]\ntype = "stdout"\n[[sink]]\ntype = "file"\npath = "o.jsonl"\n'
        '[[sink]]\ntype = "udp"\ntarget = "127.0.0.1:9"\n[[sink]]\ntype = "unix"\n'
        f'path = "u.sock"\n[[sink]]\ntype = "mqtt"\nurl = "mqtt://127.0.0.1:{free_port()}"\n'
        '[[sink]]\ntype = "wav"\npath = "o.wav"\n[metrics]\nlisten = ""\n')
    conf = load_config(tmp_path / "e.toml")
    ctx = SinkContext("d", open(os.devnull, "wb"), AudioFormat(16000, 1, 16000, 160))  # noqa: SIM115
    sinks = [build_sink(s, ctx) for s in conf.sinks]
    from edgernn_serve.sinks.serial import SerialSink

    sinks.append(SerialSink("serial", "d", os.ttyname(slave)))
    try:
        t0 = time.monotonic()
        for s in sinks:
            if started:
                s.start()
            s.close()
            s.close()
        assert time.monotonic() - t0 < 2.0
    finally:
        os.close(master)
        os.close(slave)
        ctx.stdout.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tmp") == []
