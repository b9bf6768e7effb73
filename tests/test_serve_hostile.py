"""Hostile and unlucky input to the daemon's sources and sinks (issue #21): every bad
frame is counted, never a dead thread; a reader that dies anyway turns health red."""

from __future__ import annotations

import json
import os
import socket
import time

import numpy as np
import pytest

from edgernn_serve.config import load_config
from edgernn_serve.daemon import Daemon
from edgernn_serve.items import Result
from edgernn_serve.sinks.mqtt import MqttSink
from edgernn_serve.sources.base import Source
from edgernn_serve.sources.lines import UdpSource
from tests.serve_helpers import Broker, Subscriber, free_port, make_model, wait_until
from tests.serve_helpers import Daemon as DaemonProcess

#: (datagram, reason it is counted under); each once killed the reader or the MQTT thread
HOSTILE = [
    (b'{"x": [1' + b"0" * 400 + b", 0" * 15 + b"]}", None),  # OverflowError; inf: refused
    (b"[" * 30000, "json_depth"),  # RecursionError
    (b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "json_depth"),
    (b'{"x": [1], "seq": 1' + b"0" * 400 + b"}", "field"),
    (b'{"x": [1], "t": -1' + b"0" * 30 + b"}", "field"),
    (b'{"x": [1], "stream": 1' + b"0" * 5000 + b"}", "json"),  # beyond int max_str_digits
    (b'{"x": [true, null]}', "field"),
    (b'{"x": [[1, 2], [3]]}', "field"),
    (b'{"stream": "a#", "x": [1]}', "stream_name"),
    (b'{"stream": "a+b", "x": [1]}', "stream_name"),
    (b'{"stream": "\\ud800", "x": [1]}', "stream_name"),
    (b'{"stream": "a\\u0000b", "x": [1]}', "stream_name"),
    (b'{"stream": "' + b"s" * 60000 + b'", "x": [1]}', "stream_name"),
    (b"\xff\xfe{", "json"),
]


def _daemon(tmp_path, source: str, sinks: str, stdout=None) -> Daemon:
    make_model().save(tmp_path / "m.ernn")
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text(f'device = "t"\nlog_level = "error"\n[model]\npath = "m.ernn"\n'
                   f'[source]\n{source}\n{sinks}\n[metrics]\nlisten = ""\n')
    d = Daemon(load_config(cfg), stdout=stdout)
    d.start()
    return d


def test_udp_source_counts_hostile_datagrams_and_answers_every_good_one(tmp_path):
    port = free_port()
    d = _daemon(tmp_path, f'kind = "udp"\nlisten = "127.0.0.1:{port}"',
                '[[sink]]\ntype = "file"\npath = "out.jsonl"')
    xs = np.random.default_rng(1).standard_normal((len(HOSTILE) + 1, 16)).astype(np.float32)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i, (bad, _) in enumerate(HOSTILE):
            tx.sendto(json.dumps({"x": xs[i].tolist(), "stream": "s"}).encode(),
                      ("127.0.0.1", port))
            tx.sendto(bad, ("127.0.0.1", port))
            time.sleep(0.002)
        tx.sendto(json.dumps({"x": xs[-1].tolist(), "stream": "s"}).encode(),
                  ("127.0.0.1", port))
        wait_until(lambda: d.scheduler.c["results_ok"] == len(xs), what="every good frame")
        assert d.health()[0] and d.source.healthy and d.source.restarts == 0
        bad = d.source.bad_frames()
        want: dict = {}
        for _, reason in HOSTILE:
            if reason:
                want[reason] = want.get(reason, 0) + 1
        assert bad == want
        wait_until(lambda: d.scheduler.bad["nonfinite_input"] == 1, what="the 400 digits")
    finally:
        d.stop()
        tx.close()
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    s = make_model().stream()
    ok = [json.loads(ln) for ln in lines if "y" in json.loads(ln)]
    assert len(ok) == len(xs)
    for r, x in zip(ok, xs, strict=True):
        np.testing.assert_allclose(r["y"], s.step(x), rtol=1e-5, atol=1e-6)


def test_stdin_valid_line_then_hostile_line_is_answered_and_the_daemon_exits(tmp_path):
    make_model().save(tmp_path / "m.ernn")
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text('[model]\npath = "m.ernn"\n[source]\nkind = "stdin"\n'
                   '[[sink]]\ntype = "stdout"\n[metrics]\nlisten = ""\n')
    x = np.linspace(-1, 1, 16, dtype=np.float32)
    r, w = os.pipe()
    d = DaemonProcess(cfg, stdin=r)
    os.close(r)
    try:
        os.write(w, json.dumps({"x": x.tolist()}).encode() + b"\n"
                            + b'{"x": [1' + b"0" * 400 + b"]}\n" + b"[" * 30000 + b"\n")
        os.close(w)
        assert d.proc.wait(120) == 0, d.stderr()
    finally:
        d.kill()
    d._reader.join(5)
    out = d.results()
    assert len(out) == 2 and "error" in out[1], out
    np.testing.assert_allclose(out[0]["y"], make_model().stream().step(x), rtol=1e-5,
                               atol=1e-6)
    s = d.summary()
    assert s["answered_ok"] == 1 and s["answered_error"] == 1 and s["unaccounted"] == 0


