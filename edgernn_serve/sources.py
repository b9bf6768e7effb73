"""Where frames come from: stdin, UDP, a unix socket (the serial device: ``device``).

Each source reads in its own thread and hands :class:`~edgernn_serve.items.Sample`
items to ``submit`` (the scheduler's input queue). Malformed input is never
fatal: it is counted in ``bad[reason]`` and skipped (the serial source's protocol
decoder counts its own rejects by reason; ``bad_frames()`` merges them).

Line and datagram formats (stdin, udp, unix):

- ``json``: one object per line / datagram: ``{"x": [...]}`` with optional
  ``"stream"`` (int or string; default: 0 for stdin, the sender for udp, the
  connection for unix), ``"seq"`` (int; gaps are checked) and ``"t"`` (int);
  ``{"stream": ..., "reset": true}`` resets a stream.
- ``text``: numbers separated by spaces or commas, one frame per line.
- ``f32`` (udp only): the datagram is little-endian float32 values.
"""

from __future__ import annotations

import json
import logging
import os
import select
import selectors
import socket
import sys
import threading
import time
from collections import Counter

import numpy as np

from edgernn_serve.items import Reset, Sample

log = logging.getLogger("edgernn.serve")

MAX_LINE = 1 << 20


class Source:
    """Base: counters, lifecycle and the interface every source offers."""

    kind = "source"
    seq_mod: int | None = None  # sequence numbers wrap at this modulus (None: no wrap)

    def __init__(self, submit) -> None:
        self.submit = submit
        self.bad: Counter = Counter()
        self.finished = threading.Event()  # the input ended (EOF): the daemon drains and exits
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"source-{self.kind}",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop reading; after it returns no more frames are submitted."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)

    def bad_frames(self) -> dict:
        return dict(self.bad)

    def drops(self) -> dict:
        """Frames the source itself dropped before they were accepted, by queue."""
        return {}

    @property
    def reconnects(self) -> int:
        return 0

    @property
    def connected(self) -> bool:
        return not self.finished.is_set()

    def check_model(self, model) -> None:
        """Raise ConfigError if frames of this source cannot feed ``model``."""


class LineSplitter:
    """Bytes in, complete lines out; a line longer than MAX_LINE is dropped whole
    (counted ``bad["oversize"]``), so memory stays bounded."""

    def __init__(self, bad: Counter) -> None:
        self.bad = bad
        self.buf = bytearray()
        self.discarding = False

    def feed(self, data: bytes) -> list:
        lines, start = [], 0
        while True:
            i = data.find(b"\n", start)
            if i < 0:
                if not self.discarding:
                    self.buf += data[start:]
                    if len(self.buf) > MAX_LINE:
                        self.bad["oversize"] += 1
                        self.buf.clear()
                        self.discarding = True
                return lines
            if self.discarding:
                self.discarding = False
            else:
                self.buf += data[start:i]
                if len(self.buf) > MAX_LINE:
                    self.bad["oversize"] += 1
                elif self.buf.strip():
                    lines.append(bytes(self.buf))
            self.buf.clear()
            start = i + 1

    def end(self) -> list:
        """The last line if the input ended without a newline."""
        line = bytes(self.buf)
        self.buf.clear()
        return [line] if line.strip() and not self.discarding else []


