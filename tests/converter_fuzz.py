"""Mutated ONNX, TFLite and Keras files and what converting them gives.

Shared by ``tests/test_fuzz_converters.py`` and ``bench/fuzz_converters.py``.
A case is fully determined by ``(seed, index)``: :func:`make_case` picks a
format, one of its seed files (:func:`seed_files`: ONNX graphs built here and
the committed quantised ones, the committed ``.tflite`` and Keras ``.h5``
fixtures) and one mutation:

- ONNX, byte level: flips, truncation, junk; field level: an initialiser's
  dims, data_type or data, an attribute's type or value, names (duplicate
  inputs, dangling or colliding values), op types;
- TFLite: flips, truncation, 32-bit values written over aligned words (offset
  and length lies), zeroed ranges;
- Keras (``.h5`` fixtures, and two ``.keras`` zips Keras 3 saves here): flips,
  truncation, zeroed ranges, and values of the config JSON replaced, removed or
  given another type.

:func:`run_case` converts the bytes with the format's converter under a time
cap (half of it for the Keras reader's HDF5 child process, whose refusal
then says "took more than") and, when it converts, steps the model 3 times on
zeros. Outcomes:
``"rejected"`` (an :class:`edgernn.errors.EdgeRNNError`), ``"converted"``,
``"traceback:<Exception>"`` and ``"hang"``; the parent adds ``"crash"`` for a
worker that died. ``python -m tests.converter_fuzz START COUNT SEED`` runs
cases in a worker and prints one JSON line per case.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import tempfile
import time
import warnings
import zipfile
from functools import cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
CASE_SECONDS = 10.0
FORMATS = ("onnx", "tflite", "keras")


class CaseTimeout(Exception):
    pass


# --- seed files ------------------------------------------------------------------
@cache
def seed_files(fmt: str) -> tuple:
    """((name, bytes), ...) of the seed files of ``fmt``."""
    if fmt == "onnx":
        from onnx import helper

        from .naive_onnx import W4, recurrent_model, with_head

        rng = np.random.default_rng(5)
        protos = {f"{op.lower()}_{d}": recurrent_model(op, rng, direction=d, init=i)
                  for op, d, i in (("LSTM", "forward", "input"), ("GRU", "bidirectional",
                                                                  "const"),
                                   ("RNN", "reverse", "none"))}
        protos["lstm_head"] = with_head(nodes=[
            helper.make_node("MatMul", ["Ys", "w4"], ["mm"]),
            helper.make_node("Tanh", ["mm"], ["out"])], inits=[("w4", W4)])
        out = [(k, v.SerializeToString()) for k, v in protos.items()]
        out += [(p.stem, p.read_bytes()) for p in sorted((DATA / "onnx_quant").glob("*.onnx"))]
        return tuple(out)
    if fmt == "tflite":
        names = ("gru_seq", "lstm_fused", "rnn_while", "gru_unroll", "dense_relu_lstm_seq",
                 "lstm_fused_drq", "graph/graph_stream")
        return tuple((n, (DATA / "tflite" / f"{n}.tflite").read_bytes()) for n in names)
    names = ("lstm", "gru_reset_after", "dense_activation_dropout", "graph_merges",
             "bidir_concat", "simplernn")
    return tuple((n, (DATA / "keras" / f"{n}.h5").read_bytes()) for n in names) + \
        _keras3_seeds()


def _keras3_seeds() -> tuple:
    """Two Keras 3 ``.keras`` zips saved live (torch backend), a stack and a graph."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    keras.utils.set_random_seed(3)
    stack = keras.Sequential([keras.Input((None, 3)), keras.layers.GRU(4, return_sequences=True),
                              keras.layers.Dense(2, activation="tanh")])
    x = keras.Input((None, 3))
    a = keras.layers.LSTM(4, return_sequences=True)(x)
    graph = keras.Model(x, keras.layers.Concatenate()([a, keras.layers.Dense(2)(x)]))
    out = []
    with tempfile.TemporaryDirectory() as d:
        for name, m in (("k3_gru_stack", stack), ("k3_lstm_graph", graph)):
            m.save(os.path.join(d, "m.keras"))
            out.append((name, Path(d, "m.keras").read_bytes()))
    return tuple(out)


# --- byte mutations (every format) ------------------------------------------------
def b_flip(rng, data):
    a = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        a[int(rng.integers(0, len(a)))] ^= 1 << int(rng.integers(0, 8))
    return bytes(a)


def b_truncate(rng, data):
    return data[:int(rng.integers(0, len(data)))]


def b_junk(rng, data):
    k = int(rng.integers(0, len(data)))
    return data[:k] + rng.bytes(int(rng.integers(1, 64))) + data[k:]


