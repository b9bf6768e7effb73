"""Cross-check the C codec (firmware_bridge/c) against the Python one, both ways."""

from __future__ import annotations

import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge import protocol as p
from tests.helpers import require
from tests.test_protocol import COBS_EXAMPLES

C_DIR = Path(p.__file__).parent / "c"
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
REASONS_IN_C_ORDER = p.REJECT_REASONS


def _build(tmp_path_factory, *defines):
    require(CC is not None, "a C compiler (cc, gcc or clang): the C codec is cross-checked")
    exe = tmp_path_factory.mktemp("ernl") / "ernl_tool"
    cmd = [CC, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror", "-O2",
           *defines, "-o", str(exe), str(C_DIR / "ernl.c"), str(C_DIR / "ernl_tool.c")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr}"
    return exe


@pytest.fixture(scope="module")
def tool(tmp_path_factory):
    exe = _build(tmp_path_factory)

    def run(*args, data=b"", check=True):
        out = subprocess.run([str(exe), *args], input=data, capture_output=True, timeout=20)
        if check:
            assert out.returncode == 0, out.stderr.decode()
        return out

    return run


def _vectors():
    for line in (C_DIR / "vectors.txt").read_text().splitlines():
        v, k, s, q, t, e, payload, wire = line.split()
        frame = p.Frame(p.Kind(int(k)), int(s), int(q), int(t), p.Encoding(int(e)),
                        b"" if payload == "-" else bytes.fromhex(payload), int(v))
        yield frame, bytes.fromhex(wire)


def _encode_lines(frames) -> bytes:
    return "".join(f"{f.version} {int(f.kind)} {f.stream_id} {f.seq} {f.timestamp} "
                   f"{int(f.encoding)} {f.payload.hex() or '-'}\n" for f in frames).encode()


def _parse_decode(text: bytes):
    frames, values, rejected, count = [], [], None, None
    for line in text.decode().splitlines():
        tag, *rest = line.split()
        if tag == "F":
            k, s, q, t, e, payload, *vals = rest
            frames.append(p.Frame(p.Kind(int(k)), int(s), int(q), int(t), p.Encoding(int(e)),
                                  b"" if payload == "-" else bytes.fromhex(payload)))
            values.append(np.array([float.fromhex(x) for x in vals], np.float32))
        elif tag == "R":
            rejected = {r: int(n) for r, n in zip(REASONS_IN_C_ORDER, rest, strict=True) if int(n)}
        elif tag == "N":
            count = int(rest[0])
    assert count == len(frames)
    return frames, values, rejected


def _random_frames(rng, n):
    for _ in range(n):
        enc = p.Encoding(int(rng.integers(0, 3)))
        size = int(rng.integers(0, p.MAX_PAYLOAD + 1))
        if enc == p.Encoding.F32:
            size -= size % 4
        elif enc == p.Encoding.I16:
            size = max(4, size - size % 2)
        payload = rng.integers(0, 256, size, dtype=np.uint8)
        if rng.random() < 0.3:  # runs with and without zeros stress COBS blocks
            payload[rng.integers(0, size + 1):] = 0 if rng.random() < 0.5 else 7
        yield p.Frame(p.Kind(int(rng.integers(1, 7))), int(rng.integers(0, 256)),
                      int(rng.integers(0, 65536)), int(rng.integers(0, 2**32)), enc,
                      payload.tobytes())


def test_c_crc_matches_zlib_and_check_value(tool):
    assert tool("crc", data=b"123456789").stdout == b"cbf43926\n"
    rng = np.random.default_rng(0)
    for n in (0, 1, 3, 255, 4096):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert int(tool("crc", data=data).stdout, 16) == zlib.crc32(data)


@pytest.mark.parametrize("raw, encoded", COBS_EXAMPLES)
def test_c_cobs_matches_reference_examples(tool, raw, encoded):
    assert tool("cobs-encode", data=raw).stdout == encoded
    assert tool("cobs-decode", data=encoded).stdout == raw


def test_c_cobs_decode_rejects_invalid(tool):
    for bad in (b"\x05\x01\x02", b"\x02\x00", b"\x00"):
        assert tool("cobs-decode", data=bad, check=False).returncode == 1


def test_c_cobs_equals_python_on_random_runs(tool):
    rng = np.random.default_rng(1)
    for n in (0, 253, 254, 255, 508, 509, 1000):
        for zero_p in (0.0, 0.01, 0.5):
            data = rng.integers(1, 256, n, dtype=np.uint8)
            data[rng.random(n) < zero_p] = 0
            raw = data.tobytes()
            assert tool("cobs-encode", data=raw).stdout == p.cobs_encode(raw), (n, zero_p)


