"""Tests of firmware_bridge.bridge: frames in, RESULTs equal to stepping the model."""

from __future__ import annotations

import struct
import threading

import numpy as np
import pytest

import edgernn
from edgernn.errors import StreamError
from firmware_bridge import protocol as p
from firmware_bridge.bridge import Bridge
from firmware_bridge.link import Link
from firmware_bridge.sim import Device, PtyTransport, TcpTransport
from tests.helpers import wait_until


def make_model(seed=0, n_in=16, hidden=32, n_out=4):
    """LSTM(n_in, hidden) -> Dense(hidden, n_out) with random numpy weights."""
    r = np.random.default_rng(seed)

    def w(*shape):
        return (r.standard_normal(shape) * 0.3).astype(np.float32)

    return edgernn.Model([edgernn.LSTM(w(4 * hidden, n_in), w(4 * hidden, hidden),
                                       w(4 * hidden), w(4 * hidden)),
                          edgernn.Dense(w(n_out, hidden), w(n_out))])


def replies(bridge, wires):
    """Decode what the bridge answers to the frames in ``wires``."""
    frames = p.Decoder().feed(b"".join(wires))
    return p.Decoder().feed(bridge.process(frames))


@pytest.fixture
def model():
    return make_model()


def test_bridge_results_equal_direct_steps_per_stream(model):
    b = Bridge(Link("loop://"), model)
    xs = np.random.default_rng(1).standard_normal((40, 16)).astype(np.float32)
    oracle = {0: model.stream(), 5: model.stream()}
    wires, want = [], []
    for i, x in enumerate(xs):  # two interleaved streams with their own state
        sid, seq = (0, 5)[i % 2], i // 2
        wires.append(p.encode_sample(sid, seq, x, timestamp=1000 + i))
        want.append((sid, seq, 1000 + i, oracle[sid].step(x).tobytes()))
    got = replies(b, wires)
    assert [(f.kind, f.stream_id, f.seq, f.timestamp, f.payload) for f in got] == \
        [(p.Kind.RESULT, *w) for w in want]
    s = b.stats()
    assert s["results"] == 40 and s["gaps"] == 0 and s["streams"] == 2
    assert s["step_us"]["n"] == 40 and s["step_us"]["p50"] > 0


@pytest.mark.parametrize("reset_on_gap", [False, True])
def test_bridge_counts_gaps_and_optionally_resets(model, reset_on_gap):
    b = Bridge(Link("loop://"), model, reset_on_gap=reset_on_gap)
    xs = np.random.default_rng(2).standard_normal((6, 16)).astype(np.float32)
    seqs = [65534, 65535, 0, 3, 4, 9]  # wraps without a gap, then two gaps
    got = replies(b, [p.encode_sample(1, q, x) for q, x in zip(seqs, xs, strict=True)])
    s = model.stream()
    want = []
    for i, x in enumerate(xs):
        if reset_on_gap and i in (3, 5):
            s.reset()
        want.append(s.step(x).tobytes())
    assert [f.payload for f in got] == want
    assert b.stats()["gaps"] == 2 and b.stats()["gap_resets"] == (2 if reset_on_gap else 0)


def test_bridge_rejects_wrong_sample_size_with_clear_error(model):
    b = Bridge(Link("loop://"), model)
    got = replies(b, [p.encode_sample(3, 1, [1.0, 2.0, 3.0]),
                      p.encode_frame(p.Frame(p.Kind.SAMPLE, 3, 2, 0, p.Encoding.RAW, b"ab"))])
    assert [f.kind for f in got] == [p.Kind.ERROR, p.Kind.ERROR]
    assert got[0].payload[0] == p.ErrorCode.BAD_SIZE and got[0].seq == 1
    assert got[0].payload[1:].decode() == "stream 3: expected 16 values, got 3 values"
    assert b"got a RAW payload" in got[1].payload
    assert b.stats()["bad_samples"] == 2 and b.stats()["results"] == 0


