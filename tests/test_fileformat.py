"""The .ernn file: round trips, and every kind of damage gives only ModelFormatError."""

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import edgernn
from edgernn.format.boundedjson import canonical
from tests import naive


def _model(rng):
    r = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    return edgernn.Model([
        edgernn.Embedding(r(11, 4)),
        edgernn.LSTM(r(32, 4), r(32, 8), r(32), None, peephole=r(3, 8), cell_clip=3.0),
        edgernn.Bidirectional(edgernn.GRU(r(18, 8), r(18, 6), linear_before_reset=False),
                              edgernn.GRU(r(18, 8), r(18, 6)), "sum"),
        edgernn.Dense(r(5, 6), r(5), edgernn.Activation("leaky_relu", 0.2)),
        edgernn.Activation("softmax"),
    ], provenance={"source": "unit-test", "source_sha256": "ab" * 32})


@pytest.fixture
def saved(tmp_path, rng):
    model = _model(rng)
    path = tmp_path / "m.ernn"
    model.save(path)
    return model, path


def test_round_trip_gives_identical_outputs(saved):
    model, path = saved
    loaded = edgernn.load(path)
    ids = np.arange(40) % 11
    np.testing.assert_array_equal(loaded.stream().run(ids), model.stream().run(ids))
    assert loaded.provenance == model.provenance
    man = edgernn.read_manifest(path)
    assert man["format_version"] == "2.0"  # 2.1 only for a model with state updates
    assert [entry["type"] for entry in man["graph"]["nodes"]] == [
        "Embedding", "LSTM", "Bidirectional", "Dense", "Activation"]
    with zipfile.ZipFile(path) as zf:
        assert not any(n.endswith(".pkl") for n in zf.namelist())


def _rewrite(path, out, change, rehash=True):
    """Copy the zip at ``path`` to ``out`` applying ``change(name, data) -> data | None``.

    A changed manifest gets a matching ``manifest.sha256`` (as a careless or hostile
    writer would do), so that the checks behind the hash are reached; not with
    ``rehash=False``.
    """
    with zipfile.ZipFile(path) as zin:
        entries = [(i.filename, change(i.filename, zin.read(i))) for i in zin.infolist()]
    entries = [(name, data) for name, data in entries if data is not None]
    man = dict(entries).get("manifest.json")
    with zipfile.ZipFile(out, "w") as zout:
        for name, data in entries:
            if name == "manifest.sha256" and rehash and man is not None:
                data = hashlib.sha256(man).hexdigest().encode() + b"\n"
            zout.writestr(name, data)


def _edit_manifest(fn):
    def change(name, data):
        if name != "manifest.json":
            return data
        man = json.loads(data)
        fn(man)
        return canonical(man)
    return change


def _set(path_keys, value):
    def fn(man):
        obj = man
        for k in path_keys[:-1]:
            obj = obj[k]
        obj[path_keys[-1]] = value
    return _edit_manifest(fn)


def _first_array(man):
    return sorted(man["arrays"])[0]


NODES = ["graph", "nodes"]
MANIFEST_EDITS = {
    "newer_major": (_set(["format_version"], "3.0"), "newer than this edgernn supports"),
    "bad_version": (_set(["format_version"], "one"), "MAJOR.MINOR"),
    "wrong_format": (_set(["format"], "onnx"), "manifest format"),
    "no_nodes": (_set(NODES, []), "unknown tensors"),
    "nodes_not_list": (_set(NODES, {"a": 1}), "expected (a )?list"),
    "unknown_op": (_set(NODES + [0, "type"], "Conv9D"), "unknown op type"),
    "bad_activation": (_set(NODES + [3, "config", "activation", "name"], "swish"),
                       "unknown activation"),
    "bad_lstm_config": (_set(NODES + [1, "config", "cell_clip"], -1), "cell_clip"),
    "bool_as_string": (_set(NODES + [2, "config", "forward", "config", "linear_before_reset"],
                            "false"), "expected true or false"),
    "unknown_config_key": (_set(NODES + [1, "config", "forget_bias"], 1.0), "unknown keys"),
    "dangling_input": (_set(NODES + [1, "inputs"], ["nope"]), "not earlier tensors"),
    "sizes": (_set(["model", "output_size"], 7), "model sizes"),
    "node_size": (_set(NODES + [1, "size"], 9), "size"),
    "huge_shape": (lambda n, d: _set(["arrays", "0.weight", "shape"], [2**30, 2**30])(n, d),
                   "too large|shape"),
    "shape_type": (_set(["arrays", "0.weight", "shape"], "11x4"), "shape"),
    "dtype": (_set(["arrays", "0.weight", "dtype"], "object"), "dtype"),
    "sha": (_set(["arrays", "0.weight", "sha256"], "0" * 64), "SHA-256 mismatch"),
    "missing_ref": (_set(NODES + [1, "arrays", "weight_ih"], "nope"), "unknown array"),
    "provenance": (_set(["provenance"], [1, 2]), "provenance"),
    "model_missing": (_edit_manifest(lambda m: m.pop("model")), "lacks 'model'"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_EDITS))
