"""edgernn.format.archive on crafted zips: what it reads, what it refuses, and what
reading costs."""

import hashlib
import io
import json
import os
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from edgernn.errors import ModelFormatError
from edgernn.format import archive, boundedjson
from edgernn.format.archive import Archive, Limits
from tests.helpers import need_module


def _arrays():
    rng = np.random.default_rng(0)
    return {"0.weight": rng.standard_normal((6, 5)).astype(np.float32),
            "0.q": rng.integers(-128, 128, (3, 4), dtype=np.int8),
            "0.idx": np.arange(7, dtype=np.int32), "0.s": np.arange(4, dtype=np.int16),
            "empty": np.zeros((0, 3), np.float32), "scalar": np.array(2.5, np.float32)}


def _manifest(arrays, **extra):
    return {"format": "test", "arrays": {k: archive.array_meta(a) for k, a in arrays.items()},
            "config": {"linear_before_reset": True, "clip": 0.5}, **extra}


@pytest.fixture
def good(tmp_path):
    arrays = _arrays()
    path = tmp_path / "good.ernn"
    archive.write(path, _manifest(arrays), arrays)
    return path, arrays


def _read(path, **kw):
    with Archive(path) as ar:
        man = ar.read_manifest(**kw)
        return man, ar.read_arrays(man["arrays"])