def test_bridge_answers_a_failing_step_with_an_error_frame():
    class Refusing:  # a model whose stream refuses every step, as a broken runtime would
        input_size, output_size = 2, 1

        def stream(self):
            return self

        def step(self, x, out=None):
            raise StreamError(f"step: refused {x.tolist()!r}")

    b = Bridge(Link("loop://"), Refusing())
    (got,) = replies(b, [p.encode_sample(1, 4, [1.0, 2.0])])
    assert got.kind == p.Kind.ERROR and got.payload[0] == p.ErrorCode.STEP_FAILED
    assert got.payload[1:] == b"stream 1: step failed: step: refused [1.0, 2.0]"
    assert b.stats()["step_errors"] == 1 and b.stats()["results"] == 0


def test_bridge_accepts_i16_samples(model):
    b = Bridge(Link("loop://"), model)
    x = np.linspace(-2, 2, 16, dtype=np.float32)
    wire = p.encode_sample(0, 0, x, encoding=p.Encoding.I16)
    (got,) = replies(b, [wire])
    assert got.payload == model.stream().step(p.decode_frame(wire).values).tobytes()


def test_bridge_control_frames(model):
    b = Bridge(Link("loop://"), model)
    x = np.ones(16, np.float32)
    got = replies(b, [
        p.encode_sample(2, 0, x),
        p.encode_sample(2, 1, x),
        p.encode_control(2, 50, p.Control.RESET_STREAM),
        p.encode_sample(2, 7, x),  # after a reset: fresh state and no gap
        p.encode_control(0, 51, p.Control.PING, b"hello"),
        p.encode_control(0, 52, p.Control.INFO),
        p.encode_control(2, 53, p.Control.SET_RATE, struct.pack("<I", 500)),
        p.encode_control(0, 54, 9),
        p.encode_frame(p.Frame(p.Kind.HEARTBEAT, 0, 55, 77, p.Encoding.RAW, b"")),
    ])
    fresh = model.stream().step(x).tobytes()
    assert got[0].payload == fresh and got[1].payload != fresh
    assert (got[2].kind, got[2].seq, got[2].payload) == (p.Kind.ACK, 50, b"\x01")
    assert got[3].payload == fresh and b.stats()["gaps"] == 0
    assert (got[4].kind, got[4].payload) == (p.Kind.ACK, b"\x02hello")
    assert got[5].payload == b"\x03" + struct.pack("<BHHH", 1, 16, 4, p.MAX_PAYLOAD)
    assert got[6].kind == p.Kind.ACK and b.slots[2].rate_hz == 500
    assert got[7].kind == p.Kind.ERROR and got[7].payload[0] == p.ErrorCode.BAD_CONTROL
    assert b"unknown CONTROL op 9" in got[7].payload
    assert (got[8].kind, got[8].seq, got[8].timestamp) == (p.Kind.HEARTBEAT, 55, 77)


def _run_pair(transport, model, bridge_model=None, inline=True, during=None, **device_kw):
    """Device (oracle ``model``) and Bridge (``bridge_model``) on ``transport``."""
    dev = Device(transport, channels=model.input_size, model=model, **device_kw)
    report = {}
    t = threading.Thread(target=lambda: report.update(dev.run(connect_timeout=10)),
                         daemon=True)
    urls = []
    dev.on_listen = urls.append
    t.start()
    while not urls and t.is_alive():
        t.join(0.01)
    link = Link(urls[0], backoff_initial=0.02, backoff_max=0.2)
    bridge = Bridge(link, bridge_model or model, inline=inline,
                    reset_on_gap=device_kw.get("reset_on_gap", False))
    link.open()
    stop = threading.Event()
    bt = threading.Thread(target=bridge.serve, kwargs={"stop": stop}, daemon=True)
    bt.start()
    if during is not None:
        during(bridge, dev)
    t.join(60)
    stop.set()
    bt.join(5)
    link.close()
    assert not t.is_alive() and not bt.is_alive()
    return report, bridge.stats(), dev