def test_manifest_tampering_is_rejected(saved, tmp_path, case):
    _, path = saved
    change, match = MANIFEST_EDITS[case]
    bad = tmp_path / "bad.ernn"
    _rewrite(path, bad, change)
    with pytest.raises(edgernn.ModelFormatError, match=match):
        edgernn.load(bad)


def test_array_tampering_is_rejected(saved, tmp_path):
    _, path = saved
    cases = {
        "flip": lambda d: d[:-1] + bytes([d[-1] ^ 1]),
        "truncate": lambda d: d[:-4],
        "extend": lambda d: d + b"\0" * 4,
        "header": lambda d: d[:10] + b"X" + d[11:],
        "shape": lambda d: d.replace(b"(11, 4)", b"(4, 11)"),
        "fortran": lambda d: d.replace(b"False", b"True "),
    }
    for name, fn in cases.items():
        bad = tmp_path / f"{name}.ernn"
        _rewrite(path, bad, lambda n, d, fn=fn: fn(d) if n == "arrays/0.weight.npy" else d)
        with pytest.raises(edgernn.ModelFormatError):
            edgernn.load(bad)
    for what, fn in {"missing": lambda n, d: None if n == "arrays/1.peephole.npy" else d,
                     "no_manifest": lambda n, d: None if n == "manifest.json" else d}.items():
        bad = tmp_path / f"{what}.ernn"
        _rewrite(path, bad, fn)
        with pytest.raises(edgernn.ModelFormatError, match="missing|no manifest"):
            edgernn.load(bad)
    extra = tmp_path / "extra.ernn"
    _rewrite(path, extra, lambda n, d: d)
    with zipfile.ZipFile(extra, "a") as zf:
        zf.writestr("arrays/evil.pkl", b"cos\nsystem\n")
    with pytest.raises(edgernn.ModelFormatError, match="unexpected entries"):
        edgernn.load(extra)


def test_every_truncation_and_byte_flip_gives_only_model_format_error(saved, tmp_path):
    _, path = saved
    raw = path.read_bytes()
    rng = np.random.default_rng(0)
    cuts = sorted(set(rng.integers(0, len(raw), 60).tolist()) | {0, 1, 22, len(raw) - 1})
    flips = rng.integers(0, len(raw), 150).tolist()
    bad = tmp_path / "bad.ernn"
    outcomes = 0
    for cut in cuts:
        bad.write_bytes(raw[:cut])
        with pytest.raises(edgernn.ModelFormatError):
            edgernn.load(bad)
    for pos in flips:
        data = bytearray(raw)
        data[pos] ^= 0x5A
        bad.write_bytes(bytes(data))
        try:
            edgernn.load(bad)  # a flip in slack bytes (zip comments, padding) may be harmless
        except edgernn.ModelFormatError:
            outcomes += 1
    assert outcomes > len(flips) * 0.8
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(edgernn.ModelFormatError, match="zip"):
        edgernn.load(bad)
    for method, match in ((zipfile.ZIP_STORED, "JSON"), (zipfile.ZIP_DEFLATED, "compressed")):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as zf:
            zf.writestr("manifest.json", b"{" * 100_000)
        bad.write_bytes(buf.getvalue())
        with pytest.raises(edgernn.ModelFormatError, match=match):
            edgernn.load(bad)


