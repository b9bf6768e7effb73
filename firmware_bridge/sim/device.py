"""The simulated device: paced SAMPLE frames out, RESULT frames in and checked.

One thread (:meth:`Device.run`) multiplexes sending and receiving with
``select``. After every (re)connection the device handshakes: it sends
CONTROL RESET_STREAM for each stream every 50 ms until all are ACKed, resets
its own oracle streams, then streams samples. Fault injection per sample:
``drop`` (never sent), ``corrupt`` (1-3 bytes inside the frame replaced by other
non-zero bytes, so exactly one rejected chunk) and ``garbage`` (1-32 random
bytes before the frame). Scheduled unplugs close the transport for a while.

The oracle: with a model, each intact sample is also stepped through a local
``model.stream()`` (reset on the handshake, and on a sequence gap when
``reset_on_gap``); its RESULT must then carry exactly those float32 values.
"""

from __future__ import annotations

import select
import time
from collections import deque

import numpy as np

from firmware_bridge import protocol as p
from firmware_bridge.sim.signals import SIGNALS

_MAX_BACKLOG = 1 << 16


class Device:
    """A simulated sensor device on ``transport`` (see sim.transports).

    Parameters
    ----------
    transport : PtyTransport or TcpTransport
    rate : float
        Samples per second per stream; <= 0 sends as fast as the window allows.
    duration : float
        Seconds of streaming (after the first handshake).
    streams : int
        Stream ids 0..streams-1, sampled in turn.
    channels : int
        Values per SAMPLE (the model's input_size).
    model : edgernn.Model or None
        Oracle for the RESULT values; None checks only that each is answered.
    window : int
        Most samples awaiting a RESULT (all modes); beyond it sampling pauses.
    unplug_at : sequence of float
        Seconds (since streaming began) at which to unplug for ``unplug_for`` s.
    heartbeat_s : float
        Period of the HEARTBEAT frames sent while streaming (the host echoes them).
    drain_s : float
        After ``duration``, wait at most this long for outstanding RESULTs.
    """

    def __init__(self, transport, *, rate: float = 2000.0, duration: float = 10.0,
                 streams: int = 1, channels: int = 6, signal: str = "imu", model=None,
                 corrupt: float = 0.0, garbage: float = 0.0, drop: float = 0.0,
                 unplug_at=(), unplug_for: float = 0.3, reset_on_gap: bool = False,
                 window: int = 4096, seed: int = 0, drain_s: float = 3.0,
                 heartbeat_s: float = 1.0) -> None:
        self.t = transport
        self.rate, self.duration, self.streams = rate, duration, streams
        self.channels, self.model, self.window = channels, model, window
        self.corrupt, self.garbage, self.drop = corrupt, garbage, drop
        self.unplug_at, self.unplug_for = sorted(unplug_at), unplug_for
        self.reset_on_gap, self.drain_s, self.heartbeat_s = reset_on_gap, drain_s, heartbeat_s
        self.rng = np.random.default_rng(seed)
        rate_per_stream = rate if rate > 0 else 1000.0
        self.signal = SIGNALS[signal](rate_per_stream, channels, seed=seed)
        self.decoder = p.Decoder()
        self.oracle = [model.stream() if model is not None else None for _ in range(streams)]
        self.seq = [0] * streams
        self.last_intact: list[int | None] = [None] * streams
        self.expected: dict[tuple[int, int], tuple[bytes | None, int]] = {}
        self.corrupted: set[tuple[int, int]] = set()
        self.answered: set[tuple[int, int]] = set()
        self.latencies_ns: deque[int] = deque(maxlen=1 << 20)  # the latest million
        self.backlog = bytearray()
        self.c = dict.fromkeys(
            ("samples", "sent", "intact", "corrupted", "dropped", "garbage_bursts",
             "expected_rejects", "expected_gaps", "not_sent", "results", "matched",
             "mismatched", "answered_corrupted", "duplicates", "unexpected", "lost_at_unplug",
             "missing", "unplugs", "handshakes", "acks", "errors", "heartbeats", "set_rate"), 0)
        self.last_error: str | None = None
        self.on_listen = None  # called with the URL once listening
        self._matched_at_handshake = 0

    # -------------------------------------------------------------- sending
    def _sample(self, k: int, x: np.ndarray, now_ns: int) -> None:
        sid = k % self.streams
        seq = self.seq[sid]
        self.seq[sid] = (seq + 1) & 0xFFFF
        self.c["samples"] += 1
        key = (sid, seq)
        self.answered.discard(key)
        self.corrupted.discard(key)
        if len(self.backlog) > _MAX_BACKLOG:
            self.c["not_sent"] += 1
            return
        u = self.rng.random(3)
        if u[0] < self.drop:
            self.c["dropped"] += 1
            return
        wire = bytearray(p.encode_sample(sid, seq, x, timestamp=(now_ns // 1000) & 0xFFFFFFFF))
        if u[1] < self.garbage:
            junk = self.rng.integers(0, 256, int(self.rng.integers(1, 33)), np.uint8).tobytes()
            self.backlog += junk
            self.c["garbage_bursts"] += 1
            self.c["expected_rejects"] += sum(1 for piece in junk.split(b"\x00") if piece)
        if u[2] < self.corrupt:
            where = self.rng.choice(np.arange(1, len(wire) - 1), int(self.rng.integers(1, 4)),
                                    replace=False)
            for i in where:  # a different non-zero byte: the frame changes, stays one chunk
                wire[i] = (wire[i] - 1 + int(self.rng.integers(1, 255))) % 255 + 1
            self.corrupted.add(key)
            self.c["corrupted"] += 1
            self.c["expected_rejects"] += 1
        else:
            last = self.last_intact[sid]
            gap = last is not None and seq != (last + 1) & 0xFFFF
            self.c["expected_gaps"] += gap
            self.last_intact[sid] = seq
            y = None
            if self.oracle[sid] is not None:
                if gap and self.reset_on_gap:
                    self.oracle[sid].reset()
                y = self.oracle[sid].step(x).astype("<f4").tobytes()
            self.expected[key] = (y, now_ns)
            self.c["intact"] += 1
        self.backlog += wire
        self.c["sent"] += 1

    def _handshake_frames(self) -> bytes:
        return b"".join(p.encode_control(sid, self.seq[sid], p.Control.RESET_STREAM)
                        for sid in range(self.streams))

    # -------------------------------------------------------------- receiving
    def _receive(self, data: bytes, now_ns: int) -> None:
        for f in self.decoder.feed(data):
            key = (f.stream_id, f.seq)
            if f.kind == p.Kind.RESULT:
                self.c["results"] += 1
                hit = self.expected.pop(key, None)
                if hit is not None:
                    self.answered.add(key)
                    y, t_sent = hit
                    self.latencies_ns.append(now_ns - t_sent)
                    ok = y is None or f.payload == y
                    self.c["matched" if ok else "mismatched"] += 1
                elif key in self.corrupted:
                    self.c["answered_corrupted"] += 1
                elif key in self.answered:
                    self.c["duplicates"] += 1
                else:
                    self.c["unexpected"] += 1
            elif f.kind == p.Kind.ACK:
                self.c["acks"] += 1
                if f.payload[:1] == bytes((p.Control.RESET_STREAM,)) and self.waiting_acks:
                    self.waiting_acks.discard(f.stream_id)
                    if not self.waiting_acks:
                        self._begin_streaming(now_ns)
            elif f.kind == p.Kind.ERROR:
                self.c["errors"] += 1
                self.last_error = f.payload[1:].decode("utf-8", "replace")
            elif f.kind == p.Kind.HEARTBEAT:
                self.c["heartbeats"] += 1
            elif f.kind == p.Kind.CONTROL and f.payload[:1] == bytes((p.Control.SET_RATE,)):
                if len(f.payload) == 5:  # the host sets the sampling rate
                    self._set_rate(float(int.from_bytes(f.payload[1:], "little")), now_ns)
                self.backlog += p.encode_frame(f._replace(kind=p.Kind.ACK, payload=f.payload[:1]))

    def _set_rate(self, rate: float, now_ns: int) -> None:
        self.pace_ns, self.pace_k = now_ns, self.k  # pace from here at the new rate
        self.rate = rate
        self.c["set_rate"] += 1

    # -------------------------------------------------------------- states
    def _begin_streaming(self, now_ns: int) -> None:
        self.state = "streaming"
        self.c["handshakes"] += 1
        self._matched_at_handshake = self.c["matched"]
        for sid in range(self.streams):
            if self.oracle[sid] is not None:
                self.oracle[sid].reset()
            self.last_intact[sid] = None
        if self.start_ns is None:
            self.start_ns = self.pace_ns = now_ns

    def _unplug(self, now_ns: int) -> None:
        self.t.unplug()
        self.state = "unplugged"
        self.replug_ns = now_ns + int(self.unplug_for * 1e9)
        self.c["unplugs"] += 1
        self.c["lost_at_unplug"] += len(self.expected)
        self.expected.clear()
        self.backlog.clear()
        self.decoder.reset()

    def _transitions(self, now_ns: int) -> None:
        if self.state == "unplugged":
            if now_ns < self.replug_ns:
                return
            self.t.plug()
            self.state = "waiting"
        if self.state in ("handshake", "streaming") and not self.t.accept():
            self.state = "waiting"  # a TCP host went away by itself
            self.c["lost_at_unplug"] += len(self.expected)
            self.expected.clear()
        if self.state == "waiting" and self.t.accept():
            self.state, self.waiting_acks, self.next_hs_ns = "handshake", set(range(
                self.streams)), now_ns
            self.backlog.clear()
            self.decoder.reset()
        if self.state == "handshake" and now_ns >= self.next_hs_ns:
            if len(self.backlog) < 4096:
                self.backlog += self._handshake_frames()
            self.next_hs_ns = now_ns + 50_000_000
        if (self.state == "streaming" and self.unplug_at and self.start_ns is not None
                and now_ns - self.start_ns >= self.unplug_at[0] * 1e9):
            self.unplug_at.pop(0)
            self._unplug(now_ns)

    def _heartbeat(self, now_ns: int) -> None:
        if self.state == "streaming" and now_ns >= self.next_heartbeat_ns:
            self.backlog += p.encode_frame(p.Frame(p.Kind.HEARTBEAT, 0, self.heartbeats_sent
                                                   & 0xFFFF, (now_ns // 1000) & 0xFFFFFFFF,
                                                   p.Encoding.RAW, b""))
            self.heartbeats_sent += 1
            self.next_heartbeat_ns = now_ns + int(self.heartbeat_s * 1e9)

    def _due(self, now_ns: int) -> int:
        if self.rate <= 0:
            return self.window - len(self.expected) if self.state == "streaming" else 0
        taken = int((now_ns - self.pace_ns) * 1e-9 * self.rate * self.streams)
        return taken - (self.k - self.pace_k)

    def _generate(self, n: int, now_ns: int) -> None:
        n = min(n, self.window - len(self.expected))
        for _ in range(n):
            if self.block is None or self.k - self.block_at >= len(self.block):
                self.block_at = self.k
                self.block = self.signal.block(self.k // self.streams, 1024)
            self._sample(self.k, self.block[self.k - self.block_at], now_ns)
            self.k += 1

    def _skip(self, n: int) -> None:
        """Samples taken while no host listens: sequence numbers move on, nothing sent."""
        for _ in range(n):
            sid = self.k % self.streams
            self.seq[sid] = (self.seq[sid] + 1) & 0xFFFF
            self.c["samples"] += 1
            self.c["not_sent"] += 1
            self.k += 1

    def _io(self, timeout: float) -> None:
        fd = self.t.fileno()
        if fd is None:
            time.sleep(min(timeout, 0.005))
            return
        if self.backlog:
            n = self.t.write(bytes(self.backlog))
            del self.backlog[:n]
        want_w = [fd] if self.backlog else []
        r, _, _ = select.select([fd], want_w, [], timeout)
        if r:
            data = self.t.read()
            if data:
                self._receive(data, time.perf_counter_ns())

    # -------------------------------------------------------------- main loop
    def run(self, connect_timeout: float = 10.0) -> dict:
        """Plug, handshake, stream for ``duration`` s, drain; return :meth:`report`.

        Raises
        ------
        TimeoutError
            If no host completed the first handshake within ``connect_timeout`` s.
        """
        clock = time.perf_counter_ns
        self.state, self.start_ns, self.k, self.block, self.block_at = "waiting", None, 0, None, 0
        self.waiting_acks: set[int] = set()
        self.next_heartbeat_ns, self.heartbeats_sent = 0, 0
        self.pace_ns, self.pace_k = 0, 0
        self.t.plug()
        if self.on_listen is not None:
            self.on_listen(self.t.url)
        give_up = clock() + int(connect_timeout * 1e9)
        drain_until = None
        try:
            while True:
                now = clock()
                self._transitions(now)
                self._heartbeat(now)
                if self.start_ns is None:
                    if now > give_up:
                        raise TimeoutError(f"no host handshake within {connect_timeout} s "
                                           f"on {self.t.url}")
                    self._io(0.005)
                    continue
                if now - self.start_ns >= self.duration * 1e9:
                    drain_until = drain_until or now + int(self.drain_s * 1e9)
                    if not self.expected or now >= drain_until or self.state != "streaming":
                        break
                    self._io(0.005)
                    continue
                due = self._due(now)
                if due > 0:
                    if self.state == "streaming":
                        self._generate(due, now)
                    else:
                        self._skip(due)
                if self.rate > 0:
                    next_due = (self.k - self.pace_k + 1) / (self.rate * self.streams)
                    timeout = min(max(next_due - (clock() - self.pace_ns) * 1e-9, 0.0), 0.002)
                else:
                    timeout = 0.0005 if len(self.expected) >= self.window else 0.0
                self._io(timeout)
        finally:
            self.c["missing"] = len(self.expected)
            self.t.close()
        return self.report()

    def report(self) -> dict:
        """Counters, latency percentiles (µs, send -> RESULT) and an overall ``ok``."""
        lat = np.asarray(self.latencies_ns, np.float64) / 1000.0
        q = np.percentile(lat, [50, 90, 99, 99.9]) if lat.size else [float("nan")] * 4
        c = dict(self.c)
        c["ok"] = (c["mismatched"] == 0 and c["answered_corrupted"] == 0
                   and c["duplicates"] == 0 and c["unexpected"] == 0 and c["missing"] == 0
                   and c["matched"] > 0)
        elapsed = (time.perf_counter_ns() - self.start_ns) / 1e9 if self.start_ns else 0.0
        c["elapsed_s"] = round(elapsed, 3)
        c["matched_after_last_handshake"] = c["matched"] - self._matched_at_handshake
        c["latency_us"] = {"p50": q[0], "p90": q[1], "p99": q[2], "p99.9": q[3],
                           "max": float(lat.max()) if lat.size else float("nan")}
        c["last_error"] = self.last_error
        return c
