"""The serial source: a device speaking the firmware_bridge protocol on a pyserial URL."""

from __future__ import annotations

import struct
import time

from edgernn_serve.items import Reset, Sample
from edgernn_serve.sources.base import Source
from firmware_bridge import protocol as p

_INFO = struct.Struct("<BHHH")


def serial_schema(t) -> dict:
    return {"url": t.take("url", str, ..., lambda s: s != "" and "\0" not in s,
                          "a serial device or pyserial URL"),
            "baudrate": t.take("baudrate", int, 115200, lambda v: 0 < v < 1 << 31,
                               "a positive integer"),
            "wait": t.take("wait", bool, True)}


class SerialSource(Source):
    """A device speaking the firmware_bridge protocol on a pyserial URL.

    SAMPLE frames become Samples (F32 or I16 payloads); CONTROL RESET_STREAM is
    applied in order with the stream's samples and ACKed; PING, INFO and SET_RATE
    are answered at once; HEARTBEATs are echoed. ``sizes()`` gives the current
    model's (input_size, output_size) for INFO.
    """

    kind = "serial"
    seq_mod = 1 << 16

    def __init__(self, submit, url: str, baudrate: int, queue: int, wait: bool,
                 sizes) -> None:
        from firmware_bridge.link import Link

        super().__init__(submit)
        self.wait, self.sizes = wait, sizes
        self.link = Link(url, baudrate=baudrate, rx_capacity=queue, on_frames=self._on_frames)
        self.device_errors = 0
        self.last_device_error: str | None = None

    @classmethod
    def build(cls, o: dict, ctx) -> SerialSource:
        return cls(ctx.submit, o["url"], o["baudrate"], ctx.queue, o["wait"], ctx.sizes)

    def start(self) -> None:
        self.link.open(wait=self.wait)

    @property
    def healthy(self) -> bool:
        return True  # the link reconnects by itself; ``connected`` tells its state

    def close(self) -> None:
        self.link.close()

    @property
    def reconnects(self) -> int:
        return self.link.stats.reconnects

    @property
    def connected(self) -> bool:
        return self.link.connected

    def bad_frames(self) -> dict:
        out = dict(self.bad)
        for reason, n in self.link.decoder.rejected.items():
            out[reason] = out.get(reason, 0) + n
        return out

    def drops(self) -> dict:
        return {"serial_rx": self.link.stats.overflows}

    def reply(self, data: bytes) -> bool:
        return self.link.send(data)

    def _on_frames(self, frames) -> None:
        now = time.perf_counter_ns()
        items, replies = [], []
        for f in frames:
            if f.kind == p.Kind.SAMPLE:
                x = f.values
                if x is None:
                    self.bad["raw_sample"] += 1
                    replies.append(_error(f, p.ErrorCode.BAD_PAYLOAD,
                                          "SAMPLE payloads are F32 or I16, got RAW"))
                    continue
                items.append(Sample(f.stream_id, f.seq, f.timestamp, x, self, now))
            elif f.kind == p.Kind.CONTROL:
                reply = self._control(f)
                if isinstance(reply, Reset):
                    items.append(reply)
                else:
                    replies.append(reply)
            elif f.kind == p.Kind.HEARTBEAT:
                replies.append(p.encode_frame(f))
            elif f.kind == p.Kind.ERROR:
                self.device_errors += 1
                self.last_device_error = f.payload[1:].decode("utf-8", "replace")
            elif f.kind != p.Kind.ACK:
                self.bad["unexpected_kind"] += 1
        if replies:
            self.link.send(b"".join(replies))
        if items:
            self.submit(items)

    def _control(self, f):
        op = f.payload[0] if f.payload else None
        args = f.payload[1:]
        if op == p.Control.RESET_STREAM:
            return Reset(f.stream_id, self, _ack(f, op))
        if op == p.Control.PING:
            return _ack(f, op, args)
        if op == p.Control.INFO:
            n_in, n_out = self.sizes()
            return _ack(f, op, _INFO.pack(p.PROTOCOL_VERSION, n_in, n_out, p.MAX_PAYLOAD))
        if op == p.Control.SET_RATE and len(args) == 4:
            return _ack(f, op)
        self.bad["bad_control"] += 1
        return _error(f, p.ErrorCode.BAD_CONTROL, f"unknown CONTROL op {op!r} with "
                                                  f"{len(args)} argument bytes")


def _ack(f, op: int, data: bytes = b"") -> bytes:
    return p.encode_frame(p.Frame(p.Kind.ACK, f.stream_id, f.seq, f.timestamp, p.Encoding.RAW,
                                  bytes((op,)) + data))


def _error(f, code, text: str) -> bytes:
    msg = bytes((code,)) + text.encode()[:p.MAX_PAYLOAD - 1]
    return p.encode_frame(p.Frame(p.Kind.ERROR, f.stream_id, f.seq, f.timestamp, p.Encoding.RAW,
                                  msg))