def test_manifest_edited_without_its_hash_or_out_of_canonical_form_is_rejected(saved, tmp_path):
    _, path = saved
    nodes = ["graph", "nodes", 2, "config", "forward", "config", "linear_before_reset"]
    _rewrite(path, tmp_path / "a.ernn", _set(nodes, True), rehash=False)
    with pytest.raises(edgernn.ModelFormatError, match="does not match manifest.sha256"):
        edgernn.load(tmp_path / "a.ernn")

    def pretty(name, data):
        return json.dumps(json.loads(data)).encode() if name == "manifest.json" else data

    _rewrite(path, tmp_path / "b.ernn", pretty)
    with pytest.raises(edgernn.ModelFormatError, match="canonical form"):
        edgernn.load(tmp_path / "b.ernn")
    _rewrite(path, tmp_path / "c.ernn", lambda n, d: None if n == "manifest.sha256" else d)
    with pytest.raises(edgernn.ModelFormatError, match="without manifest.sha256"):
        edgernn.load(tmp_path / "c.ernn")


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        edgernn.load(tmp_path / "nope.ernn")


FORMAT1 = Path(__file__).resolve().parent / "data" / "format1"


@pytest.mark.parametrize("name", ["stack", "tokens_bidir", "initial_state_last"])
def test_format_1_files_of_release_0_1_load_and_agree(name, tmp_path):
    """Files written by edgernn 0.1.0 (tests/data/make_format1_fixtures.py) load, give that
    release's outputs and the oracle's, and are rewritten as format 2 unchanged."""
    exp = np.load(FORMAT1 / "expected.npz")
    xs, ys = exp[f"{name}.xs"], exp[f"{name}.ys"]
    model = edgernn.load(FORMAT1 / f"{name}.ernn")
    assert edgernn.read_manifest(FORMAT1 / f"{name}.ernn")["format_version"] == "1.0"
    got = model.stream().run(xs)
    np.testing.assert_allclose(got, ys, atol=1e-5, rtol=0)
    if model.initial_state is None:
        ref = naive.run(model, xs)
        np.testing.assert_allclose(got, ref[-len(got):], atol=1e-5, rtol=0)
    model.save(tmp_path / "v2.ernn")
    again = edgernn.load(tmp_path / "v2.ernn")
    assert edgernn.read_manifest(tmp_path / "v2.ernn")["format_version"] == "2.0"
    np.testing.assert_array_equal(again.stream().run(xs), got)


def test_bundled_format_1_demo_model_loads():
    model = edgernn.load(FORMAT1 / "demo_m.ernn")
    assert (model.input_size, model.output_size) == (42, 22)
    xs = np.random.default_rng(0).standard_normal((50, 42)).astype(np.float32)
    np.testing.assert_allclose(model.stream().run(xs), naive.run(model, xs), atol=1e-5)


FORMAT2 = Path(__file__).resolve().parent / "data" / "format2"


@pytest.mark.parametrize("name", ["graph", "graph_int8", "stack"])
def test_format_2_0_files_of_release_0_2_load_and_agree(name, tmp_path):
    """Files written by edgernn 0.2.0 before the house moved (commit c67bef9,
    tests/data/make_format2_fixtures.py): a graph, its int8 version, a stack with an
    initial state. They load and give that release's outputs, and are saved again as
    2.0 (none uses state updates or an audio section)."""
    exp = np.load(FORMAT2 / "expected.npz")
    xs, ys = exp[f"{name}.xs"], exp[f"{name}.ys"]
    path = FORMAT2 / f"{name}.ernn"
    assert edgernn.read_manifest(path)["format_version"] == "2.0"
    model = edgernn.load(path)
    got = model.stream().run(xs)
    np.testing.assert_allclose(got, ys, atol=1e-5, rtol=0)
    edgernn.save(model, tmp_path / "again.ernn")
    assert edgernn.read_manifest(tmp_path / "again.ernn")["format_version"] == "2.0"
    np.testing.assert_array_equal(edgernn.load(tmp_path / "again.ernn").stream().run(xs), got)
