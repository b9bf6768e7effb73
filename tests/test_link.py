"""Tests of firmware_bridge.link over real loop://, pty and socket:// ports."""

from __future__ import annotations

import os
import socket
import threading
import time
import tty

import pytest

from edgernn.errors import LinkError
from firmware_bridge import protocol as p
from firmware_bridge.link import FrameQueue, Link
from tests.helpers import wait_until


def _receive_n(link, n, timeout=5.0):
    got, end = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        got += link.receive(0.05)
    return got


def test_frame_queue_drops_oldest_and_counts():
    q = FrameQueue(3)
    q.put_many([1, 2])
    q.put_many([3, 4, 5])
    assert q.overflows == 2 and q.get_many(0) == [3, 4, 5]
    t0 = time.monotonic()
    assert q.get_many(0.05) == [] and time.monotonic() - t0 >= 0.04
    with pytest.raises(ValueError, match="capacity must be >= 1, got 0"):
        FrameQueue(0)


def test_link_loop_roundtrip_frames_in_order():
    with Link("loop://") as link:
        wires = [p.encode_sample(1, i, [float(i)] * 4) for i in range(50)]
        assert link.send(b"".join(wires[:25]) + b"junk\x00") and link.send(b"".join(wires[25:]))
        got = _receive_n(link, 50)
        assert [f.seq for f in got] == list(range(50))
        assert link.decoder.rejected["framing"] == 1
        assert link.stats.frames_in == 50 and link.stats.tx_bytes > 0


def test_link_loop_overflow_drops_oldest_frames():
    with Link("loop://", rx_capacity=4) as link:
        link.send(b"".join(p.encode_sample(0, i, [1.0]) for i in range(10)))
        wait_until(lambda: link.stats.frames_in == 10, 5.0)
        assert [f.seq for f in link.receive(0.1)] == [6, 7, 8, 9]
        assert link.stats.overflows == 6 and link.queue.overflows == 6


def test_link_pty_both_directions_with_garbage():
    master, slave = os.openpty()
    tty.setraw(slave)
    link = Link(os.ttyname(slave)).open()
    try:
        os.write(master, b"\x01\x02\x03" + p.encode_sample(2, 7, [0.5, 1.5]) + b"\xff" * 9
                 + p.encode_control(2, 8, p.Control.PING, b"x"))
        got = _receive_n(link, 2)
        assert [(f.kind, f.seq) for f in got] == [(p.Kind.SAMPLE, 7), (p.Kind.CONTROL, 8)]
        assert got[0].values.tolist() == [0.5, 1.5]
        assert link.send(p.encode_result(2, 7, [3.0]))
        buf, d = b"", p.Decoder()
        end = time.monotonic() + 5
        while not (frames := d.feed(buf)) and time.monotonic() < end:
            buf = os.read(master, 4096)
        assert [(f.kind, f.seq) for f in frames] == [(p.Kind.RESULT, 7)]
    finally:
        link.close()
        os.close(master)
        os.close(slave)
    assert not link._thread.is_alive()


def test_link_socket_reconnects_when_the_device_comes_back():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    port = server.getsockname()[1]
    accepted = []

    def device():
        for seq in (1, 2):  # two connections: one frame each, then hang up
            conn, _ = server.accept()
            accepted.append(seq)
            time.sleep(0.1)  # pyserial's open() discards what is already waiting
            conn.sendall(b"noise" + p.encode_sample(0, seq, [1.0]))
            time.sleep(0.2)
            conn.close()

    t = threading.Thread(target=device, daemon=True)
    t.start()
    with Link(f"socket://127.0.0.1:{port}", backoff_initial=0.02) as link:
        got = _receive_n(link, 2, timeout=10)
        assert [f.seq for f in got] == [1, 2]
        assert link.stats.reconnects >= 1 and link.stats.disconnects >= 1
        assert "socket disconnected" in (link.last_error or "")
    t.join(5)
    server.close()
    assert accepted == [1, 2]


def test_link_open_missing_port_names_it():
    with pytest.raises(LinkError, match=r"cannot open serial port '/dev/does-not-exist-fb'"):
        Link("/dev/does-not-exist-fb").open()
    with pytest.raises(OSError):  # LinkError is an OSError too
        Link("nonsense://x").open()


def test_link_send_while_disconnected_is_dropped_and_counted():
    link = Link("loop://")
    assert link.send(b"\x00abc\x00") is False and link.stats.tx_dropped == 1
    link.open()
    link.close()
    link.close()  # idempotent
    assert not link._thread.is_alive() and not link.connected


@pytest.mark.filterwarnings("ignore:set(Daemon|Name).. is deprecated:DeprecationWarning")
def test_link_rfc2217_roundtrip_through_pyserial_port_manager():
    import serial
    import serial.rfc2217

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    stop = threading.Event()

    def rfc2217_server():  # pyserial's own server side, in front of a loop:// port
        conn, _ = server.accept()
        conn.settimeout(0.05)
        port = serial.serial_for_url("loop://", timeout=0.05)

        class Out:
            def write(self, data):
                conn.sendall(data)

        mgr = serial.rfc2217.PortManager(port, Out())

        def port_to_net():
            while not stop.is_set():
                data = port.read(port.in_waiting or 1)
                if data:
                    conn.sendall(b"".join(mgr.escape(data)))

        threading.Thread(target=port_to_net, daemon=True).start()
        while not stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            if not data:
                break
            port.write(b"".join(mgr.filter(data)))
        conn.close()

    t = threading.Thread(target=rfc2217_server, daemon=True)
    t.start()
    try:
        with Link(f"rfc2217://127.0.0.1:{server.getsockname()[1]}?timeout=3",
                  baudrate=921600) as link:
            assert link.send(b"".join(p.encode_sample(0, i, [float(i)]) for i in range(20)))
            assert [f.seq for f in _receive_n(link, 20)] == list(range(20))
    finally:
        stop.set()
        t.join(5)
        server.close()


def test_link_open_with_wait_picks_up_a_device_plugged_in_later(tmp_path):
    path = str(tmp_path / "ttyLATER")
    link = Link(path, backoff_initial=0.02, backoff_max=0.05)
    with pytest.raises(LinkError, match="ttyLATER"):
        link.open()
    link.open(wait=True)
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        time.sleep(0.1)
        os.symlink(os.ttyname(slave), path)
        wait_until(lambda: link.connected, 5.0)
        os.write(master, p.encode_sample(0, 3, [1.0]))
        assert [f.seq for f in _receive_n(link, 1)] == [3]
        assert link.stats.reconnects == 1
    finally:
        link.close()
        os.close(master)
        os.close(slave)
