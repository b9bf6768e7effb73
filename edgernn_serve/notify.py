"""systemd's service notification protocol (``sd_notify(3)``), in the standard library.

A notification is one datagram of ``KEY=VALUE`` lines sent to the AF_UNIX socket
named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace).
The daemon sends ``READY=1`` once serving, ``WATCHDOG=1`` every half
``$WATCHDOG_USEC`` while its stepping loop is alive, ``RELOADING=1`` with
``MONOTONIC_USEC`` when a reload begins (``READY=1`` when it ends) and
``STOPPING=1`` at shutdown. Outside systemd (no ``$NOTIFY_SOCKET``) every call is
a no-op. (The ``sdnotify`` package does the same in the same few lines, but has
had no release since 2017 and swallows every error; this keeps the errors
countable and adds the watchdog interval and the monotonic timestamp.)
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    """Sends notifications to ``$NOTIFY_SOCKET`` (or ``address``) if set.

    Attributes
    ----------
    enabled : bool
        Whether a notification socket was given.
    watchdog_s : float or None
        The watchdog interval in seconds (``$WATCHDOG_USEC``), when it applies to
        this process (``$WATCHDOG_PID`` unset or equal to our pid).
    errors : int
        Notifications that could not be sent.
    """

    def __init__(self, address: str | None = None, environ=None) -> None:
        env = os.environ if environ is None else environ
        addr = address if address is not None else env.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        self.address = addr or None
        self.enabled = self.address is not None
        self.errors = 0
        self.watchdog_s = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._sock = None
        if self.enabled:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def notify(self, *lines: str) -> bool:
        """Send one datagram of ``lines``; False (and ``errors`` + 1) if it failed."""
        if not self.enabled:
            return False
        try:
            self._sock.sendto("\n".join(lines).encode() + b"\n", self.address)
            return True
        except OSError:
            self.errors += 1
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC`` (systemd >= 253 requires it)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self.enabled = False
