"""Line and datagram sources: stdin, UDP, a unix socket (formats: :mod:`.parse`)."""

from __future__ import annotations

import os
import select
import selectors
import socket
import struct
import sys
import time

import numpy as np

from edgernn_serve.items import Sample
from edgernn_serve.schema import one_of, parse_hostport
from edgernn_serve.sources.base import LineSplitter, Source
from edgernn_serve.sources.parse import parse_line

#: Linux: a datagram's ancillary data carries the socket's count of datagrams the
#: kernel dropped for a full receive buffer (socket(7), SO_RXQ_OVFL)
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)


def line_schema(t, formats=("json", "text")) -> dict:
    check, expect = one_of(formats)
    return {"format": t.take("format", str, "json", check, expect)}


def udp_schema(t) -> dict:
    o = line_schema(t, ("json", "text", "f32"))
    o["listen"] = parse_hostport(t.take("listen", str, ..., parse_hostport, "'host:port'"))
    return o


def unix_schema(t) -> dict:
    return {**line_schema(t), "path": t.path("path")}


class _LineSource(Source):
    def _lines(self, lines, key) -> None:
        now = time.perf_counter_ns()
        items = [parse_line(ln, self.fmt, key, self, now, self.bad) for ln in lines]
        items = [it for it in items if it is not None]
        if items:
            self.submit(items)


class StdinSource(_LineSource):
    """Frames as lines on standard input; end of input ends the daemon (after draining)."""

    kind = "stdin"

    def __init__(self, submit, fmt: str, stream=None) -> None:
        super().__init__(submit)
        self.fmt = fmt
        self.fd = (stream if stream is not None else sys.stdin.buffer).fileno()
        self._split = LineSplitter(self.bad)  # kept across a restart of the reader

    @classmethod
    def build(cls, o: dict, ctx) -> StdinSource:
        return cls(ctx.submit, o["format"], ctx.stdin)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not select.select([self.fd], [], [], 0.1)[0]:
                continue
            data = os.read(self.fd, 1 << 16)
            if not data:
                self._lines(self._split.end(), 0)
                self.finished.set()
                return
            self._lines(self._split.feed(data), 0)


class UdpSource(Source):
    """One frame per datagram on ``listen`` (host, port).

    Datagrams the kernel dropped because the receive buffer was full are counted
    in ``drops()["udp_kernel"]`` (Linux's SO_RXQ_OVFL; 0 where it is missing).
    """

    kind = "udp"

    def __init__(self, submit, listen, fmt: str) -> None:
        super().__init__(submit)
        self.fmt = fmt
        fam = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            self.sock.bind(listen)
            self.sock.settimeout(0.1)
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
                self.kernel_counts = True
            except OSError:
                self.kernel_counts = False
        except BaseException:
            self.sock.close()
            raise
        self.address = self.sock.getsockname()[:2]
        self.kernel_drops = 0

    @classmethod
    def build(cls, o: dict, ctx) -> UdpSource:
        return cls(ctx.submit, o["listen"], o["format"])

    def drops(self) -> dict:
        return {"udp_kernel": self.kernel_drops}

    def _loop(self) -> None:
        cmsg_space = socket.CMSG_SPACE(4)
        while not self._stop.is_set():
            try:
                data, anc, _, peer = self.sock.recvmsg(65536, cmsg_space)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            for level, typ, payload in anc:
                if level == socket.SOL_SOCKET and typ == SO_RXQ_OVFL and len(payload) >= 4:
                    self.kernel_drops = struct.unpack("=I", payload[:4])[0]
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


class UnixSource(_LineSource):
    """A unix stream socket at ``path``; any number of clients write lines."""

    kind = "unix"

    def __init__(self, submit, path, fmt: str) -> None:
        super().__init__(submit)
        self.path, self.fmt = str(path), fmt
        if os.path.exists(self.path):
            os.unlink(self.path)  # a stale socket of a previous run
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(self.path)
            self.sock.listen(16)
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self._clients = 0

    @classmethod
    def build(cls, o: dict, ctx) -> UnixSource:
        return cls(ctx.submit, o["path"], o["format"])

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
        self._lines(lines, state[0])

    def close(self) -> None:
        super().close()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
