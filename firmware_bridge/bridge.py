"""Serve an edgernn model to a device over a Link: SAMPLE in, RESULT out.

One :class:`edgernn.Stream` per stream id (created on its first frame). Every
valid SAMPLE frame is stepped through the model (``step(x, out=buf)``) and
answered by a RESULT with the same stream id, sequence number and device
timestamp. Replies to the frames of one read are written with a single write.

Per stream the next expected sequence number is ``(last + 1) % 65536``; any
other number counts one gap and, with ``reset_on_gap``, resets the stream's
state before stepping. CONTROL frames: RESET_STREAM (reset the state and the
sequence tracking), PING (echo its arguments), INFO (protocol version, input
size, output size, max payload as ``<BHHH``), SET_RATE (record the device's
rate, ``<I`` Hz); each is answered by an ACK carrying the op and the CONTROL's
sequence number, or by an ERROR. HEARTBEAT frames are echoed.
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass

import numpy as np

from edgernn.errors import EdgeRNNError
from firmware_bridge import protocol as p
from firmware_bridge.link import Link

_INFO = struct.Struct("<BHHH")
_RATE = struct.Struct("<I")
_LATENCY_WINDOW = 1 << 16


@dataclass
class _Slot:
    stream: object  # edgernn.Stream
    x: np.ndarray    # float32[input_size], the step's input, written in place
    out: np.ndarray  # float32[output_size], the step's output, written in place
    last_seq: int | None = None
    rate_hz: int | None = None


class Bridge:
    """Step every SAMPLE arriving on ``link`` through ``model``; answer RESULTs.

    Parameters
    ----------
    link : Link
        An opened (or to be opened by the caller) link.
    model : edgernn.Model
        Its ``input_size`` is the number of values a SAMPLE must carry.
    reset_on_gap : bool
        Reset a stream's state when its sequence numbers skip.
    inline : bool
        Step frames in the link's reader thread (``Link.on_frames``) as they are
        read; otherwise :meth:`serve` takes them from the link's queue. Inline saves
        a thread hand-off per read, which under shared CPUs is most of the latency.
        Create the Bridge before opening the link.
    """

    def __init__(self, link: Link, model, *, reset_on_gap: bool = False,
                 inline: bool = True) -> None:
        self.link = link
        self.inline = inline
        if inline:
            link.on_frames = self._handle
        self.model = model
        self.reset_on_gap = reset_on_gap
        self.slots: dict[int, _Slot] = {}
        self.counts = dict.fromkeys(
            ("samples", "results", "frames_out", "gaps", "gap_resets", "bad_samples", "step_errors",
             "controls", "acks_in", "errors_in", "errors_out", "heartbeats", "unexpected"), 0)
        self.last_device_error: str | None = None
        self._control_seq = 0
        self._lat = np.zeros(_LATENCY_WINDOW, np.int64)
        self._lat_n = 0
        self._started = time.monotonic()

    # -------------------------------------------------------------- frames
    def _slot(self, stream_id: int) -> _Slot:
        slot = self.slots.get(stream_id)
        if slot is None:
            slot = _Slot(self.model.stream(), np.zeros(self.model.input_size, np.float32),
                         np.zeros(self.model.output_size, np.float32))
            self.slots[stream_id] = slot
        return slot

    def process(self, frames: list[p.Frame]) -> bytes:
        """Handle frames in order; return the concatenated wire bytes of the replies."""
        out: list[bytes] = []
        counts = self.counts
        for f in frames:
            kind = f.kind
            if kind == p.Kind.SAMPLE:
                out.append(self._sample(f))
            elif kind == p.Kind.CONTROL:
                counts["controls"] += 1
                out.append(self._control(f))
            elif kind == p.Kind.HEARTBEAT:
                counts["heartbeats"] += 1
                out.append(p.encode_frame(f))
            elif kind == p.Kind.ACK:
                counts["acks_in"] += 1
            elif kind == p.Kind.ERROR:
                counts["errors_in"] += 1
                self.last_device_error = f.payload[1:].decode("utf-8", "replace")
            else:
                counts["unexpected"] += 1
        counts["frames_out"] += len(out)
        return b"".join(out)

    def _sample(self, f: p.Frame) -> bytes:
        counts = self.counts
        counts["samples"] += 1
        slot = self._slot(f.stream_id)
        x = np.frombuffer(f.payload, "<f4") if f.encoding == p.Encoding.F32 else f.values
        n_in = self.model.input_size
        if x is None or x.shape[0] != n_in:
            counts["bad_samples"] += 1
            got = "a RAW payload" if x is None else f"{x.shape[0]} values"
            return self._error(f, p.ErrorCode.BAD_SIZE,
                               f"stream {f.stream_id}: expected {n_in} values, got {got}")
        last = slot.last_seq
        if last is not None and f.seq != (last + 1) & 0xFFFF:
            counts["gaps"] += 1
            if self.reset_on_gap:
                slot.stream.reset()
                counts["gap_resets"] += 1
        slot.last_seq = f.seq
        slot.x[:] = x  # native order, aligned, writable, whatever the payload was
        t0 = time.perf_counter_ns()
        try:
            y = slot.stream.step(slot.x, out=slot.out)
        except EdgeRNNError as e:
            counts["step_errors"] += 1
            return self._error(f, p.ErrorCode.STEP_FAILED,
                               f"stream {f.stream_id}: step failed: {e}")
        self._lat[self._lat_n & (_LATENCY_WINDOW - 1)] = time.perf_counter_ns() - t0
        self._lat_n += 1
        counts["results"] += 1
        head = p.HEADER.pack(p.PROTOCOL_VERSION, p.Kind.RESULT, f.stream_id, p.Encoding.F32,
                             f.seq, f.timestamp)
        return p.pack(head, y.astype("<f4", copy=False).tobytes())

    def _control(self, f: p.Frame) -> bytes:
        op = f.payload[0] if f.payload else None
        args = f.payload[1:]
        if op == p.Control.RESET_STREAM:
            slot = self._slot(f.stream_id)
            slot.stream.reset()
            slot.last_seq = None
            return self._ack(f, op)
        if op == p.Control.PING:
            return self._ack(f, op, args)
        if op == p.Control.INFO:
            return self._ack(f, op, _INFO.pack(p.PROTOCOL_VERSION, self.model.input_size,
                                               self.model.output_size, p.MAX_PAYLOAD))
        if op == p.Control.SET_RATE and len(args) == _RATE.size:
            self._slot(f.stream_id).rate_hz = _RATE.unpack(args)[0]
            return self._ack(f, op)
        known = ", ".join(f"{c.value}={c.name}" for c in p.Control)
        return self._error(f, p.ErrorCode.BAD_CONTROL,
                           f"unknown CONTROL op {op!r} with {len(args)} argument bytes "
                           f"(expected one of {known}; SET_RATE takes 4 bytes)")

    @staticmethod
    def _ack(f: p.Frame, op: int, data: bytes = b"") -> bytes:
        return p.encode_frame(p.Frame(p.Kind.ACK, f.stream_id, f.seq, f.timestamp,
                                      p.Encoding.RAW, bytes((op,)) + data))

    def _error(self, f: p.Frame, code: p.ErrorCode, text: str) -> bytes:
        self.counts["errors_out"] += 1
        msg = bytes((code,)) + text.encode()[: p.MAX_PAYLOAD - 1]
        return p.encode_frame(p.Frame(p.Kind.ERROR, f.stream_id, f.seq, f.timestamp,
                                      p.Encoding.RAW, msg))

    def send_control(self, stream_id: int, op: p.Control, args: bytes = b"") -> bool:
        """Send a CONTROL frame to the device (e.g. SET_RATE ``<I`` Hz); False if dropped.

        Its ACK or ERROR is counted in ``acks_in`` / ``errors_in``.
        """
        self._control_seq = (self._control_seq + 1) & 0xFFFF
        return self.link.send(p.encode_control(stream_id, self._control_seq, op, args))

    # -------------------------------------------------------------- running
    def _handle(self, frames: list[p.Frame]) -> None:
        if self.inline and len(self.link.queue):  # queued before on_frames was set
            frames = self.link.queue.get_many(0) + frames
        out = self.process(frames)
        if out:
            self.link.send(out)

    def poll(self, timeout: float = 0.05) -> int:
        """Queue mode: answer what arrived, waiting up to ``timeout`` s; frames handled."""
        frames = self.link.receive(timeout)
        if frames:
            self._handle(frames)
        return len(frames)

    def serve(self, stop: threading.Event | None = None, duration: float | None = None,
              on_tick=None, tick_s: float = 1.0) -> dict:
        """Run until ``stop`` is set or ``duration`` s passed; return :meth:`stats`.

        ``on_tick(stats)`` is called about every ``tick_s`` seconds.
        """
        stop = stop or threading.Event()
        now = time.monotonic()
        deadline = now + duration if duration is not None else float("inf")
        next_tick = now + tick_s
        while not stop.is_set() and now < deadline:
            if self.inline:
                stop.wait(min(0.05, deadline - now))
            else:
                self.poll(0.05)
            now = time.monotonic()
            if on_tick is not None and now >= next_tick:
                on_tick(self.stats())
                next_tick = now + tick_s
        return self.stats()

    def stats(self) -> dict:
        """Counters of the bridge, its link and decoder, and step latency (µs)."""
        d = self.link.decoder
        rejected = dict(d.rejected)
        link = self.link.stats
        lat = self._lat[: min(self._lat_n, _LATENCY_WINDOW)] / 1000.0
        pct = (np.percentile(lat, [50, 90, 99, 99.9]) if lat.size else [float("nan")] * 4)
        return {
            "uptime_s": round(time.monotonic() - self._started, 3),
            "frames_in": d.frames,
            **self.counts,
            "bad_crc": rejected.get("crc", 0),
            "bad_framing": d.rejected_total - rejected.get("crc", 0),
            "rejected": rejected,
            "overflows": link.overflows,
            "reconnects": link.reconnects,
            "disconnects": link.disconnects,
            "tx_dropped": link.tx_dropped,
            "callback_errors": link.callback_errors,
            "last_error": self.link.last_error,
            "streams": len(self.slots),
            "step_us": {"p50": pct[0], "p90": pct[1], "p99": pct[2], "p99.9": pct[3],
                        "max": float(lat.max()) if lat.size else float("nan"),
                        "n": int(self._lat_n)},
        }
