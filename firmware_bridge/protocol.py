"""Wire protocol of the serial bridge: pure functions between bytes and frames.

A frame on the wire is ``0x00 COBS(raw) 0x00``: COBS byte stuffing removes every
zero from ``raw`` so that 0x00 only ever delimits frames. The leading 0x00 makes
a frame decodable even when garbage arrived just before it; receivers ignore the
empty frame between two delimiters. ``raw`` is (all integers little-endian)::

    offset size field
    0      1    version       PROTOCOL_VERSION (1)
    1      1    kind          Kind: SAMPLE, RESULT, CONTROL, ACK, ERROR, HEARTBEAT
    2      1    stream_id     0..255
    3      1    encoding      Encoding: RAW bytes, F32 vector, I16 scaled vector
    4      2    seq           uint16, +1 per frame and stream, wraps
    6      4    timestamp     uint32 device microseconds, wraps
    10     n    payload       n <= MAX_PAYLOAD bytes
    10+n   4    crc           CRC-32 (zlib.crc32, CRC-32/ISO-HDLC) of bytes 0..10+n

Payloads: ``F32`` is ``float32[k]``; ``I16`` is ``float32 scale`` then ``int16[k]``
with ``value = q * scale``; ``RAW`` is opaque bytes (CONTROL: ``op`` byte then
arguments; ACK: the acknowledged ``op`` then data; ERROR: ``code`` byte then
UTF-8 text). docs/protocol.md gives the byte-by-byte description and examples;
firmware_bridge/c/ is the C implementation of the same format.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections import Counter
from typing import NamedTuple

import numpy as np

from edgernn.errors import FrameError

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBBBHI")
HEADER_SIZE = HEADER.size  # 10
CRC_SIZE = 4
MAX_PAYLOAD = 1024
MAX_RAW = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
#: Longest COBS encoding of a valid frame, without delimiters.
MAX_ENCODED = MAX_RAW + (MAX_RAW + 253) // 254
MAX_F32_VALUES = MAX_PAYLOAD // 4
MAX_I16_VALUES = (MAX_PAYLOAD - 4) // 2
DELIMITER = b"\x00"
_CRC = struct.Struct("<I")
_SCALE = struct.Struct("<f")


class Kind(enum.IntEnum):
    """Message kind (header byte 1)."""

    SAMPLE = 1
    RESULT = 2
    CONTROL = 3
    ACK = 4
    ERROR = 5
    HEARTBEAT = 6


class Encoding(enum.IntEnum):
    """Payload encoding (header byte 3)."""

    RAW = 0
    F32 = 1
    I16 = 2


class Control(enum.IntEnum):
    """Operation of a CONTROL frame (payload byte 0)."""

    RESET_STREAM = 1
    PING = 2
    INFO = 3
    SET_RATE = 4


class ErrorCode(enum.IntEnum):
    """Code of an ERROR frame (payload byte 0)."""

    BAD_SIZE = 1
    BAD_KIND = 2
    BAD_CONTROL = 3
    BAD_PAYLOAD = 4
    STEP_FAILED = 5


_KINDS = {k.value: k for k in Kind}
_ENCODINGS = {e.value: e for e in Encoding}

#: Reasons a Decoder rejects a chunk, the keys of ``Decoder.rejected``.
REJECT_REASONS = ("oversize", "framing", "short", "crc", "version", "kind", "encoding",
                  "payload")


class Frame(NamedTuple):
    """One decoded (or to-be-encoded) frame.

    Attributes
    ----------
    kind : Kind
    stream_id : int
        0..255.
    seq : int
        0..65535.
    timestamp : int
        Device time in microseconds, 0..2**32-1.
    encoding : Encoding
    payload : bytes
        Encoded payload, at most MAX_PAYLOAD bytes.
    version : int
        Protocol version the frame carried.
    """

    kind: Kind
    stream_id: int
    seq: int
    timestamp: int
    encoding: Encoding
    payload: bytes
    version: int = PROTOCOL_VERSION

    @property
    def values(self) -> np.ndarray | None:
        """float32[k] vector of an F32 or I16 payload (a fresh array), else None."""
        if self.encoding == Encoding.F32:
            return np.frombuffer(self.payload, "<f4").astype(np.float32)
        if self.encoding == Encoding.I16:
            (scale,) = _SCALE.unpack_from(self.payload)
            q = np.frombuffer(self.payload, "<i2", offset=4)
            with np.errstate(over="ignore"):  # a huge scale gives inf, as in C
                return (q.astype(np.float32) * np.float32(scale)).astype(np.float32)
        return None


# ---------------------------------------------------------------- COBS

def cobs_encode(raw: bytes) -> bytes:
    """COBS-encode ``raw``; the result holds no 0x00 (reference algorithm's output)."""
    out = []
    pieces = bytes(raw).split(b"\x00")
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        while len(piece) >= 254:
            out.append(b"\xff" + piece[:254])
            piece = piece[254:]
            if not piece and i == last:
                return b"".join(out)
        out.append(bytes((len(piece) + 1,)) + piece)
    return b"".join(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`.

    Raises
    ------
    ValueError
        If ``data`` holds a 0x00 or a block runs past its end.
    """
    if 0 in data:
        raise ValueError(f"0x00 at offset {bytes(data).index(0)} inside COBS data")
    return _cobs_decode_nonzero(data)


def _cobs_decode_nonzero(data: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        end = i + code
        if end > n:
            raise ValueError(f"bad COBS block: code {code} at offset {i} runs past {n}")
        out += data[i + 1:end]
        if code != 0xFF and end < n:
            out.append(0)
        i = end
    return bytes(out)


# ---------------------------------------------------------------- encoding

def encode_frame(frame: Frame) -> bytes:
    """Encode a frame to wire bytes ``0x00 COBS(header payload crc) 0x00``.

    Raises
    ------
    FrameError
        If a field is out of range or the payload exceeds MAX_PAYLOAD.
    """
    if len(frame.payload) > MAX_PAYLOAD:
        raise FrameError(f"payload must be at most {MAX_PAYLOAD} bytes, got "
                         f"{len(frame.payload)}")
    try:
        head = HEADER.pack(frame.version, frame.kind, frame.stream_id, frame.encoding,
                           frame.seq, frame.timestamp)
    except struct.error as e:
        raise FrameError(f"header field out of range (version, kind, stream_id, encoding "
                         f"0..255, seq 0..65535, timestamp 0..2**32-1): {frame!r}") from e
    return pack(head, frame.payload)


def pack(head: bytes, payload: bytes) -> bytes:
    """Wire bytes for a packed header and payload (no range checks)."""
    raw = head + payload
    return b"\x00" + cobs_encode(raw + _CRC.pack(zlib.crc32(raw))) + b"\x00"


def f32_payload(values) -> bytes:
    """Little-endian float32 bytes of a 1-D vector of at most MAX_F32_VALUES values."""
    v = np.asarray(values, dtype="<f4")
    if v.ndim != 1 or v.size > MAX_F32_VALUES:
        raise FrameError(f"values must be a 1-D vector of at most {MAX_F32_VALUES} "
                         f"float32, got shape {v.shape}")
    return v.tobytes()


def i16_payload(values, scale: float | None = None) -> bytes:
    """``float32 scale`` + int16 vector; default scale maps max |value| to 32767.

    A scale that is not a positive finite float32 (all zeros, denormal) becomes 1.
    """
    v = np.asarray(values, dtype=np.float32)
    if v.ndim != 1 or v.size > MAX_I16_VALUES:
        raise FrameError(f"values must be a 1-D vector of at most {MAX_I16_VALUES} "
                         f"values, got shape {v.shape}")
    if scale is None:
        peak = float(np.max(np.abs(v))) if v.size else 0.0
        scale = peak / 32767.0
    scale = np.float32(scale)  # what travels, so what the quantisation must use
    if not np.isfinite(scale) or scale <= 0:
        scale = np.float32(1.0)
    q = np.clip(np.rint(v / scale), -32768, 32767).astype("<i2")
    return _SCALE.pack(scale) + q.tobytes()


def encode_sample(stream_id: int, seq: int, values, timestamp: int = 0,
                  encoding: Encoding = Encoding.F32) -> bytes:
    """Wire bytes of a SAMPLE frame carrying ``values`` (float32[k]) as F32 or I16."""
    if encoding == Encoding.F32:
        payload = f32_payload(values)
    elif encoding == Encoding.I16:
        payload = i16_payload(values)
    else:
        raise FrameError(f"SAMPLE values are encoded F32 or I16, got {encoding!r}")
    return encode_frame(Frame(Kind.SAMPLE, stream_id, seq, timestamp, Encoding(encoding),
                              payload))


def encode_result(stream_id: int, seq: int, values, timestamp: int = 0) -> bytes:
    """Wire bytes of a RESULT frame carrying float32[k] ``values``."""
    return encode_frame(Frame(Kind.RESULT, stream_id, seq, timestamp, Encoding.F32,
                              f32_payload(values)))


def encode_control(stream_id: int, seq: int, op: Control, args: bytes = b"",
                   timestamp: int = 0) -> bytes:
    """Wire bytes of a CONTROL frame: payload ``op`` then ``args``."""
    return encode_frame(Frame(Kind.CONTROL, stream_id, seq, timestamp, Encoding.RAW,
                              bytes((op,)) + args))


# ---------------------------------------------------------------- decoding

def parse_raw(raw: bytes) -> Frame | str:
    """Frame of a de-stuffed chunk, or the reason (from REJECT_REASONS) it is invalid."""
    n = len(raw)
    if n < HEADER_SIZE + CRC_SIZE:
        return "short"
    body = raw[:-CRC_SIZE]
    if zlib.crc32(body) != _CRC.unpack_from(raw, n - CRC_SIZE)[0]:
        return "crc"
    version, kind, stream_id, encoding, seq, timestamp = HEADER.unpack_from(raw)
    if version != PROTOCOL_VERSION:
        return "version"
    if not 1 <= kind <= 6:
        return "kind"
    if encoding > 2:
        return "encoding"
    payload = body[HEADER_SIZE:]
    p = len(payload)
    if p > MAX_PAYLOAD or (encoding == 1 and p % 4) or (encoding == 2 and (p < 4 or p % 2)):
        return "payload"
    return Frame(_KINDS[kind], stream_id, seq, timestamp, _ENCODINGS[encoding], payload, version)


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame (delimiters optional).

    Raises
    ------
    FrameError
        Naming the reason the bytes are not one valid frame.
    """
    chunk = bytes(data).strip(b"\x00")
    if 0 in chunk:
        raise FrameError(f"expected one frame, got several chunks: {bytes(data)!r}")
    try:
        parsed = parse_raw(cobs_decode(chunk))
    except ValueError as e:
        raise FrameError(f"bad framing: {e}") from None
    if isinstance(parsed, str):
        raise FrameError(f"invalid frame ({parsed}): {bytes(data)!r}")
    return parsed


class Decoder:
    """Streaming decoder: bytes in, complete valid frames out.

    ``feed`` never raises on malformed input: every rejected chunk is counted in
    ``rejected[reason]`` and decoding resumes after the next 0x00. Memory is
    bounded: a chunk longer than MAX_ENCODED is dropped (reason "oversize")
    and bytes are discarded until the next delimiter.

    Attributes
    ----------
    rejected : collections.Counter
        Rejected chunks by reason (keys from REJECT_REASONS).
    frames : int
        Valid frames returned so far.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False
        self.rejected: Counter = Counter()
        self.frames = 0

    def reset(self) -> None:
        """Drop a partially received chunk (e.g. after a reconnect); counts stay."""
        self._buf.clear()
        self._discarding = False

    @property
    def rejected_total(self) -> int:
        """Total of rejected chunks, all reasons."""
        return sum(self.rejected.values())

    def feed(self, data: bytes) -> list[Frame]:
        """Consume bytes; return the frames completed by them, in order."""
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        frames: list[Frame] = []
        buf = self._buf
        start = 0
        while True:
            end = data.find(0, start)
            if end < 0:
                tail = len(data) - start
                if tail and not self._discarding:
                    if len(buf) + tail > MAX_ENCODED:
                        self._reject("oversize")
                        buf.clear()
                        self._discarding = True
                    else:
                        buf += data[start:]
                return frames
            if self._discarding:
                self._discarding = False
            elif buf:
                if len(buf) + end - start > MAX_ENCODED:
                    self._reject("oversize")
                else:
                    buf += data[start:end]
                    self._chunk(bytes(buf), frames)
                buf.clear()
            elif end > start:
                if end - start > MAX_ENCODED:
                    self._reject("oversize")
                else:
                    self._chunk(data[start:end], frames)
            start = end + 1

    def _chunk(self, chunk: bytes, frames: list[Frame]) -> None:
        try:
            raw = _cobs_decode_nonzero(chunk)
        except ValueError:
            self._reject("framing")
            return
        parsed = parse_raw(raw)
        if isinstance(parsed, str):
            self._reject(parsed)
        else:
            self.frames += 1
            frames.append(parsed)

    def _reject(self, reason: str) -> None:
        self.rejected[reason] += 1