def b_word(rng, data):
    """A 32-bit value over an aligned word: offsets and lengths that lie."""
    a = bytearray(data)
    k = int(rng.integers(0, max(len(a) // 4, 1))) * 4
    v = int(rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, len(a), len(a) + 4,
                        int(rng.integers(0, 1 << 32))]))
    a[k:k + 4] = v.to_bytes(4, "little")
    return bytes(a)


def b_zeros(rng, data):
    k = int(rng.integers(0, len(data)))
    n = min(int(rng.integers(1, 256)), len(data) - k)
    return data[:k] + bytes(n) + data[k + n:]


# --- ONNX field mutations -----------------------------------------------------------
_ODD_INTS = (-1, 0, 1, 2, 3, 7, 999, -(1 << 40), 1 << 40, (1 << 63) - 1)


def _proto(data):
    import onnx

    return onnx.load_from_string(data)


def o_dims(rng, data):
    m = _proto(data)
    t = m.graph.initializer[int(rng.integers(0, len(m.graph.initializer)))]
    if t.dims and rng.random() < 0.7:
        t.dims[int(rng.integers(0, len(t.dims)))] = int(rng.choice(_ODD_INTS))
    elif rng.random() < 0.5:
        t.dims.append(int(rng.choice(_ODD_INTS)))
    else:
        del t.dims[:]
    return m.SerializeToString()


def o_data_type(rng, data):
    m = _proto(data)
    t = m.graph.initializer[int(rng.integers(0, len(m.graph.initializer)))]
    t.data_type = int(rng.choice([0, 2, 3, 6, 7, 8, 9, 10, 11, 14, 16, 17, 21, 999]))
    return m.SerializeToString()


def o_data(rng, data):
    m = _proto(data)
    t = m.graph.initializer[int(rng.integers(0, len(m.graph.initializer)))]
    if t.raw_data and rng.random() < 0.5:
        t.raw_data = t.raw_data[:int(rng.integers(0, len(t.raw_data)))]
    else:
        t.ClearField("raw_data")
        t.float_data.extend([float("nan"), 1e38][:int(rng.integers(0, 3))])
    return m.SerializeToString()


def o_attribute(rng, data):
    from onnx import helper

    m = _proto(data)
    nodes = [n for n in m.graph.node if n.attribute]
    if not nodes:
        return data
    n = nodes[int(rng.integers(0, len(nodes)))]
    a = n.attribute[int(rng.integers(0, len(n.attribute)))]
    choice = int(rng.integers(0, 6))
    if choice == 0:
        new = helper.make_attribute(a.name, str(rng.integers(0, 9)))
    elif choice == 1:
        new = helper.make_attribute(a.name, float(rng.standard_normal()))
    elif choice == 2:
        new = helper.make_attribute(a.name, int(rng.choice(_ODD_INTS)))
    elif choice == 3:
        new = helper.make_attribute(a.name, [int(rng.choice(_ODD_INTS)) for _ in range(3)])
    elif choice == 4:
        new = helper.make_attribute(a.name, b"\xff\xfe" + rng.bytes(3))
    else:
        a.type = int(rng.choice([0, 2, 3, 7, 14]))
        return m.SerializeToString()
    a.CopyFrom(new)
    return m.SerializeToString()


def o_names(rng, data):
    from onnx import TensorProto, helper

    m = _proto(data)
    g = m.graph
    choice = int(rng.integers(0, 5))
    values = [g.input[0].name] + [o for n in g.node for o in n.output] + \
        [t.name for t in g.initializer]
    pick = values[int(rng.integers(0, len(values)))]
    if choice == 0:
        g.input.append(helper.make_tensor_value_info(g.input[0].name, TensorProto.FLOAT,
                                                     [1, 1, int(rng.integers(1, 9))]))
    elif choice == 1:
        n = g.node[int(rng.integers(0, len(g.node)))]
        if n.input:
            n.input[int(rng.integers(0, len(n.input)))] = rng.choice([pick, "nowhere", ""])
    elif choice == 2:
        n = g.node[int(rng.integers(0, len(g.node)))]
        n.output[0] = pick
    elif choice == 3:
        g.output[0].name = rng.choice([pick, "nowhere"])
    else:
        g.initializer[int(rng.integers(0, len(g.initializer)))].name = pick
    return m.SerializeToString()


def o_op_type(rng, data):
    m = _proto(data)
    n = m.graph.node[int(rng.integers(0, len(m.graph.node)))]
    n.op_type = str(rng.choice(["LSTM", "GRU", "RNN", "Transpose", "Squeeze", "Concat",
                                "Gather", "MatMul", "Softmax", "Reshape", "Split", "Slice"]))
    return m.SerializeToString()


# --- Keras field mutations ----------------------------------------------------------
_ODD_VALUES = (None, "x", -1, 0, 1 << 40, 1.5, True, [], {}, [[["a", 0, 0]]], "\udcff")


def k_config(rng, data):
    """Replace, drop or retype one value of the config JSON (``model_config`` of an
    .h5, ``config.json`` of a .keras zip)."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        entries["config.json"] = _edit(rng, entries["config.json"])
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            for n, b in entries.items():
                z.writestr(n, b)
        return out.getvalue()
    import h5py

    bio = io.BytesIO(data)
    with h5py.File(bio, "r+") as f:
        f.attrs["model_config"] = _edit(rng, f.attrs["model_config"])
    return bio.getvalue()


def _edit(rng, raw) -> bytes:
    cfg = json.loads(raw)
    paths = list(_paths(cfg))
    path = paths[int(rng.integers(0, len(paths)))]
    parent = cfg
    for p in path[:-1]:
        parent = parent[p]
    if isinstance(parent, dict) and rng.random() < 0.3:
        del parent[path[-1]]
    else:
        parent[path[-1]] = _ODD_VALUES[int(rng.integers(0, len(_ODD_VALUES)))]
    return json.dumps(cfg, ensure_ascii=True).encode("utf-8", "surrogateescape")


def _paths(obj, path=()):
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
        if isinstance(obj, list) else ()
    for k, v in items:
        yield path + (k,)
        yield from _paths(v, path + (k,))


MUTATIONS = {
    "onnx": {"flip": b_flip, "truncate": b_truncate, "junk": b_junk, "dims": o_dims,
             "data_type": o_data_type, "data": o_data, "attribute": o_attribute,
             "names": o_names, "op_type": o_op_type},
    "tflite": {"flip": b_flip, "truncate": b_truncate, "junk": b_junk, "word": b_word,
               "zeros": b_zeros},
    "keras": {"flip": b_flip, "truncate": b_truncate, "zeros": b_zeros, "config": k_config},
}
SUFFIX = {"onnx": ".onnx", "tflite": ".tflite", "keras": ".h5"}


def suffix(fmt: str, data: bytes) -> str:
    """The file name extension of a case (a Keras zip is a ``.keras``)."""
    return ".keras" if fmt == "keras" and data[:2] == b"PK" else SUFFIX[fmt]


def make_case(seed: int, index: int) -> tuple[str, str, str, bytes]:
    """(format, seed file name, mutation name, file bytes) of case ``index``."""
    rng = np.random.default_rng([seed, index])
    fmt = FORMATS[index % len(FORMATS)]
    seeds = seed_files(fmt)
    name, data = seeds[int(rng.integers(0, len(seeds)))]
    kinds = sorted(MUTATIONS[fmt])
    kind = kinds[int(rng.integers(0, len(kinds)))]
    return fmt, name, kind, MUTATIONS[fmt][kind](rng, data)


# --- running a case -------------------------------------------------------------------
def _alarm(*_):
    raise CaseTimeout


def run_case(path, fmt: str, seconds=CASE_SECONDS) -> tuple[str, str]:
    """(outcome, first line of the message) of converting ``path`` (module doc)."""
    import converters
    from converters.keras import reader
    from edgernn.errors import EdgeRNNError

    reader.HDF5_SECONDS = seconds / 2  # its own cap, inside the case's

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = getattr(converters, f"from_{fmt}")(path)
            if model.streamable:
                x = np.zeros(model.input_size, np.float32)
                if getattr(model, "num_tokens", None):
                    x = np.zeros(1, np.int64)
                stream = model.stream()
                for _ in range(3):
                    stream.step(x)
        return "converted", ""
    except CaseTimeout:
        return "hang", ""
    except EdgeRNNError as exc:
        return "rejected", str(exc).splitlines()[0][:300] if str(exc) else ""
    except Exception as exc:  # noqa: BLE001 - classifying is the point
        return f"traceback:{type(exc).__name__}", str(exc).splitlines()[0][:300] \
            if str(exc) else ""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def ok(outcome: str) -> bool:
    return outcome in ("rejected", "converted")


def _worker(start: int, count: int, seed: int) -> None:
    import resource

    with tempfile.TemporaryDirectory() as d:
        for i in range(start, start + count):
            fmt, name, kind, data = make_case(seed, i)
            path = os.path.join(d, "case" + suffix(fmt, data))
            with open(path, "wb") as fh:
                fh.write(data)
            t0 = time.perf_counter()
            outcome, msg = run_case(path, fmt)
            print(json.dumps({"i": i, "format": fmt, "seed_file": name, "mutation": kind,
                              "outcome": outcome, "message": msg,
                              "seconds": round(time.perf_counter() - t0, 4),
                              "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                              // 1024}), flush=True)


if __name__ == "__main__":
    _worker(*(int(a) for a in sys.argv[1:4]))