def test_shared_vectors_encode_identically_in_c_and_python(tool):
    frames, wires = zip(*_vectors(), strict=True)
    assert [p.encode_frame(f) for f in frames] == list(wires)
    assert tool("encode", data=_encode_lines(frames)).stdout == b"".join(wires)
    decoded, _, rejected = _parse_decode(tool("decode", data=b"".join(wires)).stdout)
    assert decoded == list(frames) and rejected == {}
    assert p.Decoder().feed(b"".join(wires)) == list(frames)


def test_random_frames_python_to_c_with_garbage_same_frames_and_rejections(tool):
    rng = np.random.default_rng(2)
    stream = bytearray()
    frames = list(_random_frames(rng, 300))
    for f in frames:
        stream += rng.integers(0, 256, int(rng.integers(0, 12)), dtype=np.uint8).tobytes()
        wire = bytearray(p.encode_frame(f))
        if rng.random() < 0.1:
            wire[int(rng.integers(1, len(wire) - 1))] ^= 1 << int(rng.integers(0, 8))
        stream += wire
    stream += b"\x11" * (p.MAX_ENCODED + 5) + p.encode_frame(frames[0])  # one oversize chunk
    py = p.Decoder()
    expected = py.feed(bytes(stream))
    assert 250 < len(expected) < 300 and py.rejected["oversize"] == 1
    decoded, values, rejected = _parse_decode(tool("decode", data=bytes(stream)).stdout)
    assert decoded == expected
    assert rejected == dict(py.rejected)
    for f, v in zip(decoded, values, strict=True):
        want = f.values if f.values is not None else np.zeros(0, np.float32)
        nan = np.isnan(want)  # %a prints any NaN as "nan": compare the rest bit for bit
        assert np.array_equal(np.isnan(v), nan)
        assert v[~nan].tobytes() == want[~nan].tobytes()


def test_random_frames_c_to_python(tool):
    frames = list(_random_frames(np.random.default_rng(3), 300))
    wire = tool("encode", data=_encode_lines(frames)).stdout
    assert wire == b"".join(p.encode_frame(f) for f in frames)
    d = p.Decoder()
    assert d.feed(wire) == frames and d.rejected_total == 0


def test_c_encode_f32_equals_python_encode_sample(tool):
    rng = np.random.default_rng(5)
    for n in (0, 1, 6, 16, 256):
        v = rng.standard_normal(n).astype(np.float32) * 10.0 ** rng.integers(-30, 30, n)
        v = v.astype(np.float32)
        args = [float(x).hex() for x in v]
        out = tool("sample", "9", "65535", "4294967295", *args).stdout
        assert out == p.encode_sample(9, 65535, v, timestamp=2**32 - 1)
        assert np.array_equal(p.decode_frame(out).values, v)
    refused = tool("sample", "0", "0", "0", *["1.0"] * 257, check=False)
    assert refused.returncode == 1 and b"refused 257" in refused.stderr



def test_c_with_a_small_max_payload_rejects_longer_frames(tmp_path_factory):
    exe = _build(tmp_path_factory, "-DERNL_MAX_PAYLOAD=64")
    fits, too_long = p.encode_sample(1, 1, np.ones(16)), p.encode_sample(1, 2, np.ones(17))
    out = subprocess.run([str(exe), "decode"], input=fits + too_long + fits,
                         capture_output=True, timeout=20).stdout
    frames, _, rejected = _parse_decode(out)
    assert [f.seq for f in frames] == [1, 1] and rejected == {"oversize": 1}


def test_c_codec_is_memory_safe_on_garbage_under_sanitizers(tmp_path_factory):
    require(CC is not None, "a C compiler (cc, gcc or clang)")
    exe = tmp_path_factory.mktemp("asan") / "ernl_tool"
    cmd = [CC, "-std=c99", "-g", "-O1", "-fsanitize=address,undefined",
           "-fno-sanitize-recover=all", "-o", str(exe), str(C_DIR / "ernl.c"),
           str(C_DIR / "ernl_tool.c")]
    if subprocess.run(cmd, capture_output=True, timeout=60).returncode != 0:
        require(False, f"{CC} with -fsanitize=address,undefined (libasan, libubsan)")
    rng = np.random.default_rng(6)
    frames = list(_random_frames(rng, 100))
    stream = bytearray()
    for f in frames:
        stream += rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
        stream += rng.integers(1, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
        stream += p.encode_frame(f)
    done = subprocess.run([str(exe), "decode"], input=bytes(stream), capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    py = p.Decoder()
    decoded, _, rejected = _parse_decode(done.stdout)
    assert decoded == py.feed(bytes(stream)) and rejected == dict(py.rejected)
    assert decoded == frames  # every frame survives the garbage before it
    enc = subprocess.run([str(exe), "encode"], input=_encode_lines(frames), capture_output=True,
                         timeout=60)
    assert enc.returncode == 0 and enc.stdout == b"".join(p.encode_frame(f) for f in frames)