def _entries(path):
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _zip(path, entries, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compress) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def test_write_read_round_trip_is_exact_and_deterministic(good, tmp_path):
    path, arrays = good
    man, got = _read(path)
    assert man == _manifest(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape
        np.testing.assert_array_equal(got[k], a)
    with Archive(path) as ar:
        ar.read_manifest()
        assert ar.hash_stored
        assert ar.manifest_sha256 == hashlib.sha256(boundedjson.canonical(man)).hexdigest()
    again = archive.write(tmp_path / "again.ernn", _manifest(arrays), arrays)
    assert again.read_bytes() == path.read_bytes()
    assert {n for n, _ in _entries(path)} == {"manifest.json", "manifest.sha256"} | {
        f"arrays/{k}.npy" for k in arrays}


def test_read_returns_everything_with_its_verification(good):
    path, arrays = good
    got = archive.read(path)
    assert got.hash_stored and got.signed_by is None and got.manifest == _manifest(arrays)
    assert got.manifest_sha256 == hashlib.sha256(boundedjson.canonical(got.manifest)).hexdigest()
    assert got.arrays.keys() == arrays.keys()
    with pytest.raises(ModelFormatError, match="manifest lacks 'tensors'"):
        archive.read(path, table_key="tensors")


def test_release_0_1_0_file_reads(tmp_path):
    path = os.path.join(os.path.dirname(__file__), "data", "format1", "demo_m.ernn")
    man, arrays = _read(path)
    assert man["format_version"] == "1.0"
    assert arrays["0.weight_hh"].shape == (288, 96)


def test_reading_an_array_allocates_it_once(tmp_path):
    big = np.random.default_rng(1).standard_normal((1024, 1024)).astype(np.float32)  # 4 MiB
    path = archive.write(tmp_path / "big.ernn", _manifest({"w": big}), {"w": big})
    with Archive(path) as ar:
        man = ar.read_manifest()
        tracemalloc.start()
        try:
            arr = ar.read_array("w", man["arrays"]["w"])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    np.testing.assert_array_equal(arr, big)
    assert big.nbytes <= peak < big.nbytes + (256 << 10)


def _need_cryptography():
    need_module("cryptography", "cryptography (the 'sign' extra)")


def _fails(path, match, **kw):
    with pytest.raises(ModelFormatError, match=match) as info:
        _read(path, **kw)
    assert str(path) in str(info.value)


def test_compressed_encrypted_duplicate_entries_are_refused(good, tmp_path):
    path, _ = good
    entries = _entries(path)
    _fails(_zip(tmp_path / "deflate.ernn", entries, zipfile.ZIP_DEFLATED),
           "'manifest.json' is compressed")
    raw = bytearray(path.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 8] |= 1  # central directory: encrypted flag on the last entry
    (tmp_path / "enc.ernn").write_bytes(raw)
    _fails(tmp_path / "enc.ernn", "is encrypted")
    with pytest.warns(UserWarning, match="Duplicate name"):
        _zip(tmp_path / "dup.ernn", entries + [entries[-1]])
    _fails(tmp_path / "dup.ernn", "appears twice")


def test_local_header_must_agree_with_the_directory(good, tmp_path):
    path, _ = good
    raw = path.read_bytes()
    first = raw.index(b"arrays/")  # name in the second local header
    for what, pos, value, match in [
            ("name", first, b"Arrays/", "disagrees"),
            ("crc", first - 30 + 14, b"\0\0\0\0", "local header says CRC"),
            ("size", first - 30 + 22, b"\1\0\0\0", "local header says"),
            ("method", first - 30 + 8, b"\x08\0", "disagrees")]:
        bad = bytearray(raw)
        bad[pos:pos + len(value)] = value
        (tmp_path / f"{what}.ernn").write_bytes(bad)
        _fails(tmp_path / f"{what}.ernn", match)


def test_overlapping_entries_and_entries_past_the_directory_are_refused(good, tmp_path):
    path, _ = good
    raw = bytearray(path.read_bytes())
    cds = [i for i in range(len(raw)) if raw[i:i + 4] == b"PK\x01\x02"]
    off0 = struct.unpack_from("<I", raw, cds[0] + 42)[0]
    struct.pack_into("<I", raw, cds[1] + 42, off0)  # second entry points at the first's header
    (tmp_path / "overlap.ernn").write_bytes(raw)
    with pytest.raises(ModelFormatError, match="overlaps|disagrees"):
        _read(tmp_path / "overlap.ernn")
    raw = bytearray(path.read_bytes())
    last = cds[-1]
    size = struct.unpack_from("<I", raw, last + 24)[0]
    name_len = struct.unpack_from("<H", raw, last + 28)[0]
    name = bytes(raw[last + 46:last + 46 + name_len])
    local = raw.index(b"PK\x03\x04" + bytes(raw[last + 6:last + 8]), 0)
    while raw[local + 30:local + 30 + name_len] != name:
        local = raw.index(b"PK\x03\x04", local + 1)
    for off in (last + 20, last + 24, local + 18, local + 22):
        struct.pack_into("<I", raw, off, size + 10**6)  # a bigger entry, consistently
    (tmp_path / "past.ernn").write_bytes(raw)
    _fails(tmp_path / "past.ernn", "past the start of the zip directory|file has")


def test_total_size_cap_applies_before_any_read(good):
    path, arrays = good
    with pytest.raises(ModelFormatError, match="entries total more than the 1000 bytes"):
        Archive(path, Limits(max_total_bytes=1000))
    with pytest.raises(ModelFormatError, match="more than the 3 allowed"):
        Archive(path, Limits(max_entries=3))


def test_streamed_zip_with_data_descriptors_reads(good, tmp_path):
    path, arrays = good

    class Pipe(io.RawIOBase):  # not seekable: zipfile writes data descriptors (flag 0x8)
        def __init__(self):
            self.buf = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.buf += b
            return len(b)

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w") as zf:
        for name, data in _entries(path):
            with zf.open(name, "w") as out:
                out.write(data)
    (tmp_path / "streamed.ernn").write_bytes(pipe.buf)
    assert all(i.flag_bits & 8 for i in zipfile.ZipFile(tmp_path / "streamed.ernn").infolist())
    man, got = _read(tmp_path / "streamed.ernn")
    np.testing.assert_array_equal(got["0.weight"], arrays["0.weight"])


def _with_manifest(path, out, man, rehash=True, raw=None):
    raw = boundedjson.canonical(man) if raw is None else raw
    entries = []
    for name, data in _entries(path):
        if name == "manifest.json":
            data = raw
        elif name == "manifest.sha256" and rehash:
            data = hashlib.sha256(raw).hexdigest().encode() + b"\n"
        entries.append((name, data))
    return _zip(out, entries)


@pytest.mark.parametrize("change,match", [
    ({"shape": [2**32, 2**32, 2**32]}, "larger than"),
    ({"shape": [2**62, 2**62]}, "larger than"),
    ({"shape": [-1, 5]}, "shape"),
    ({"shape": [True, 5]}, "shape"),
    ({"shape": [6.0, 5]}, "shape"),
    ({"shape": [1] * 9}, "shape"),
    ({"shape": "6x5"}, "shape"),
    ({"shape": [5, 6]}, "header says float32\\[6, 5\\]"),
    ({"shape": [6, 4]}, "needs 96 data bytes"),
    ({"dtype": "float64"}, "dtype"),
    ({"dtype": "int32"}, "header says float32"),
    ({"dtype": "<f4"}, "dtype"),
    ({"sha256": "0" * 64}, "SHA-256 mismatch"),
    ({"sha256": "XYZ"}, "sha256"),
])
def test_array_table_lies_are_refused(good, tmp_path, change, match):
    path, arrays = good
    man = _manifest(arrays)
    man["arrays"]["0.weight"].update(change)
    _fails(_with_manifest(path, tmp_path / "lie.ernn", man), match)


def test_npy_header_lies_are_refused(good, tmp_path):
    path, _ = good
    for what, fn, match in [
            ("endian", lambda d: d.replace(b"'<f4'", b"'>f4'"), "header says >f4"),
            ("fortran", lambda d: d.replace(b"False", b"True "), "Fortran"),
            ("shape", lambda d: d.replace(b"(6, 5)", b"(5, 6)"), "header says"),
            ("object", lambda d: d.replace(b"'<f4'", b"'|O' "), "header"),
            ("version", lambda d: d[:6] + b"\x02\x00" + d[8:], "npy 1.0"),
            ("hlen", lambda d: d[:8] + b"\xff\xff" + d[10:], "bytes, but"),
            ("garbage", lambda d: d[:10] + b"{'descr': (((((" + d[25:], "bad .npy header"),
            ("flip", lambda d: d[:-1] + bytes([d[-1] ^ 1]), "CRC|SHA")]:
        entries = [(n, fn(d) if n == "arrays/0.weight.npy" else d) for n, d in _entries(path)]
        _fails(_zip(tmp_path / f"{what}.ernn", entries), match)


def test_missing_extra_and_unsafe_entries_are_refused(good, tmp_path):
    path, arrays = good
    entries = _entries(path)
    _fails(_zip(tmp_path / "missing.ernn", [e for e in entries if e[0] != "arrays/0.q.npy"]),
           "'arrays/0.q.npy' is missing")
    _fails(_zip(tmp_path / "extra.ernn", entries + [("arrays/evil.pkl", b"cos\nsystem\n")]),
           "unexpected entries")
    _fails(_zip(tmp_path / "noman.ernn", entries[1:]), "no manifest.json")
    man = _manifest(arrays)
    man["arrays"]["../x"] = man["arrays"].pop("0.q")
    _fails(_with_manifest(path, tmp_path / "unsafe.ernn", man), "not a safe entry name")


@pytest.mark.parametrize("raw,match", [
    (b'{"a": ' + b"7" * 5000 + b"}", "integer of 5000 digits"),
    (b'{"a": 1e999}', "overflows"),
    (b'{"a": NaN}', "NaN is not allowed"),
    (b"[" * 100_000 + b"]" * 100_000, "nesting deeper"),
    (b'{"a":' * 40 + b"1" + b"}" * 40, "nesting deeper than 32 levels"),
    (b'{"a": "' + b"x" * 100_000 + b'"}', "string of 100000 characters"),
    (b'{"a": 1, "a": 2}', "key 'a' appears twice"),
    (b"\xef\xbb\xbf{}", "byte-order mark"),
    (b'{"a": "\xff"}', "not UTF-8"),
    (b"{", "not valid JSON"),
    (b"[1, 2]", "expected an object"),
    (b" " * (5 << 20), "more than the 4194304 allowed"),
])
def test_hostile_manifest_json_is_refused(good, tmp_path, raw, match):
    path, _ = good
    _fails(_with_manifest(path, tmp_path / "json.ernn", None, raw=raw), match)


def test_manifest_hash_covers_every_field(good, tmp_path):
    path, arrays = good
    man = _manifest(arrays)
    man["config"]["linear_before_reset"] = "false"
    _fails(_with_manifest(path, tmp_path / "edited.ernn", man, rehash=False),
           "does not match manifest.sha256")
    raw = json.dumps(_manifest(arrays)).encode()  # same content, not canonical
    _fails(_with_manifest(path, tmp_path / "noncanon.ernn", None, raw=raw), "canonical form")
    entries = [(n, b"nothex\n" if n == "manifest.sha256" else d) for n, d in _entries(path)]
    _fails(_zip(tmp_path / "badhash.ernn", entries), "64 lowercase hex")


def test_signature_is_checked_when_required(good, tmp_path):
    _need_cryptography()
    from edgernn.format import signing

    path, arrays = good
    priv, pub = signing.generate_key_pem()
    other_priv, other_pub = signing.generate_key_pem()
    signed = archive.write(tmp_path / "signed.ernn", _manifest(arrays), arrays,
                           signing_key=priv)
    (tmp_path / "pub.pem").write_bytes(pub)
    man, _ = _read(signed, require_signature=True, public_key=tmp_path / "pub.pem")
    with Archive(signed) as ar:
        ar.read_manifest(public_key=pub)
        assert ar.signed_by == hashlib.sha256(signing.public_key_bytes(pub)).hexdigest()
    _fails(path, "not signed", require_signature=True, public_key=pub)
    _fails(signed, "signed with key", require_signature=True, public_key=other_pub)
    man["config"]["clip"] = 9.0  # an attacker who re-hashes but cannot re-sign
    _fails(_with_manifest(signed, tmp_path / "forged.ernn", man), "does not verify",
           require_signature=True, public_key=pub)
    forged = archive.write(tmp_path / "resigned.ernn", man, arrays, signing_key=other_priv)
    _fails(forged, "signed with key", require_signature=True, public_key=pub)
    for junk, match in [(b"[]", "expected the fields"), (b"{" * 50, "nesting|JSON"),
                        (b'{"algorithm": "rsa", "key_sha256": "", "signature": ""}', "ed25519")]:
        entries = [(n, junk if n == "manifest.sig" else d) for n, d in _entries(signed)]
        _fails(_zip(tmp_path / "junk.ernn", entries), match)
    with pytest.raises(ValueError, match="needs public_key"):
        _read(signed, require_signature=True)


def test_not_a_zip_a_fifo_and_a_directory(tmp_path):
    (tmp_path / "text.ernn").write_text("hello")
    with pytest.raises(ModelFormatError, match="zip archive was expected"):
        Archive(tmp_path / "text.ernn")
    os.mkfifo(tmp_path / "fifo.ernn")
    with pytest.raises(ModelFormatError, match="not a regular file"):
        Archive(tmp_path / "fifo.ernn")  # returns at once: nobody writes to the FIFO
    with pytest.raises(IsADirectoryError):
        Archive(tmp_path)
    with pytest.raises(FileNotFoundError):
        Archive(tmp_path / "missing.ernn")


def test_write_refuses_what_it_could_not_read_back(tmp_path):
    arrays = {"w": np.zeros(3, np.float64)}
    with pytest.raises(ModelFormatError, match="dtype float64 cannot be stored"):
        archive.write(tmp_path / "x.ernn", {"arrays": {}}, arrays)
    with pytest.raises(ModelFormatError, match="cannot be stored"):
        archive.write(tmp_path / "x.ernn", {"clip": float("nan")}, {})
    with pytest.raises(ModelFormatError, match="not a safe entry name"):
        archive.write(tmp_path / "x.ernn", {}, {"../w": np.zeros(3, np.float32)})
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_old_file_until_the_new_one_is_whole(tmp_path):
    from edgernn.format.atomic import atomic_write

    dest = tmp_path / "model.ernn"
    dest.write_bytes(b"old model")
    os.chmod(dest, 0o640)

    def disk_full(fh):
        fh.write(b"half a new mod")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as info:
        atomic_write(dest, disk_full)
    assert info.value.errno == 28 and info.value.filename == str(dest)
    assert dest.read_bytes() == b"old model" and os.listdir(tmp_path) == ["model.ernn"]
    with pytest.raises(KeyboardInterrupt):
        atomic_write(dest, lambda fh: (fh.write(b"x"), (_ for _ in ()).throw(KeyboardInterrupt)))
    assert os.listdir(tmp_path) == ["model.ernn"]
    atomic_write(dest, lambda fh: fh.write(b"new model"))
    assert dest.read_bytes() == b"new model" and os.stat(dest).st_mode & 0o777 == 0o640
    with pytest.raises(FileNotFoundError) as info:
        atomic_write(tmp_path / "nodir" / "m.ernn", lambda fh: fh.write(b"x"))
    assert info.value.filename == str(tmp_path / "nodir" / "m.ernn")
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path, lambda fh: fh.write(b"x"))


def test_reading_an_unsigned_file_never_imports_cryptography(good):
    path, _ = good
    code = ("import sys, edgernn\nfrom edgernn.format import archive\narchive.read(sys.argv[1])\n"
            "print('cryptography' in sys.modules)")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
