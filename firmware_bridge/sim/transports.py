"""Device ends of a link that can be unplugged and plugged again.

``PtyTransport`` owns a pseudo-terminal pair and exposes the slave through a
symlink (like udev's /dev/serial/by-id), so the host reopens the same path after
a replug. ``TcpTransport`` listens on 127.0.0.1 for a ``socket://`` host. Both
are non-blocking; the device loop multiplexes them with ``select``.
"""

from __future__ import annotations

import errno
import os
import socket
import tty


class PtyTransport:
    """A pty pair; the host opens ``link_path`` (a symlink to the slave)."""

    def __init__(self, link_path: str) -> None:
        self.link_path = os.path.abspath(link_path)
        self.master: int | None = None
        self._slave: int | None = None

    @property
    def url(self) -> str:
        return self.link_path

    def plug(self) -> None:
        """Create a fresh pty pair and point the symlink at it."""
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing before the host opens it
        os.set_blocking(self.master, False)
        tmp = f"{self.link_path}.{os.getpid()}.tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(self._slave), tmp)
        os.replace(tmp, self.link_path)

    def unplug(self) -> None:
        """Close both ends (the host sees EIO) and remove the symlink."""
        for fd in (self.master, self._slave):
            if fd is not None:
                os.close(fd)
        self.master = self._slave = None
        if os.path.lexists(self.link_path):
            os.unlink(self.link_path)

    def fileno(self) -> int | None:
        return self.master

    def accept(self) -> bool:
        return self.master is not None

    def read(self) -> bytes:
        try:
            return os.read(self.master, 65536)
        except BlockingIOError:
            return b""
        except OSError as e:  # EIO: no host has the slave open right now
            if e.errno == errno.EIO:
                return b""
            raise

    def write(self, data: bytes) -> int:
        try:
            return os.write(self.master, data)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        self.unplug()


class TcpTransport:
    """A TCP server on 127.0.0.1; the host connects to ``socket://127.0.0.1:port``."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: socket.socket | None = None
        self.conn: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def plug(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(1)
        s.setblocking(False)
        self.port = s.getsockname()[1]
        self._server = s

    def unplug(self) -> None:
        for s in (self.conn, self._server):
            if s is not None:
                s.close()
        self.conn = self._server = None

    def accept(self) -> bool:
        """Accept a waiting host if not connected; True when connected."""
        if self.conn is None and self._server is not None:
            try:
                conn, _ = self._server.accept()
            except BlockingIOError:
                return False
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conn = conn
        return self.conn is not None

    def fileno(self) -> int | None:
        return self.conn.fileno() if self.conn is not None else None

    def read(self) -> bytes:
        try:
            data = self.conn.recv(65536)
        except BlockingIOError:
            return b""
        except OSError:
            data = b""
        if not data:  # the host went away: wait for the next one
            self.conn.close()
            self.conn = None
        return data

    def write(self, data: bytes) -> int:
        try:
            return self.conn.send(data)
        except BlockingIOError:
            return 0
        except OSError:
            return 0

    def close(self) -> None:
        self.unplug()
