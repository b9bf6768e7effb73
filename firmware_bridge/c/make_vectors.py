"""Regenerate vectors.txt, the frames shared by the Python and C codec tests.

Run: python -m firmware_bridge.c.make_vectors > firmware_bridge/c/vectors.txt
Each line: version kind stream_id seq timestamp encoding payload_hex|- wire_hex
"""

from __future__ import annotations

import struct

import numpy as np

from firmware_bridge import protocol as p


def cases():
    yield p.Frame(p.Kind.SAMPLE, 3, 0x0102, 0x0A0B0C0D, p.Encoding.F32,
                  struct.pack("<ff", 1.0, -2.0))
    yield p.Frame(p.Kind.RESULT, 0, 0, 0, p.Encoding.F32, b"")
    yield p.Frame(p.Kind.HEARTBEAT, 255, 65535, 2**32 - 1, p.Encoding.RAW, b"")
    yield p.Frame(p.Kind.CONTROL, 1, 7, 1000, p.Encoding.RAW,
                  bytes([p.Control.SET_RATE]) + struct.pack("<I", 2000))
    yield p.Frame(p.Kind.ACK, 1, 7, 1001, p.Encoding.RAW, bytes([p.Control.PING]) + b"hi")
    yield p.Frame(p.Kind.ERROR, 2, 9, 5, p.Encoding.RAW,
                  bytes([p.ErrorCode.BAD_SIZE]) + b"expected 16 values, got 3")
    yield p.Frame(p.Kind.SAMPLE, 4, 300, 123456, p.Encoding.I16,
                  p.i16_payload(np.array([0.5, -1.0, 0.25, 0.0], np.float32)))
    yield p.Frame(p.Kind.SAMPLE, 5, 1, 2, p.Encoding.RAW, bytes(range(1, 256)) * 2)
    yield p.Frame(p.Kind.SAMPLE, 6, 2, 3, p.Encoding.F32, bytes(p.MAX_PAYLOAD))
    rng = np.random.default_rng(4)
    yield p.Frame(p.Kind.SAMPLE, 0, 42, 42, p.Encoding.F32,
                  rng.standard_normal(16).astype("<f4").tobytes())


def main() -> None:
    for f in cases():
        print(f.version, int(f.kind), f.stream_id, f.seq, f.timestamp, int(f.encoding),
              f.payload.hex() or "-", p.encode_frame(f).hex())


if __name__ == "__main__":
    main()
