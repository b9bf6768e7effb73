"""Sources and sinks of edgernn serve over real sockets, pipes and ptys (daemon in-process)."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
import tty

import numpy as np
import pytest

from edgernn_serve.config import load_config
from edgernn_serve.daemon import Daemon
from firmware_bridge import protocol as p
from tests.serve_helpers import free_port, make_model, wait_until


def _daemon(tmp_path, source: str, sinks: str, stdout=None, stdin=None) -> Daemon:
    make_model().save(tmp_path / "m.ernn")
    cfg = tmp_path / "edgernn.toml"
    cfg.write_text(f'device = "t"\nlog_level = "error"\n[model]\npath = "m.ernn"\n'
                   f'[source]\n{source}\n{sinks}\n[metrics]\nlisten = ""\n')
    d = Daemon(load_config(cfg), stdout=stdout, stdin=stdin)
    d.start()
    return d


def _oracle(xs):
    s = make_model().stream()
    return [s.step(np.asarray(x, np.float32)).tolist() for x in xs]


@pytest.mark.parametrize("fmt", ["json", "f32"])
def test_udp_source_to_udp_and_file_sinks(tmp_path, fmt):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    port = free_port()
    d = _daemon(tmp_path, f'kind = "udp"\nlisten = "127.0.0.1:{port}"\nformat = "{fmt}"',
                f'[[sink]]\ntype = "udp"\ntarget = "127.0.0.1:{rx.getsockname()[1]}"\n'
                f'[[sink]]\ntype = "file"\npath = "out.jsonl"')
    xs = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for c in clients:
        c.bind(("127.0.0.1", 0))
    keys = [f"127.0.0.1:{c.getsockname()[1]}" for c in clients]  # the sender is the stream
    try:
        for i, x in enumerate(xs):
            c = clients[i % 2]
            msg = x.astype("<f4").tobytes() if fmt == "f32" else json.dumps(
                {"x": x.tolist(), "seq": i // 2}).encode()
            c.sendto(msg, ("127.0.0.1", port))
            time.sleep(0.001)  # no bursts beyond the kernel's socket buffer
        clients[0].sendto(b"{not json" if fmt == "json" else b"abc", ("127.0.0.1", port))
        got = [json.loads(rx.recv(65536)) for _ in range(40)]
        wait_until(lambda: d.source.bad_frames(), what="the bad datagram")
    finally:
        d.stop()
        for c in clients:
            c.close()
        rx.close()
    lines = [json.loads(ln) for ln in (tmp_path / "out.jsonl").read_text().splitlines()]
    for c in range(2):
        assert [r["y"] for r in got if r["stream"] == keys[c]] == _oracle(xs[c::2])
        assert [r["y"] for r in lines if r["stream"] == keys[c]] == _oracle(xs[c::2])
    assert d.source.bad_frames() == ({"json": 1} if fmt == "json" else {"f32_size": 1})


def test_unix_source_connections_are_streams_and_unix_sink_buffers_until_a_listener(tmp_path):
    src_path, sink_path = tmp_path / "in.sock", tmp_path / "out.sock"
    d = _daemon(tmp_path, f'kind = "unix"\npath = "{src_path}"',
                f'[[sink]]\ntype = "unix"\npath = "{sink_path}"\nbuffer = 1000')
    xs = np.random.default_rng(1).standard_normal((30, 16)).astype(np.float32)
    try:
        conns = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
        for c in conns:
            c.connect(str(src_path))
        for i, x in enumerate(xs):  # one line split over two writes, and a named stream
            line = json.dumps({"x": x.tolist()} if i % 6 else {"x": x.tolist(),
                                                                "stream": "named"}).encode()
            conns[i % 2].sendall(line[:10])
            conns[i % 2].sendall(line[10:] + b"\n")
        conns[0].sendall(b"[1, 2]\n" + b"x" * (1 << 20) + b"y" * 100 + b"\n")
        wait_until(lambda: d.scheduler.c["results_ok"] == 30, what="30 results")
        time.sleep(0.2)  # nobody listens yet: the results wait in the sink's buffer
        assert d.sinks.sinks[0].pending == 30
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(sink_path))
        srv.listen(1)
        srv.settimeout(5)
        conn, _ = srv.accept()
        buf = b""
        while buf.count(b"\n") < 30:
            buf += conn.recv(65536)
        wait_until(lambda: d.source.bad_frames().get("oversize"), what="the oversize line")
    finally:
        d.stop()
    got = [json.loads(ln) for ln in buf.splitlines()]
    named = [i for i in range(30) if i % 6 == 0]
    assert [r["y"] for r in got if r["stream"] == "named"] == _oracle(xs[named])
    for c in (1, 2):  # connection numbers are the default stream keys
        mine = [i for i in range(30) if i % 2 == c - 1 and i % 6]
        assert [r["y"] for r in got if r["stream"] == c] == _oracle(xs[mine])
    assert d.source.bad_frames() == {"json": 1, "oversize": 1}


def test_stdin_text_source_and_stdout_sink_with_end_of_input(tmp_path):
    r, w = os.pipe()
    out = io.BytesIO()
    xs = np.random.default_rng(2).standard_normal((5, 16)).astype(np.float32)
    with os.fdopen(r, "rb") as rf:
        d = _daemon(tmp_path, 'kind = "stdin"\nformat = "text"', '[[sink]]\ntype = "stdout"',
                    stdout=out, stdin=rf)
        text = "\n".join(", ".join(repr(float(v)) for v in x) for x in xs) + "\n1 2 oops\n"
        os.write(w, text.encode())
        os.close(w)
        wait_until(d.source.finished.is_set, what="end of input")
        d.stop()
    got = [json.loads(ln) for ln in out.getvalue().splitlines()]
    assert [g["y"] for g in got] == _oracle(xs) and d.source.bad_frames() == {"text": 1}


def test_serial_sink_with_its_own_port_sends_result_and_error_frames(tmp_path):
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    port = free_port()
    d = _daemon(tmp_path, f'kind = "udp"\nlisten = "127.0.0.1:{port}"',
                f'[[sink]]\ntype = "serial"\nurl = "{path}"')
    xs = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
    dec, frames = p.Decoder(), []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            for i, x in enumerate(xs):
                c.sendto(json.dumps({"stream": 5, "seq": 100 + i, "t": 7, "x": x.tolist()})
                         .encode(), ("127.0.0.1", port))
                time.sleep(0.01)
            c.sendto(b'{"stream": 5, "seq": 104, "x": [1.0]}', ("127.0.0.1", port))
            c.sendto(b'{"stream": "text-key", "x": ' + json.dumps(xs[0].tolist()).encode()
                     + b"}", ("127.0.0.1", port))
        end = time.monotonic() + 10
        while len(frames) < 5 and time.monotonic() < end:
            os.set_blocking(master, False)
            try:
                frames += dec.feed(os.read(master, 65536))
            except BlockingIOError:
                time.sleep(0.01)
        wait_until(lambda: d.sinks.sinks[0].dropped == 1, what="the text key to be refused")
    finally:
        d.stop()
        os.close(master)
        os.close(slave)
    assert [(f.kind, f.stream_id, f.seq, f.timestamp) for f in frames] == \
        [(p.Kind.RESULT, 5, 100 + i, 7) for i in range(4)] + [(p.Kind.ERROR, 5, 104, 0)]
    ys = [np.frombuffer(f.payload, "<f4").tolist() for f in frames[:4]]
    assert ys == _oracle(xs) and b"expected 16 values, got 1" in frames[4].payload


def test_stdout_sink_drops_oldest_beyond_its_buffer_and_counts_them(tmp_path):
    blocked, entered = threading.Event(), threading.Event()

    class Slow(io.BytesIO):
        def write(self, b):
            entered.set()
            blocked.wait(10)
            return super().write(b)

    out = Slow()
    r, w = os.pipe()
    with os.fdopen(r, "rb") as rf:
        d = _daemon(tmp_path, 'kind = "stdin"\nformat = "text"',
                    '[[sink]]\ntype = "stdout"\nbuffer = 5', stdout=out, stdin=rf)
        for i in range(20):
            os.write(w, (" ".join(["0"] * 16) + "\n").encode())
            wait_until(lambda i=i: d.scheduler.c["results_ok"] == i + 1)
            if i == 0:  # the writer holds the first batch (else a loaded machine may
                wait_until(entered.is_set)  # start it only after the buffer overflowed)
        blocked.set()
        os.close(w)
        wait_until(d.source.finished.is_set)
        d.stop()
    sink = d.sinks.sinks[0]
    lines = out.getvalue().splitlines()
    assert sink.delivered == len(lines) and sink.delivered + sink.dropped == 20
    ns = [json.loads(ln)["n"] for ln in lines]
    k = len(ns) - 5  # the batch being written when the sink blocked; the newest 5 waited
    assert k >= 1 and ns == list(range(1, k + 1)) + [16, 17, 18, 19, 20]
    assert sink.dropped == 15 - k  # everything between: dropped oldest-first, counted


def test_named_outputs_of_a_graph_model_appear_in_each_record(tmp_path):
    import edgernn as e

    r = np.random.default_rng(5)

    def w(*s):
        return (r.standard_normal(s) * 0.3).astype(np.float32)

    x = e.Input(6, name="features")
    g = e.GRU(w(24, 6), w(24, 8))(x, name="gru")
    model = e.Model(inputs=x, outputs=[e.Dense(w(3, 8), w(3), activation="sigmoid")(
        g, name="gains"), e.Dense(w(1, 8), w(1), activation="sigmoid")(g, name="vad")])
    model.save(tmp_path / "g.ernn")
    cfg = tmp_path / "g.toml"
    cfg.write_text('log_level = "error"\n[model]\npath = "g.ernn"\n[source]\nkind = "stdin"\n'
                   'format = "text"\n[[sink]]\ntype = "stdout"\n[metrics]\nlisten = ""\n')
    out, (rfd, wfd) = io.BytesIO(), os.pipe()
    xs = r.standard_normal((3, 6)).astype(np.float32)
    with os.fdopen(rfd, "rb") as rf:
        d = Daemon(load_config(cfg), stdout=out, stdin=rf)
        d.start()
        os.write(wfd, "".join(" ".join(map(repr, map(float, x))) + "\n" for x in xs).encode())
        os.close(wfd)
        wait_until(d.source.finished.is_set)
        d.stop()
    s = model.stream()
    for row, x in zip(out.getvalue().splitlines(), xs, strict=True):
        rec, y = json.loads(row), s.step(x)
        assert rec["y"] == y.tolist()
        assert rec["outputs"] == {"gains": y[:3].tolist(), "vad": y[3:].tolist()}


def test_a_failing_sink_counts_its_drops_and_the_others_keep_delivering(tmp_path):
    import logging

    class Closed(io.BytesIO):
        def write(self, b):
            raise BrokenPipeError(32, "Broken pipe")

    r, w = os.pipe()
    with os.fdopen(r, "rb") as rf:
        d = _daemon(tmp_path, 'kind = "stdin"\nformat = "text"',
                    '[[sink]]\ntype = "stdout"\n[[sink]]\ntype = "file"\npath = "o.jsonl"',
                    stdout=Closed(), stdin=rf)
        logger, seen = logging.getLogger("edgernn.serve"), []
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: seen.append(record.getMessage())
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        for _ in range(10):
            os.write(w, (" ".join(["0.5"] * 16) + "\n").encode())
            time.sleep(0.01)
        os.close(w)
        wait_until(d.source.finished.is_set)
        s = d.stop()
        logger.removeHandler(handler)
    assert s["answered"] == 10 and s["sinks"]["stdout"] == {"delivered": 0, "dropped": 10,
                                                            "pending": 0}
    assert s["sinks"]["file1"]["delivered"] == 10
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 10
    warned = [m for m in seen if "sink stdout: write failed" in m]
    assert len(warned) == 1  # rate-limited, not one line per result
