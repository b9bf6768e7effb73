"""RESULT frames back to the device, over the serial source's link or a port of its own."""

from __future__ import annotations

from edgernn_serve.sinks.base import Sink
from firmware_bridge import protocol as p


def serial_schema(t, source) -> dict:
    if source.options.get("denoise", False):
        raise t.fail("type", "'serial' sinks take model outputs, a denoising source gives "
                             "audio (use 'wav', 'audio' or a JSON sink)")
    o = {"url": t.take("url", str, None, lambda s: s != "" and "\0" not in s,
                       "a serial device or URL"),
         "baudrate": t.take("baudrate", int, 115200, lambda v: 0 < v < 1 << 31,
                            "a positive integer")}
    if o["url"] is None and source.kind != "serial":
        raise t.fail("type", f"'serial' without a url answers the serial source; this "
                             f"source is {source.kind!r}")
    return o


class SerialSink(Sink):
    """RESULT frames (ERROR frames for unanswerable samples) back to the device.

    Without ``url`` each result goes back through the serial source it came from
    (one write per wave); with ``url`` through a port of its own. Stream keys
    must be serial stream ids (0..255); the sequence number is the sample's (or
    the stream's step count mod 65536).
    """

    type = "serial"

    @classmethod
    def build(cls, conf, ctx) -> SerialSink:
        return cls(conf.name, ctx.device, conf.options["url"], conf.options["baudrate"])

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
