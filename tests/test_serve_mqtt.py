"""The MQTT sink against a real mosquitto: topics, QoS, and the bounded offline buffer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgernn_serve.config import load_config
from edgernn_serve.items import Result
from edgernn_serve.sinks.mqtt import MqttSink
from tests.serve_helpers import Broker, Subscriber, wait_until


def _sink(tmp_path, port, **opts) -> MqttSink:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in opts.items())
    cfg = tmp_path / "e.toml"
    cfg.write_text(f'[model]\npath = "m.ernn"\n[source]\nkind = "stdin"\n[[sink]]\n'
                   f'type = "mqtt"\nurl = "mqtt://127.0.0.1:{port}"\nreconnect_min = 0.05\n'
                   f'reconnect_max = 0.2\n{extra}')
    conf = load_config(cfg).sinks[0]
    s = MqttSink(conf.name, "dev", conf.options)
    s.start()
    wait_until(lambda: s.connected, what="the broker connection")
    return s


def _results(stream, ns):
    return [Result(stream, n, 0, n, np.array([n, -n], np.float32), "m", None, 0, 1000)
            for n in ns]


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mqtt_sink_publishes_each_result_on_its_device_stream_topic(tmp_path, broker, qos):
    sub = Subscriber(broker.port, "plant/#", client_id=f"sub-qos{qos}")
    s = _sink(tmp_path, broker.port, topic="plant/{device}/rnn/{stream}", qos=qos)
    try:
        s.emit(_results("a", range(1, 4)) + _results(7, range(1, 3)))
        wait_until(lambda: len(sub.messages) == 5, what="5 messages")
        assert s.flush(5.0) == 0 and s.delivered == 5 and s.dropped == 0
    finally:
        s.close()
        sub.close()
    got = [(t, json.loads(m)) for t, m in sub.messages]
    assert [t for t, _ in got if t.endswith("/a")] == ["plant/dev/rnn/a"] * 3
    assert [m["n"] for t, m in got if t == "plant/dev/rnn/a"] == [1, 2, 3]
    assert [m["y"] for t, m in got if t == "plant/dev/rnn/7"] == [[1.0, -1.0], [2.0, -2.0]]
    assert got[0][1]["device"] == "dev" and got[0][1]["model"] == "m"


def test_mqtt_sink_buffers_while_the_broker_is_down_and_drops_the_oldest_beyond_the_bound(
        tmp_path, broker):
    sub = Subscriber(broker.port, "edgernn/#")
    s = _sink(tmp_path, broker.port, qos=1, buffer=20)
    try:
        s.emit(_results(0, range(1, 6)))
        wait_until(lambda: len(sub.messages) == 5, what="the first 5")
        broker.stop()
        wait_until(lambda: not s.connected, what="the disconnect")
        s.emit(_results(0, range(6, 56)))  # 50 results while down: the oldest 30 go
        assert s.dropped == 30 and s.pending == 20
        broker.start()
        wait_until(lambda: len({m for _, m in sub.messages}) == 25, what="the buffered 20")
        assert s.flush(5.0) == 0 and s.reconnects == 1
    finally:
        s.close()
        sub.close()
    ns = list(dict.fromkeys(json.loads(m)["n"] for _, m in sub.messages))
    assert ns == [1, 2, 3, 4, 5] + list(range(36, 56))  # in order; exactly the newest 20 kept
    assert s.delivered == 25 and s.dropped == 30


def test_mqtt_sink_close_counts_what_never_reached_the_broker(tmp_path, broker):
    s = _sink(tmp_path, broker.port, qos=1, buffer=100)
    broker.stop()
    wait_until(lambda: not s.connected, what="the disconnect")
    s.emit(_results(3, range(1, 8)))
    assert s.flush(0.2) == 7
    s.close()
    assert s.dropped == 7 and s.delivered == 0
