"""JSON-line sinks: stdout, a file, a unix socket's listener, UDP datagrams."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time

from edgernn_serve.schema import ConfigError, parse_hostport
from edgernn_serve.sinks.base import QueuedSink, Sink

log = logging.getLogger("edgernn.serve")


def no_options(t, source) -> dict:
    return {}


def path_schema(t, source) -> dict:
    return {"path": t.path("path")}


def udp_schema(t, source) -> dict:
    return {"target": parse_hostport(t.take("target", str, ..., parse_hostport, "'host:port'"))}


class StdoutSink(QueuedSink):
    type = "stdout"

    @classmethod
    def build(cls, conf, ctx) -> StdoutSink:
        return cls(conf.name, ctx.device, conf.options["buffer"], ctx.stdout)

    def __init__(self, name, device, buffer, stream=None) -> None:
        super().__init__(name, device, buffer)
        self.out = stream if stream is not None else sys.stdout.buffer

    def write(self, batch) -> bool:
        self.out.write(b"".join(self.line(r) for r in batch))
        self.out.flush()
        return True


class FileSink(QueuedSink):
    """Appends JSON lines to ``path`` (reopened on reload: logrotate's copy or move).

    Each batch is one ``write``; one that fails or falls short (a full disk) is cut
    off again, so the file only ever holds whole lines, and its results are counted
    dropped (``errors`` counts the failed writes).
    """

    type = "file"

    def __init__(self, name, device, buffer, path) -> None:
        super().__init__(name, device, buffer)
        self.path = path
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise ConfigError(f"sink {name}: cannot open {path}: {e.strerror or e}") from None

    @classmethod
    def build(cls, conf, ctx) -> FileSink:
        return cls(conf.name, ctx.device, conf.options["buffer"], conf.options["path"])

    def write(self, batch) -> bool:
        data = b"".join(self.line(r) for r in batch)
        size = os.fstat(self.fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except OSError:
            try:
                os.ftruncate(self.fd, size)  # whole lines only: drop the part written
            except OSError:
                pass
            raise
        return True

    def close(self) -> None:
        super().close()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class UnixSink(QueuedSink):
    """JSON lines to a unix stream socket's listener.

    While no listener is there, results wait in the bounded buffer (oldest dropped
    first) and the connection is retried every 0.5 s. A batch cut by a broken
    connection is sent again whole after reconnecting (a reader may see a partial
    line, then the batch again).
    """

    type = "unix"

    @classmethod
    def build(cls, conf, ctx) -> UnixSink:
        return cls(conf.name, ctx.device, conf.options["buffer"], conf.options["path"])

    def __init__(self, name, device, buffer, path) -> None:
        super().__init__(name, device, buffer)
        self.path = str(path)
        self.sock = None
        self._retry_at = 0.0
        self._connected_once = False

    def write(self, batch) -> bool:
        if self.sock is None:
            if time.monotonic() < self._retry_at or self._closing:
                return False if self._closing else None
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(1.0)
                s.connect(self.path)
            except OSError as e:
                s.close()
                self._retry_at = time.monotonic() + 0.5
                log.debug("sink %s: cannot connect to %s: %s", self.name, self.path, e)
                return None
            self.sock = s
            if self._connected_once:
                self.reconnects += 1
            self._connected_once = True
        try:
            self.sock.sendall(b"".join(self.line(r) for r in batch))
            return True
        except OSError as e:
            log.warning("sink %s: %s closed (%s); reconnecting", self.name, self.path, e)
            self.sock.close()
            self.sock = None
            return None

    def close(self) -> None:
        super().close()
        if self.sock is not None:
            self.sock.close()


class UdpSink(Sink):
    """One JSON datagram per result to ``target``; never blocks (a full buffer drops)."""

    type = "udp"

    @classmethod
    def build(cls, conf, ctx) -> UdpSink:
        return cls(conf.name, ctx.device, conf.options["target"])

    def __init__(self, name, device, target) -> None:
        super().__init__(name, device)
        try:  # resolved once, at start: a name that does not resolve is a config error
            fam, _, _, _, self.target = socket.getaddrinfo(*target, type=socket.SOCK_DGRAM)[0]
        except (OSError, UnicodeError) as e:
            raise ConfigError(f"sink {name}: target: cannot resolve {target[0]!r}: "
                              f"{getattr(e, 'strerror', None) or e}") from None
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def emit(self, results) -> None:
        for r in results:
            try:
                self.sock.sendto(self.line(r), self.target)
                self.delivered += 1
            except OSError:
                self.dropped += 1

    def close(self) -> None:
        self.sock.close()
