"""A frame link over any pyserial URL, with a reader thread and reconnect.

``Link(url)`` opens the port with ``serial.serial_for_url`` (``/dev/ttyUSB0``,
``loop://``, ``socket://host:port``, ``rfc2217://host:port``). A daemon reader
thread reads whatever bytes arrive, runs them through a
:class:`~firmware_bridge.protocol.Decoder` and puts the frames in a bounded
:class:`FrameQueue`. When the port fails (device unplugged, socket closed) the
thread closes it and reopens the same URL with exponential backoff, forever,
until :meth:`Link.close`. Every read and write has a timeout.

Overflow policy: the receive queue holds at most ``rx_capacity`` frames; when a
frame arrives at a full queue the **oldest** frame is dropped and counted in
``stats.overflows`` (with an ``on_frames`` callback instead of the queue, the
same bound applies to the frames of one read). A stepping consumer that falls
behind thus keeps working on the freshest samples; the dropped ones appear as
sequence gaps on their streams.
Sends are never queued: a write that times out or fails is dropped and counted
(``tx_dropped``); the next frame's leading 0x00 resynchronises the peer.
"""

from __future__ import annotations

import select
import socket
import threading
from collections import deque
from dataclasses import dataclass

from edgernn.errors import LinkError
from firmware_bridge.protocol import Decoder, Frame

_READ_SIZE = 1 << 16


def _fileno(port) -> int | None:
    """The port's descriptor if select() works on it (posix tty, socket://), else None."""
    try:
        fd = port.fileno()
    except Exception:  # loop:// and rfc2217:// have none
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


