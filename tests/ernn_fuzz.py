"""Mutated ``.ernn`` files and what loading them gives; shared by the tests and the bench.

A case is fully determined by ``(seed, index)``: :func:`make_case` picks one of
the seed models (:func:`seed_files`), one mutation, applies it and returns the
bytes with the mutation's name and whether it may legitimately change the model
(a manifest edit whose hash was recomputed, as a careless or hostile writer
would do). :func:`run_case` loads the bytes with a target and classifies the
outcome:

- ``"rejected"``: :class:`edgernn.ModelFormatError` -- the documented error;
- ``"loaded-same"``: loaded, and equal to the seed (same outputs, bit for bit);
- ``"loaded-changed"``: loaded, but different -- only acceptable when the
  mutation may change the model (then the loaded model must still run);
- ``"escaped:<Exception>"``, ``"timeout"``: failures.

Targets: ``"load"`` (:func:`edgernn.load`) and ``"archive"`` (the archive layer
alone: manifest and arrays). ``python -m tests.ernn_fuzz START COUNT SEED
TARGET`` runs cases in a worker process and prints one JSON line per case
(used by ``bench/fuzz_modelfile.py`` and the memory-capped tests).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sys
import tempfile
import time
import zipfile
from functools import cache
from pathlib import Path

import numpy as np

import edgernn
from edgernn.format import archive
from tests.int8_ops import quantized

CASE_SECONDS = 5.0


class CaseTimeout(Exception):
    pass


# --- seed models -------------------------------------------------------------
def _models():
    rng = np.random.default_rng(11)
    r = lambda *s: (rng.standard_normal(s) * 0.4).astype(np.float32)  # noqa: E731
    gru = lambda i, h, **kw: edgernn.GRU(r(3 * h, i), r(3 * h, h), r(3 * h), r(3 * h), **kw)  # noqa: E731,E501
    state = edgernn.StreamState(("0.h",), (r(4),))
    return {
        "gru_dense": (edgernn.Model([gru(3, 5), edgernn.Dense(r(2, 5), r(2), "sigmoid")],
                                    provenance={"source": "fuzz", "note": "seed"}), r(6, 3)),
        "lstm_stack": (edgernn.Model([
            edgernn.LSTM(r(16, 3), r(16, 4), r(16), None, peephole=r(3, 4), cell_clip=2.0),
            edgernn.LSTM(r(12, 4), r(12, 3)), edgernn.Activation("softmax")]), r(6, 3)),
        "tokens_bidir": (edgernn.Model([
            edgernn.Embedding(r(7, 3)),
            edgernn.Bidirectional(gru(3, 4, linear_before_reset=False), gru(3, 4), "concat"),
            edgernn.Dense(r(3, 8))]), np.arange(6) % 7),
        "rnn_state_last": (edgernn.Model([edgernn.RNN(r(4, 2), r(4, 4), clip=1.5),
                                          edgernn.Dense(r(1, 4))], return_sequences=False,
                                         initial_state=state), r(6, 2)),
        "int8_conv_gru": (edgernn.Model([
            quantized(edgernn.CausalConv1d(r(6, 3, 2), r(6), dilation=2), "int8-weights",
                      dynamic_zero_point=True),
            quantized(gru(6, 4), "int8-weights"), edgernn.Dense(r(2, 4))]), r(6, 3)),
    }



@cache
def seed_files(target: str) -> tuple:
    """((name, file bytes, reference), ...): what a correct load of each seed gives."""
    out = []
    with tempfile.TemporaryDirectory() as d:
        for name, (model, xs) in _models().items():
            path = Path(d) / f"{name}.ernn"
            model.save(path)
            if target == "archive":  # the archive layer's own files: hash stored
                with archive.Archive(path) as ar:
                    man = ar.read_manifest()
                    arrays = ar.read_arrays(man["arrays"])
                archive.write(path, man, arrays)
                ref = _archive_read(path)
            else:
                ref = (xs, _outputs(edgernn.load(path), xs))
            out.append((name, path.read_bytes(), ref))
    return tuple(out)


def _outputs(model, xs):
    return model.stream().run(xs)


def _archive_read(path):
    with archive.Archive(path) as ar:
        man = ar.read_manifest()
        return man, ar.read_arrays(man["arrays"])


# --- zip helpers ---------------------------------------------------------------
def _entries(data: bytes) -> list:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _zip(entries, method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names on purpose
            for name, blob in entries:
                info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                zf.writestr(info, blob)
    return buf.getvalue()


def _with_manifest(data: bytes, raw: bytes, rehash: bool) -> bytes:
    out = []
    for name, blob in _entries(data):
        if name == "manifest.json":
            blob = raw
        elif name == "manifest.sha256" and rehash:
            blob = hashlib.sha256(raw).hexdigest().encode() + b"\n"
        out.append((name, blob))
    return _zip(out)


def _manifest(data: bytes) -> dict:
    return json.loads(dict(_entries(data))["manifest.json"])


def _dump(man) -> bytes:
    return json.dumps(man, separators=(",", ":"), sort_keys=True).encode()  # canonical


def _paths(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, path + (i,))


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _set(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


# --- mutations: each (rng, data) -> bytes ------------------------------------------
_VALUES = [None, True, False, 0, -1, 1, 7, 2**31, 2**63 - 1, -(2**63), 1.5, -0.0, 1e300, "",
           "x", "false", "true", "1.0", "float64", [], {}, [1, 2], [[1]], {"a": 1}, [None]]
_SHAPES = [[2**32, 2**32, 2**32], [2**63 - 1, 2], [2**62, 4], [-1, 3], [0], [], [1] * 9,
           [3.0, 2], ["3"], [True], [2**31, 2**31], [1, 1, 1, 1, 1, 1, 1, 1]]


def m_flip(rng, data):
    b = bytearray(data)
    for pos in rng.integers(0, len(b), int(rng.integers(1, 9))):
        b[pos] ^= int(rng.integers(1, 256))
    return bytes(b)


def m_flip_directory(rng, data):
    b = bytearray(data)
    start = data.rfind(b"PK\x01\x02") - 200
    for pos in rng.integers(max(start, 0), len(b), int(rng.integers(1, 4))):
        b[pos] ^= int(rng.integers(1, 256))
    return bytes(b)


def m_truncate(rng, data):
    return data[:int(rng.integers(0, len(data)))]


def m_junk(rng, data):
    junk = rng.bytes(int(rng.integers(1, 3000)))
    return junk + data if rng.random() < 0.5 else data + junk


def m_splice(rng, data):
    a, b = sorted(rng.integers(0, len(data), 2))
    at = int(rng.integers(0, len(data)))
    return data[:at] + data[a:b] + data[at + (b - a):]


def m_entries(rng, data):
    e = _entries(data)
    i, j = (int(v) for v in rng.integers(0, len(e), 2))
    op = rng.integers(0, 6)
    if op == 0:
        e[i], e[j] = (e[i][0], e[j][1]), (e[j][0], e[i][1])   # swap contents
    elif op == 1:
        del e[i]
    elif op == 2:
        e.append(e[i])                                         # duplicate entry
    elif op == 3:
        e.append((str(rng.choice(["arrays/extra.npy", "../evil", "dir/", "manifest.json",
                                  "arrays/0.weight_ih.npy", "x.pkl"])), rng.bytes(40)))
    elif op == 4:
        e.insert(j, (e[i][0], e[j][1]))                        # same name, other content
    else:
        rng.shuffle(e)
    return _zip(e)


def m_compressed(rng, data):
    e = _entries(data)
    if rng.random() < 0.5:  # a zip bomb: 16 MiB of zeros in 16 KiB
        e.append((str(rng.choice(["bomb.npy", "manifest.json", e[-1][0]])), bytes(16 << 20)))
    return _zip(e, zipfile.ZIP_DEFLATED)


def m_size_lie(rng, data):
    b = bytearray(data)
    cds, at = [], data.find(b"PK\x01\x02")
    while at >= 0:
        cds.append(at)
        at = data.find(b"PK\x01\x02", at + 1)
    at = int(rng.choice(cds))
    value = int(rng.choice([0, 1, 2**31 - 1, 2**32 - 1, 10**9]))
    for off in rng.choice([20, 24, 42], int(rng.integers(1, 3)), replace=False):
        b[at + off:at + off + 4] = value.to_bytes(4, "little")
    if rng.random() < 0.3:
        b[at + 8] |= 1                                          # encrypted flag
    return bytes(b)


def m_manifest_value(rng, data):
    man = _manifest(data)
    paths = [p for p in _paths(man) if p]
    path = paths[int(rng.integers(0, len(paths)))]
    kind = rng.integers(0, 3)
    if kind == 0:
        _set(man, path, _VALUES[int(rng.integers(0, len(_VALUES)))])
    elif kind == 1:
        parent = man
        for p in path[:-1]:
            parent = parent[p]
        del parent[path[-1]]
    else:
        objs = [p for p in _paths(man) if isinstance(_get(man, p), dict)]
        _get(man, objs[int(rng.integers(0, len(objs)))])["unexpected_key"] = 1
    return _with_manifest(data, _dump(man), rehash=rng.random() < 0.8)


def m_array_lie(rng, data):
    man = _manifest(data)
    key = sorted(man["arrays"])[int(rng.integers(0, len(man["arrays"])))]
    meta = man["arrays"][key]
    what = rng.integers(0, 4)
    if what == 0:
        meta["shape"] = _SHAPES[int(rng.integers(0, len(_SHAPES)))]
    elif what == 1:
        meta["shape"] = list(reversed(meta["shape"])) + ([1] if rng.random() < 0.5 else [])
    elif what == 2:
        meta["dtype"] = str(rng.choice(["float64", "int8", "int32", "float16", "<f4", "object"]))
    else:
        meta["sha256"] = str(rng.choice(["0" * 64, "", meta["sha256"].upper()]))
    return _with_manifest(data, _dump(man), rehash=rng.random() < 0.8)


def m_hostile_json(rng, data):
    raw = _dump(_manifest(data))
    at = raw.index(b'"format"')
    bad = [b'"deep": ' + b"[" * 100_000 + b"]" * 100_000 + b", ",
           b'"deep": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b", ",
           b'"big": ' + b"9" * 5000 + b", ", b'"big": -' + b"1" * 25 + b", ",
           b'"f": 1e999, ', b'"f": NaN, ', b'"format": "dup", ',
           b'"s": "' + b"x" * 200_000 + b'", ', b'"s": "' + b"y" * (5 << 20) + b'", ',
           b'"u": "\xff\xfe", '][int(rng.integers(0, 10))]
    raw = raw[:at] + bad + raw[at:]
    return _with_manifest(data, raw, rehash=rng.random() < 0.8)


def m_npy_header(rng, data):
    e = _entries(data)
    idx = [i for i, (n, _) in enumerate(e) if n.endswith(".npy")]
    i = int(rng.choice(idx))
    name, blob = e[i]
    edits = [(b"'<f4'", b"'<f8'"), (b"'<f4'", b"'>f4'"), (b"'<f4'", b"'|O' "),
             (b"'<f4'", b"'<i4'"), (b"False", b"True "), (b"(", b"(9999999999, ")]
    old, new = edits[int(rng.integers(0, len(edits)))]
    if rng.random() < 0.2:
        blob = blob[:6] + bytes([int(rng.integers(0, 4)), 0]) + blob[8:]
    elif rng.random() < 0.2:
        blob = blob[:8] + rng.bytes(2) + blob[10:]
    else:
        blob = blob.replace(old, new, 1)
    e[i] = (name, blob)
    return _zip(e)


MUTATIONS = {f.__name__[2:]: f for f in (
    m_flip, m_flip_directory, m_truncate, m_junk, m_splice, m_entries, m_compressed,
    m_size_lie, m_manifest_value, m_array_lie, m_hostile_json, m_npy_header)}
#: mutations that may produce a different but valid model (a re-hashed manifest edit)
MAY_CHANGE = {"manifest_value", "array_lie", "hostile_json"}


def make_case(seed: int, index: int, target: str) -> tuple[str, str, bytes]:
    """(seed model name, mutation name, file bytes) of case ``index``."""
    rng = np.random.default_rng([seed, index])
    seeds = seed_files(target)
    name, data, _ = seeds[int(rng.integers(0, len(seeds)))]
    kinds = sorted(MUTATIONS)
    kind = kinds[int(rng.integers(0, len(kinds)))]
    return name, kind, MUTATIONS[kind](rng, data)


# --- running a case -------------------------------------------------------------------
def _alarm(*_):
    raise CaseTimeout


def run_case(path, target: str, seed_name: str, kind: str, seconds=CASE_SECONDS) -> str:
    """Load ``path`` with ``target`` under a time cap; classify the outcome (module doc)."""
    ref = dict((n, r) for n, _, r in seed_files(target))[seed_name]
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        try:
            if target == "archive":
                man, arrays = _archive_read(path)
                same = man == ref[0] and arrays.keys() == ref[1].keys() and all(
                    np.array_equal(arrays[k], ref[1][k]) for k in arrays)
            else:
                model = edgernn.load(path)
                xs, ys = ref
                try:
                    got = _outputs(model, xs)
                except edgernn.EdgeRNNError:  # a valid model for other inputs
                    got = None
                same = got is not None and got.shape == ys.shape and np.array_equal(
                    got, ys, equal_nan=True)
        except edgernn.ModelFormatError:
            return "rejected"
        except CaseTimeout:
            return "timeout"
        except Exception as exc:  # noqa: BLE001 - classifying is the point
            return f"escaped:{type(exc).__name__}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    if same:
        return "loaded-same"
    return "loaded-changed" if kind in MAY_CHANGE else "loaded-changed-UNDETECTED"


def ok(outcome: str) -> bool:
    return outcome in ("rejected", "loaded-same", "loaded-changed")


def _worker(start: int, count: int, seed: int, target: str) -> None:
    import resource

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "case.ernn")
        for i in range(start, start + count):
            name, kind, data = make_case(seed, i, target)
            with open(path, "wb") as fh:
                fh.write(data)
            t0 = time.perf_counter()
            outcome = run_case(path, target, name, kind)
            print(json.dumps({"i": i, "seed_model": name, "mutation": kind, "outcome": outcome,
                              "seconds": round(time.perf_counter() - t0, 4),
                              "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                              // 1024}), flush=True)


if __name__ == "__main__":
    _worker(*(int(a) for a in sys.argv[1:4]), sys.argv[4])
