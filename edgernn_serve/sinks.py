"""Where results go: stdout, a file, UDP, a unix socket, the serial device, MQTT.

Every sink takes the results of one wave with ``emit(results)`` in the stepping
thread and must not block it: sinks that can stall (a pipe, a file on a slow
card, a socket peer) queue results in a bounded buffer served by their own
thread; on overflow the oldest are dropped and counted. ``flush(timeout)``
delivers what is buffered and returns how many could not be (counted dropped).

JSON sinks write one object per result (docs/serve.md)::

    {"device": "pump-7", "stream": 0, "seq": 41, "n": 42, "t": 123456, "model": "m",
     "y": [0.1, ...], "latency_us": 84.1}

``y`` holds the exact float32 values; a model with named outputs (engine v2)
also gets ``"outputs": {"name": [...]}``. A frame that could not be stepped has
``"error": "..."`` instead of ``y``.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from collections import deque

from edgernn_serve.scheduler import RateLimitedLog
from firmware_bridge import protocol as p

log = logging.getLogger("edgernn.serve")


def record(r, device: str, slices: dict | None = None) -> dict:
    """The JSON-ready dict of one Result."""
    d = {"device": device, "stream": r.key, "seq": r.seq, "n": r.n, "t": r.t,
         "model": r.model_id}
    if r.error is not None:
        d["error"] = r.error
    elif r.y is not None:
        d["y"] = r.y.tolist()
        if slices:
            d["outputs"] = {name: r.y[s].tolist() for name, s in slices.items()}
    if r.extra:
        d.update(r.extra)
    d["latency_us"] = round((r.done_ns - r.arrived_ns) / 1000.0, 1)
    return d


class Sink:
    """Base: counters and the interface every sink offers."""

    type = "sink"
    audio = False  # True: takes the denoised audio (``emit_audio``), not JSON records

    def __init__(self, name: str, device: str) -> None:
        self.name, self.device = name, device
        self.slices: dict | None = None
        self.delivered = 0
        self.dropped = 0
        self.reconnects = 0

    def start(self) -> None:
        """Begin delivering (open connections, start threads)."""

    def emit(self, results: list) -> None:
        raise NotImplementedError

    @property
    def pending(self) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        """Deliver what is buffered within ``timeout`` s; return what was left (dropped)."""
        end = time.monotonic() + timeout
        while self.pending and time.monotonic() < end:
            time.sleep(0.005)
        return self.pending

    def close(self) -> None:
        """Stop delivering; release resources. Idempotent."""

    def line(self, r) -> bytes:
        return json.dumps(record(r, self.device, self.slices), separators=(",", ":"),
                          allow_nan=False).encode() + b"\n"


class QueuedSink(Sink):
    """A sink whose writes happen in its own thread, fed by a bounded buffer.

    The thread writes what gathered during ``linger`` seconds after the first
    result in one go: at 1 kHz that is one wake-up and one write per 5 ms, not
    per frame (latency to the reader grows by at most ``linger``).
    """

    linger = 0.005

    def __init__(self, name: str, device: str, buffer: int) -> None:
        super().__init__(name, device)
        self.capacity = buffer
        self._q: deque = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = 0
        self._warn = RateLimitedLog(log)
        self._thread = threading.Thread(target=self._loop, name=f"sink-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def emit(self, results: list) -> None:
        with self._cond:
            self._q.extend(results)
            excess = len(self._q) - self.capacity
            for _ in range(excess):
                self._q.popleft()
            if excess > 0:
                self.dropped += excess
            self._cond.notify()

    @property
    def pending(self) -> int:
        return len(self._q) + self._busy

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._q and not self._closing:
                    self._cond.wait()
                if not self._q:
                    return
            if not self._closing:  # gather what arrives meanwhile: one write, one wake-up
                time.sleep(self.linger)
            with self._cond:
                batch = list(self._q)
                self._q.clear()
                self._busy = len(batch)
            try:
                ok = self.write(batch)
            except Exception as e:  # keep serving; the reason is logged, rate-limited
                self._warn.warning("write", f"sink {self.name}: write failed ({e}); results "
                                            f"dropped")
                ok = False
            if ok is None:  # not connected: keep them (bounded), retry a little later
                with self._cond:
                    self._q.extendleft(reversed(batch))
                    excess = len(self._q) - self.capacity
                    for _ in range(excess):
                        self._q.popleft()
                    self.dropped += max(excess, 0)
                    self._busy = 0
                    if not self._closing:
                        self._cond.wait(0.1)
                continue
            if ok:
                self.delivered += len(batch)
            else:
                self.dropped += len(batch)
            self._busy = 0

    def write(self, batch: list) -> bool | None:
        """Deliver ``batch``: True if done, False if lost (counted), None to retry later."""
        raise NotImplementedError

    def close(self) -> None:
        with self._cond:
            self._closing = True
            left = len(self._q)
            self._q.clear()
            self.dropped += left
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(1.0)


class StdoutSink(QueuedSink):
    type = "stdout"

    def __init__(self, name, device, buffer, stream=None) -> None:
        super().__init__(name, device, buffer)
        self.out = stream if stream is not None else sys.stdout.buffer

    def write(self, batch) -> bool:
        self.out.write(b"".join(self.line(r) for r in batch))
        self.out.flush()
        return True


class FileSink(QueuedSink):
    """Appends JSON lines to ``path`` (reopened on reload: logrotate's copy or move)."""

    type = "file"

    def __init__(self, name, device, buffer, path) -> None:
        super().__init__(name, device, buffer)
        self.path = path
        self.fh = open(path, "ab")  # noqa: SIM115 (held open for the sink's life)

    def write(self, batch) -> bool:
        self.fh.write(b"".join(self.line(r) for r in batch))
        self.fh.flush()
        return True

    def close(self) -> None:
        super().close()
        self.fh.close()


class UnixSink(QueuedSink):
    """JSON lines to a unix stream socket's listener.

    While no listener is there, results wait in the bounded buffer (oldest dropped
    first) and the connection is retried every 0.5 s. A batch cut by a broken
    connection is sent again whole after reconnecting (a reader may see a partial
    line, then the batch again).
    """

    type = "unix"

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

    def __init__(self, name, device, target) -> None:
        super().__init__(name, device)
        self.target = target
        fam = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
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


class SerialSink(Sink):
    """RESULT frames (ERROR frames for unanswerable samples) back to the device.

    Without ``url`` each result goes back through the serial source it came from
    (one write per wave); with ``url`` through a port of its own. Stream keys
    must be serial stream ids (0..255); the sequence number is the sample's (or
    the stream's step count mod 65536).
    """

    type = "serial"

    def __init__(self, name, device, url=None, baudrate=115200) -> None:
        super().__init__(name, device)
        self.link = None
        if url is not None:
            from firmware_bridge.link import Link

            self.link = Link(url, baudrate=baudrate)

    def start(self) -> None:
        if self.link is not None:
            self.link.open(wait=True)

    @staticmethod
    def frame(r) -> bytes | None:
        key = r.key
        if not isinstance(key, int) or not 0 <= key <= 255:
            return None
        seq = (r.seq if r.seq is not None else r.n) & 0xFFFF
        t = r.t & 0xFFFFFFFF
        if r.error is None:
            head = p.HEADER.pack(p.PROTOCOL_VERSION, p.Kind.RESULT, key, p.Encoding.F32, seq, t)
            return p.pack(head, r.y.astype("<f4", copy=False).tobytes())
        code = p.ErrorCode.BAD_SIZE if r.error.startswith("expected") else p.ErrorCode.STEP_FAILED
        msg = bytes((code,)) + f"stream {key}: {r.error}".encode()[:p.MAX_PAYLOAD - 1]
        return p.encode_frame(p.Frame(p.Kind.ERROR, key, seq, t, p.Encoding.RAW, msg))

    def emit(self, results) -> None:
        groups: dict = {}
        for r in results:
            wire = self.frame(r)
            target = self.link if self.link is not None else getattr(r.origin, "link", None)
            if wire is None or target is None:
                self.dropped += 1
                continue
            groups.setdefault(id(target), (target, []))[1].append(wire)
        for target, wires in groups.values():
            if target.send(b"".join(wires)):
                self.delivered += len(wires)
            else:
                self.dropped += len(wires)

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
            self.reconnects = self.link.stats.reconnects


class SinkSet:
    """All configured sinks; ``emit`` hands each wave's results to every one.

    Audio sinks (a denoising source's ``wav`` and ``audio`` sinks) get the
    denoised audio through ``emit_audio``; the others get ``emit``'s results.
    """

    def __init__(self, sinks: list) -> None:
        self.sinks = list(sinks)

    def start(self) -> None:
        for s in self.sinks:
            s.start()

    def start_new(self, running) -> None:
        """Start the sinks that are not carried over from the ``running`` set."""
        for s in self.sinks:
            if not any(s is k for k in running.sinks):
                s.start()

    def emit(self, results: list, audio: bool = False) -> None:
        for s in self.sinks:
            if s.audio != audio:
                continue
            try:
                s.emit(results)
            except Exception as e:  # one broken sink must not starve the others
                s.dropped += len(results)
                log.warning("sink %s: emit failed: %s", s.name, e)

    def emit_audio(self, results: list) -> None:
        self.emit(results, audio=True)

    def set_slices(self, slices) -> None:
        for s in self.sinks:
            s.slices = slices

    def flush(self, timeout: float) -> dict:
        """Flush every sink within ``timeout`` s in total; return {name: left}."""
        end = time.monotonic() + timeout
        return {s.name: s.flush(max(0.0, end - time.monotonic())) for s in self.sinks}

    def close(self, keep=()) -> None:
        """Close every sink but those in ``keep`` (carried over into a new set)."""
        for s in self.sinks:
            if not any(s is k for k in keep):
                s.close()


def build_sink(conf, device: str, stdout=None, audio=None):
    """The sink for one validated ``[[sink]]`` table (MQTT is imported only if used)."""
    o = conf.options
    if conf.type == "stdout":
        return StdoutSink(conf.name, device, o["buffer"], stdout)
    if conf.type == "file":
        try:
            return FileSink(conf.name, device, o["buffer"], o["path"])
        except OSError as e:
            from edgernn_serve.config import ConfigError

            raise ConfigError(f"sink {conf.name}: cannot open {o['path']}: {e.strerror}") from None
    if conf.type == "unix":
        return UnixSink(conf.name, device, o["buffer"], o["path"])
    if conf.type == "udp":
        return UdpSink(conf.name, device, o["target"])
    if conf.type == "serial":
        return SerialSink(conf.name, device, o["url"], o["baudrate"])
    if conf.type == "mqtt":
        from edgernn_serve.mqtt import MqttSink

        return MqttSink(conf.name, device, o)
    if conf.type in ("wav", "audio"):
        from edgernn_serve.audio_sinks import build_audio_sink

        return build_audio_sink(conf, device, audio)
    raise ValueError(f"unknown sink type {conf.type!r}")