def parse_line(line: bytes, fmt: str, default_key, origin, now: int, bad: Counter):
    """One Sample (or Reset) from a json/text line, or None (counted in ``bad``)."""
    line = bytes(line)
    if fmt == "text":
        try:
            x = np.array(line.replace(b",", b" ").split(), dtype=np.float32)
        except ValueError:
            bad["text"] += 1
            return None
        if x.size == 0 or x.ndim != 1:
            return None
        return Sample(default_key, None, 0, x, origin, now)
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        bad["json"] += 1
        return None
    if not isinstance(obj, dict):
        bad["json"] += 1
        return None
    key = obj.get("stream", default_key)
    seq, t = obj.get("seq"), obj.get("t", 0)
    if (not isinstance(key, (int, str)) or isinstance(key, bool)
            or seq is not None and (not isinstance(seq, int) or isinstance(seq, bool))
            or not isinstance(t, int) or isinstance(t, bool)):
        bad["field"] += 1
        return None
    if obj.get("reset") is True:
        return Reset(key, origin)
    xs = obj.get("x")
    if not isinstance(xs, list):
        bad["field"] += 1
        return None
    try:
        x = np.array(xs, dtype=np.float32)
    except (ValueError, TypeError):
        bad["field"] += 1
        return None
    if x.ndim != 1:
        bad["field"] += 1
        return None
    return Sample(key, seq, t, x, origin, now)


class StdinSource(Source):
    """Frames as lines on standard input; end of input ends the daemon (after draining)."""

    kind = "stdin"

    def __init__(self, submit, fmt: str, stream=None) -> None:
        super().__init__(submit)
        self.fmt = fmt
        self.fd = (stream if stream is not None else sys.stdin.buffer).fileno()

    def _loop(self) -> None:
        split = LineSplitter(self.bad)
        while not self._stop.is_set():
            if not select.select([self.fd], [], [], 0.1)[0]:
                continue
            data = os.read(self.fd, 1 << 16)
            if not data:
                self._lines(split.end())
                self.finished.set()
                return
            self._lines(split.feed(data))

    def _lines(self, lines) -> None:
        now = time.perf_counter_ns()
        items = [parse_line(ln, self.fmt, 0, self, now, self.bad) for ln in lines]
        items = [it for it in items if it is not None]
        if items:
            self.submit(items)


class UdpSource(Source):
    """One frame per datagram on ``listen`` (host, port)."""

    kind = "udp"

    def __init__(self, submit, listen, fmt: str) -> None:
        super().__init__(submit)
        self.fmt = fmt
        fam = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind(listen)
        self.sock.settimeout(0.1)
        self.address = self.sock.getsockname()[:2]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            now = time.perf_counter_ns()
            key = f"{peer[0]}:{peer[1]}"
            if self.fmt == "f32":
                if len(data) % 4 or not data:
                    self.bad["f32_size"] += 1
                    continue
                it = Sample(key, None, 0, np.frombuffer(data, "<f4").astype(np.float32), self,
                            now)
            else:
                it = parse_line(data, self.fmt, key, self, now, self.bad)
            if it is not None:
                self.submit([it])

    def close(self) -> None:
        super().close()
        self.sock.close()


class UnixSource(Source):
    """A unix stream socket at ``path``; any number of clients write lines."""

    kind = "unix"

    def __init__(self, submit, path, fmt: str) -> None:
        super().__init__(submit)
        self.path, self.fmt = str(path), fmt
        if os.path.exists(self.path):
            os.unlink(self.path)  # a stale socket of a previous run
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(16)
        self.sock.setblocking(False)
        self._clients = 0

    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ, None)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    if key.data is None:
                        conn, _ = self.sock.accept()
                        conn.setblocking(False)
                        self._clients += 1
                        sel.register(conn, selectors.EVENT_READ,
                                     (self._clients, LineSplitter(self.bad)))
                    else:
                        self._read(sel, key.fileobj, key.data)
        finally:
            for key in list(sel.get_map().values()):
                if key.data is not None:
                    key.fileobj.close()
            sel.close()

    def _read(self, sel, conn, state) -> None:
        try:
            data = conn.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            sel.unregister(conn)
            conn.close()
            lines = state[1].end()
        else:
            lines = state[1].feed(data)
        now = time.perf_counter_ns()
        items = [parse_line(ln, self.fmt, state[0], self, now, self.bad) for ln in lines]
        items = [it for it in items if it is not None]
        if items:
            self.submit(items)

    def close(self) -> None:
        super().close()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
