"""Tests of firmware_bridge.protocol: COBS, CRC, frames, the streaming Decoder."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgernn.errors import FrameError
from firmware_bridge import protocol as p

# Examples of the COBS reference (Cheshire & Baker 1999; Wikipedia's table).
COBS_EXAMPLES = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize("raw, encoded", COBS_EXAMPLES)
def test_cobs_matches_reference_examples(raw, encoded):
    assert p.cobs_encode(raw) == encoded
    assert p.cobs_decode(encoded) == raw


def test_crc_is_crc32_iso_hdlc_check_value():
    # The catalogue check value of CRC-32/ISO-HDLC over "123456789".
    assert zlib.crc32(b"123456789") == 0xCBF43926


def test_encode_sample_layout_byte_by_byte():
    wire = p.encode_sample(3, 0x0102, np.array([1.0, -2.0], np.float32), timestamp=0x0A0B0C0D)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    raw = p.cobs_decode(wire[1:-1])
    head = bytes([1, p.Kind.SAMPLE, 3, p.Encoding.F32, 0x02, 0x01, 0x0D, 0x0C, 0x0B, 0x0A])
    body = head + struct.pack("<ff", 1.0, -2.0)
    assert raw == body + struct.pack("<I", zlib.crc32(body))


frames_st = st.one_of(
    st.builds(lambda k, e, *a: (k, e, *a), st.sampled_from(list(p.Kind)),
              st.just(p.Encoding.F32), st.integers(0, 255), st.integers(0, 65535),
              st.integers(0, 2**32 - 1),
              st.lists(st.binary(min_size=4, max_size=4), max_size=p.MAX_F32_VALUES)
              .map(b"".join)),
    st.builds(lambda k, e, *a: (k, e, *a), st.sampled_from(list(p.Kind)),
              st.just(p.Encoding.I16), st.integers(0, 255), st.integers(0, 65535),
              st.integers(0, 2**32 - 1),
              st.lists(st.binary(min_size=2, max_size=2), min_size=2,
                       max_size=p.MAX_PAYLOAD // 2).map(b"".join)),
    st.builds(lambda k, e, *a: (k, e, *a), st.sampled_from(list(p.Kind)),
              st.just(p.Encoding.RAW), st.integers(0, 255), st.integers(0, 65535),
              st.integers(0, 2**32 - 1), st.binary(max_size=p.MAX_PAYLOAD)),
).map(lambda t: p.Frame(t[0], t[2], t[3], t[4], t[1], t[5]))


def _feed_in_pieces(decoder, data, cuts):
    out, start = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        out += decoder.feed(data[start:cut])
        start = max(start, cut)
    return out


@settings(max_examples=300, deadline=None)
@given(frame=frames_st, cuts=st.lists(st.integers(0, 5000), max_size=6))
def test_encode_decode_is_identity_for_valid_frames(frame, cuts):
    wire = p.encode_frame(frame)
    assert len(wire) <= p.MAX_ENCODED + 2
    assert p.decode_frame(wire) == frame
    d = p.Decoder()
    assert _feed_in_pieces(d, wire, cuts) == [frame]
    assert d.rejected_total == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(st.tuples(frames_st, st.binary(max_size=40), st.booleans(),
                             st.integers(0, 10**6), st.binary(min_size=1, max_size=20)),
                   min_size=1, max_size=8),
    trailing=st.binary(max_size=40),
    cuts=st.lists(st.integers(0, 10**5), max_size=10),
)
def test_decoder_survives_garbage_and_recovers_every_intact_frame(items, trailing, cuts):
    stream, intact, corrupted = b"", [], 0
    for frame, garbage_before, corrupt, where, inside in items:
        wire = p.encode_frame(frame)
        if corrupt:
            # Insert garbage strictly inside the stuffed body (not at a delimiter).
            at = 2 + where % (len(wire) - 3) if len(wire) > 3 else 1
            wire = wire[:at] + inside + wire[at:]
            corrupted += 1
        else:
            intact.append(frame)
        stream += garbage_before + wire
    stream += trailing
    d = p.Decoder()
    assert _feed_in_pieces(d, stream, cuts) == intact
    assert d.rejected_total >= corrupted
    assert len(d._buf) <= p.MAX_ENCODED


def test_decoder_rejects_oversize_run_and_stays_bounded():
    d = p.Decoder()
    frame = p.encode_sample(1, 2, [1.0])
    assert d.feed(b"\x07" * (3 * p.MAX_ENCODED)) == []
    assert len(d._buf) == 0 and d.rejected["oversize"] == 1
    assert d.feed(b"\x07" * 10 + frame)[0].seq == 2
    assert d.rejected["oversize"] == 1


def test_decoder_rejects_oversize_chunk_in_one_piece():
    d = p.Decoder()
    out = d.feed(b"\x00" + b"\x05" * (p.MAX_ENCODED + 1) + p.encode_sample(1, 9, [0.5]))
    assert [f.seq for f in out] == [9] and d.rejected["oversize"] == 1


def _wire_of_raw(body: bytes, fix_crc: bool = True) -> bytes:
    crc = zlib.crc32(body) if fix_crc else zlib.crc32(body) ^ 1
    return b"\x00" + p.cobs_encode(body + struct.pack("<I", crc)) + b"\x00"


@pytest.mark.parametrize("body, fix_crc, reason", [
    (bytes([1, 1, 0, 1, 0, 0, 0, 0, 0, 0]) + b"\x00" * 4, False, "crc"),
    (bytes([2, 1, 0, 1, 0, 0, 0, 0, 0, 0]), True, "version"),
    (bytes([1, 7, 0, 1, 0, 0, 0, 0, 0, 0]), True, "kind"),
    (bytes([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), True, "kind"),
    (bytes([1, 1, 0, 3, 0, 0, 0, 0, 0, 0]), True, "encoding"),
    (bytes([1, 1, 0, 1, 0, 0, 0, 0, 0, 0]) + b"\x01\x02\x03", True, "payload"),
    (bytes([1, 1, 0, 2, 0, 0, 0, 0, 0, 0]) + b"\x01\x02", True, "payload"),
    (bytes([1, 1, 0, 2, 0, 0, 0, 0, 0, 0]) + b"\x01\x02\x03\x04\x05", True, "payload"),
    (bytes([1, 1, 0]), True, "short"),
])
def test_decoder_counts_rejections_by_reason(body, fix_crc, reason):
    good = p.encode_sample(4, 5, [2.0])
    d = p.Decoder()
    out = d.feed(good + _wire_of_raw(body, fix_crc) + good)
    assert [f.seq for f in out] == [5, 5]
    assert dict(d.rejected) == {reason: 1}
    with pytest.raises(FrameError, match=reason):
        p.decode_frame(_wire_of_raw(body, fix_crc))


def test_decoder_counts_bad_framing():
    d = p.Decoder()
    assert d.feed(b"\x00\x09\x01\x02\x00") == []
    assert dict(d.rejected) == {"framing": 1}


def test_decoder_single_byte_flip_is_always_rejected():
    wire = p.encode_sample(1, 1, np.linspace(-1, 1, 16, dtype=np.float32))
    for i in range(1, len(wire) - 1):
        for bit in range(8):
            bad = bytearray(wire)
            bad[i] ^= 1 << bit
            d = p.Decoder()
            assert d.feed(bytes(bad)) == [], (i, bit)
            assert d.rejected_total >= 1


def test_values_f32_and_i16_roundtrip():
    v = np.array([0.5, -3.25, 1e-3, 7.0], np.float32)
    f = p.decode_frame(p.encode_sample(0, 0, v))
    assert f.values.dtype == np.float32 and np.array_equal(f.values, v)
    g = p.decode_frame(p.encode_sample(0, 0, v, encoding=p.Encoding.I16))
    assert g.encoding == p.Encoding.I16
    np.testing.assert_allclose(g.values, v, atol=7.0 / 32767)
    assert p.decode_frame(p.encode_control(0, 0, p.Control.PING)).values is None
    zeros = p.decode_frame(p.encode_sample(0, 0, np.zeros(3), encoding=p.Encoding.I16))
    assert zeros.values.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("call, match", [
    (lambda: p.encode_sample(0, 0, np.zeros((2, 3))), r"1-D vector .* got shape \(2, 3\)"),
    (lambda: p.encode_sample(0, 0, np.zeros(p.MAX_F32_VALUES + 1)), "at most 256"),
    (lambda: p.encode_sample(256, 0, [1.0]), "stream_id"),
    (lambda: p.encode_sample(0, 65536, [1.0]), "seq 0..65535"),
    (lambda: p.encode_frame(p.Frame(p.Kind.ACK, 0, 0, 0, p.Encoding.RAW,
                                    bytes(p.MAX_PAYLOAD + 1))), "at most 1024 bytes, got 1025"),
    (lambda: p.decode_frame(p.encode_sample(0, 0, [1.0]) * 2), "several chunks"),
    (lambda: p.encode_sample(0, 0, [1.0], encoding=p.Encoding.RAW),
     "encoded F32 or I16, got <Encoding.RAW: 0>"),
])
def test_encoder_errors_name_expected_and_received(call, match):
    with pytest.raises(FrameError, match=match):
        call()


def test_docs_worked_examples_decode_and_reencode():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()
    wires = [bytes.fromhex(line[len("wire:"):]) for line in doc.splitlines()
             if line.startswith("wire:")]
    assert len(wires) == 5
    frames = [p.decode_frame(w) for w in wires]
    assert [p.encode_frame(f) for f in frames] == wires
    assert frames[0].values.tolist() == [1.0, -2.0] and frames[0].seq == 0x0102
    assert frames[1].values.tolist() == [0.25, 0.5, -1.0, 4.0]
    assert frames[3].payload == b"\x02hi" and frames[3].kind == p.Kind.ACK
    np.testing.assert_allclose(frames[4].values, [0.5, -1.0, 0.25, 0.0], atol=1e-4)