class _Flaky(Source):
    kind = "flaky"

    def __init__(self, fails: int) -> None:
        super().__init__(lambda items: None)
        self.fails, self.runs = fails, 0

    def _loop(self) -> None:
        self.runs += 1
        if self.runs <= self.fails:
            raise OSError(f"failure {self.runs}")
        self._stop.wait()


def test_a_reader_that_fails_is_unhealthy_then_restarted_with_backoff():
    s = _Flaky(fails=3)
    t0 = time.monotonic()
    s.start()
    wait_until(lambda: not s.healthy, 5, "the failure to show")
    assert s.last_error == "OSError: failure 1"
    wait_until(lambda: s.runs == 4 and s.healthy, 10, "the restarts")
    took = time.monotonic() - t0
    assert s.restarts == 3 and took >= 0.1 + 0.2 + 0.4  # the backoff doubles
    s.close()
    assert not s._thread.is_alive()


def test_a_dead_udp_reader_turns_health_red_and_counts_restarts(tmp_path):
    port = free_port()
    d = _daemon(tmp_path, f'kind = "udp"\nlisten = "127.0.0.1:{port}"',
                '[[sink]]\ntype = "file"\npath = "out.jsonl"')
    try:
        assert d.health()[0]
        d.source.sock.close()  # every read now fails (EBADF): the reader cannot go on
        wait_until(lambda: not d.health()[0], 5, "health to turn red")
        wait_until(lambda: d.source.restarts >= 2, 10, "restarts")
        ok, body = d.health()
        assert body["source"]["reader_ok"] is False and "OSError" in body["source"]["last_error"]
        samples = {name: v for name, _, _, _, v in d._samples() if name == "source_restarts"}
        assert samples["source_restarts"] >= 2
        assert not d.source.connected
    finally:
        d.source._stop.set()
        d.stop()


def test_udp_datagrams_the_kernel_dropped_are_counted():
    got = []
    src = UdpSource(lambda items: got.extend(items), ("127.0.0.1", 0), "f32")
    if not src.kernel_counts:
        pytest.skip("this kernel has no SO_RXQ_OVFL (counted as 0; docs/serve.md)")
    src.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 2000
    for i in range(sent):  # nobody reads yet: the kernel drops what does not fit
        tx.sendto(np.float32([i]).tobytes(), src.address)
    src.start()
    try:
        wait_until(lambda: len(got) > 0, 5, "the reader")
        time.sleep(0.2)  # it has read what the buffer held
        tx.sendto(np.float32([-1]).tobytes(), src.address)  # its ancillary data: the count
        wait_until(lambda: got and got[-1].x[0] == -1, 5, "the last datagram")
        assert src.drops()["udp_kernel"] > 0
        assert len(got) - 1 + src.drops()["udp_kernel"] == sent  # every one accounted for
    finally:
        src.close()
        tx.close()


def _result(key, i=0):
    return Result(key, i, 0, i + 1, np.float32([i]), "m", None, 0, 1000)


def test_mqtt_sink_drops_bad_topics_counted_and_keeps_publishing(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgernn/#")
    conf = load_config(_mqtt_cfg(tmp_path, broker.port))
    s = MqttSink("m", "dev", conf.sinks[0].options)
    try:
        s.start()
        wait_until(lambda: s.connected, what="the broker connection")
        bad = ["a#", "a+b", "\ud800", "a\x00b", "x" * 70000]
        s.emit([_result(k) for k in bad] + [_result("ok", 1), _result(7, 2)])
        wait_until(lambda: len(sub.messages) == 2, what="the two good results")
        assert s._thread.is_alive() and s.connected
        assert s.dropped == len(bad) and s.bad_topics == len(bad)
        time.sleep(0.5)  # no disconnect, no endless resend of a refused message
        assert len(sub.messages) == 2 and s.reconnects == 0 and s.pending == 0
        assert sorted(t for t, _ in sub.messages) == ["edgernn/dev/7", "edgernn/dev/ok"]
    finally:
        s.close()
        sub.close()
        broker.stop()


def _mqtt_cfg(tmp_path, port: int):
    cfg = tmp_path / "edgernn.toml"
    make_model().save(tmp_path / "m.ernn")
    cfg.write_text(f'[model]\npath = "m.ernn"\n[source]\nkind = "stdin"\n[[sink]]\n'
                   f'type = "mqtt"\nurl = "mqtt://127.0.0.1:{port}"\nreconnect_max = 1.0\n')
    return cfg


def test_mqtt_sink_closes_safely_in_any_state(tmp_path):
    conf = load_config(_mqtt_cfg(tmp_path, free_port()))
    never = MqttSink("a", "dev", conf.sinks[0].options)
    never.close()  # never started: RuntimeError "cannot join thread" before
    never.close()
    started = MqttSink("b", "dev", conf.sinks[0].options)
    started.start()  # no broker there: it keeps trying
    started.emit([_result(1)])
    t0 = time.monotonic()
    started.close()
    started.close()
    assert time.monotonic() - t0 < 1.0 and started.dropped == 1