def test_bridge_over_pty_2khz_10s_with_corruption_and_garbage(tmp_path, model):
    report, stats, _ = _run_pair(PtyTransport(str(tmp_path / "tty")), model, rate=2000,
                                 duration=10.0, corrupt=0.01, garbage=0.01, seed=3)
    assert report["sent"] >= 19_000, report  # the rate was held
    assert report["corrupted"] > 100 and report["garbage_bursts"] > 100
    # every intact frame: exactly one RESULT, equal to stepping the model directly
    assert report["matched"] == report["intact"], report
    assert report["mismatched"] == report["missing"] == report["duplicates"] == 0
    assert report["unexpected"] == 0
    # every corrupted frame: counted, answered by none
    assert report["answered_corrupted"] == 0
    assert stats["bad_crc"] + stats["bad_framing"] == report["expected_rejects"], stats
    assert stats["gaps"] == report["expected_gaps"]
    assert stats["results"] == report["intact"] and stats["overflows"] == 0
    assert report["ok"]


@pytest.mark.parametrize("kind, inline", [("pty", True), ("socket", False)])
def test_bridge_recovers_after_unplug_and_replug(tmp_path, model, kind, inline):
    transport = PtyTransport(str(tmp_path / "tty")) if kind == "pty" else TcpTransport(0)
    report, stats, dev = _run_pair(transport, model, inline=inline, rate=1000, duration=2.5,
                                   unplug_at=[0.8], unplug_for=0.3, reset_on_gap=True)
    assert report["unplugs"] == 1 and report["handshakes"] == 2, report
    assert stats["reconnects"] >= 1 and stats["disconnects"] >= 1
    assert report["matched_after_last_handshake"] > 500, report
    assert report["mismatched"] == report["missing"] == report["unexpected"] == 0
    assert report["ok"]


def test_device_oracle_catches_a_wrong_model(tmp_path, model):
    report, _, _ = _run_pair(PtyTransport(str(tmp_path / "tty")), model,
                             bridge_model=make_model(seed=9), rate=1000, duration=0.5)
    assert report["mismatched"] == report["intact"] > 0 and not report["ok"]


def test_bridge_queue_mode_over_loop_counts_overflow_as_gaps(model):
    # loop:// echoes the RESULTs back: the bridge counts them as unexpected, answers none
    link = Link("loop://", rx_capacity=8)
    bridge = Bridge(link, model, inline=False)
    link.open()
    try:
        x = np.zeros(16, np.float32)
        link.send(b"".join(p.encode_sample(0, i, x) for i in range(20)))
        wait_until(lambda: link.stats.frames_in == 20, 5.0)
        assert bridge.poll(1.0) == 8  # the 12 oldest were dropped (drop-oldest)
        s = bridge.stats()
        assert s["overflows"] == 12 and s["results"] == 8 and s["gaps"] == 0
        wait_until(lambda: bridge.poll(0.05) == 0 and bridge.stats()["unexpected"] == 8, 5.0)
    finally:
        link.close()


def test_link_callback_errors_are_counted_not_fatal():
    calls = []

    def broken(frames):
        calls.append(len(frames))
        raise RuntimeError("boom")

    with Link("loop://", on_frames=broken) as link:
        link.send(p.encode_sample(0, 0, [1.0]))
        wait_until(lambda: link.stats.callback_errors == 1, 5.0)
        link.send(p.encode_sample(0, 1, [1.0]))
        wait_until(lambda: link.stats.callback_errors == 2, 5.0)
        assert "on_frames raised RuntimeError: boom" in link.last_error and calls == [1, 1]



def test_bridge_sets_the_device_rate_and_echoes_heartbeats(tmp_path, model):
    def set_rate(bridge, dev):
        wait_until(lambda: dev.c["matched"] > 100, 5.0)
        assert bridge.send_control(0, p.Control.SET_RATE, struct.pack("<I", 250))

    report, stats, dev = _run_pair(PtyTransport(str(tmp_path / "tty")), model, rate=1000,
                                   duration=2.0, heartbeat_s=0.5, during=set_rate)
    assert dev.rate == 250 and report["set_rate"] == 1 and stats["acks_in"] == 1
    assert 480 < report["samples"] < 1200, report  # 2000 at 1000/s; 500 at 250/s
    assert report["heartbeats"] >= 3 and stats["heartbeats"] == report["heartbeats"]
    assert report["ok"]