class FrameQueue:
    """Bounded FIFO of frames with drop-oldest overflow.

    Parameters
    ----------
    capacity : int
        Maximum number of items held (>= 1).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity!r}")
        self.capacity = capacity
        self.overflows = 0
        self._items: deque = deque()
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def put_many(self, items: list) -> None:
        """Append items; drop (and count) the oldest beyond capacity; wake a getter."""
        with self._cond:
            self._items.extend(items)
            excess = len(self._items) - self.capacity
            for _ in range(excess):
                self._items.popleft()
            if excess > 0:
                self.overflows += excess
            self._cond.notify()

    def get_many(self, timeout: float | None) -> list:
        """All items held, waiting up to ``timeout`` s for one; [] on timeout."""
        with self._cond:
            if not self._items:
                self._cond.wait_for(lambda: self._items, timeout)
            out = list(self._items)
            self._items.clear()
            return out


@dataclass
class LinkStats:
    """Counters of a Link (all monotonic)."""

    rx_bytes: int = 0
    tx_bytes: int = 0
    frames_in: int = 0
    overflows: int = 0
    disconnects: int = 0
    reconnects: int = 0
    tx_dropped: int = 0
    callback_errors: int = 0


class Link:
    """Frames in and out of one serial URL.

    Parameters
    ----------
    url : str
        A pyserial URL or device path.
    baudrate : int
        Line speed for real ports and rfc2217 (ignored by loop:// and socket://).
    rx_capacity : int
        Bound of the receive queue, in frames (drop-oldest beyond it).
    read_timeout, write_timeout : float
        Seconds; a read returns at least this often so the thread can stop; a
        write blocked this long is dropped.
    reconnect : bool
        Reopen the port after a failure (with backoff) instead of stopping.
    backoff_initial, backoff_max : float
        First and largest wait between reopen attempts, seconds (doubling).
    on_frames : callable or None
        ``on_frames(frames)`` called in the reader thread with the frames of each
        read, instead of queueing them (one thread wake-up less per frame: lower
        latency when CPUs are shared). Same bound and policy: of one read, only the
        newest ``rx_capacity`` frames are delivered. Its exceptions are counted in
        ``stats.callback_errors`` and do not stop the thread.
    """

    def __init__(self, url: str, *, baudrate: int = 115200, rx_capacity: int = 4096,
                 read_timeout: float = 0.05, write_timeout: float = 0.5,
                 reconnect: bool = True, backoff_initial: float = 0.05,
                 backoff_max: float = 1.0, on_frames=None) -> None:
        self.url = url
        self.baudrate = baudrate
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.decoder = Decoder()
        self.queue = FrameQueue(rx_capacity)
        self.on_frames = on_frames
        self.stats = LinkStats()
        self.last_error: str | None = None
        self._port = None
        self._lock = threading.Lock()  # guards _port swaps and writes
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle
    def open(self, wait: bool = False) -> Link:
        """Open the port and start reading.

        Raises
        ------
        LinkError
            If the port cannot be opened now, unless ``wait``: then the reader
            thread keeps trying with backoff (a device plugged in later).
        """
        if self._thread is not None:
            return self
        try:
            self._port = self._open_port()
        except LinkError as e:
            if not (wait and self.reconnect):
                raise
            self.last_error = str(e)
        self._thread = threading.Thread(target=self._read_loop, name=f"link-{self.url}",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the reader thread (joined) and close the port. Idempotent."""
        self._closing.set()
        port = self._port
        if port is not None and hasattr(port, "cancel_read"):
            try:
                port.cancel_read()
            except Exception:  # the port may already be dead
                pass
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        with self._lock:
            self._close_port()

    def __enter__(self) -> Link:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """Whether a port is open right now."""
        return self._port is not None

    # -------------------------------------------------------------- I/O
    def receive(self, timeout: float | None = 0.1) -> list[Frame]:
        """Frames received since the last call, waiting up to ``timeout`` s for one."""
        return self.queue.get_many(timeout)

    def send(self, data: bytes) -> bool:
        """Write wire bytes (one or more encoded frames); False if dropped."""
        import serial

        with self._lock:
            port = self._port
            if port is None:
                self.stats.tx_dropped += 1
                return False
            try:
                port.write(data)
            except (serial.SerialException, OSError) as e:
                self.stats.tx_dropped += 1
                self.last_error = f"write failed: {e}"
                return False
        self.stats.tx_bytes += len(data)
        return True

    # -------------------------------------------------------------- internals
    def _open_port(self):
        import serial

        # pyserial's rfc2217 client refuses any write_timeout (NotImplementedError)
        wt = None if self.url.lower().startswith("rfc2217://") else self.write_timeout
        try:
            port = serial.serial_for_url(self.url, baudrate=self.baudrate,
                                         timeout=self.read_timeout, write_timeout=wt)
        except (serial.SerialException, OSError, ValueError, NotImplementedError) as e:
            raise LinkError(f"cannot open serial port {self.url!r}: {e}") from e
        if _fileno(port) is not None:
            port.timeout = 0  # we select() on the descriptor; reads take what is there
        sock = getattr(port, "_socket", None)  # socket:// leaves Nagle on: small frames wait
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        return port

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # closing a dead port may fail in any way
                pass

    def _read_loop(self) -> None:
        import serial

        delay = self.backoff_initial
        fd_port, fd = None, None
        while not self._closing.is_set():
            port = self._port
            if port is None:
                if not self.reconnect or self._closing.wait(delay):
                    return
                try:
                    port = self._open_port()
                except LinkError as e:
                    self.last_error = str(e)
                    delay = min(delay * 2, self.backoff_max)
                    continue
                with self._lock:
                    self._port = port
                self.decoder.reset()
                self.stats.reconnects += 1
                delay = self.backoff_initial
            if port is not fd_port:
                fd_port, fd = port, _fileno(port)
            try:
                if fd is None:  # loop://, rfc2217://: blocking read with the port's timeout
                    data = port.read(port.in_waiting or 1)
                elif select.select([fd], [], [], self.read_timeout)[0]:
                    data = port.read(_READ_SIZE)
                else:
                    data = b""
            except (serial.SerialException, OSError, TypeError, AttributeError,
                    ValueError) as e:
                # TypeError/AttributeError/ValueError: a port closed under our feet.
                if self._closing.is_set():
                    return
                self.last_error = f"read failed: {e}"
                self.stats.disconnects += 1
                with self._lock:
                    self._close_port()
                continue
            if data:
                self.stats.rx_bytes += len(data)
                frames = self.decoder.feed(data)
                if frames:
                    self.stats.frames_in += len(frames)
                    self._deliver(frames)

    def _deliver(self, frames: list[Frame]) -> None:
        if self.on_frames is None:
            self.queue.put_many(frames)
            self.stats.overflows = self.queue.overflows
            return
        excess = len(frames) - self.queue.capacity
        if excess > 0:  # same policy inline: keep the newest rx_capacity frames of a read
            frames = frames[excess:]
            self.stats.overflows += excess
        try:
            self.on_frames(frames)
        except Exception as e:  # the consumer's bug must not kill the link
            self.stats.callback_errors += 1
            self.last_error = f"on_frames raised {type(e).__name__}: {e}"
