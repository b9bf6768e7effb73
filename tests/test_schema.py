"""edgernn.format.schema: strict types and ranges, no unknown keys, no coercion; format
1.0 files pass."""

import copy
import json
import zipfile
from pathlib import Path

import pytest

from edgernn.errors import ModelFormatError
from edgernn.format import schema

V1 = sorted((Path(__file__).parent / "data" / "format1").glob("*.ernn"))


def _manifest(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def test_every_file_written_by_release_0_1_0_passes():
    assert len(V1) == 4
    for path in V1:
        schema.check(schema.MANIFEST_V1, _manifest(path))


def _set(man, keys, value):
    obj = man
    for k in keys[:-1]:
        obj = obj[k]
    if value is KeyError:
        del obj[keys[-1]]
    else:
        obj[keys[-1]] = value


@pytest.mark.parametrize("keys,value,match", [
    (["producer"], "someone", r"manifest.producer: expected an object, got 'someone'"),
    (["producer", "name"], 7, r"manifest.producer.name: expected a string"),
    (["quantization"], {"mode": "int8"}, r"manifest.quantization: expected null"),
    (["surprise"], 1, r"manifest: unknown key 'surprise'"),
    (["model", "num_tokens"], True, r"manifest.model.num_tokens: expected an integer"),
    (["model", "input_size"], 42.0, r"manifest.model.input_size: expected an integer"),
    (["model", "input_size"], "42", r"manifest.model.input_size: expected an integer"),
    (["model", "output_size"], -1, r"in \[0, 2147483648\], got -1"),
    (["model", "return_sequences"], "false", r"return_sequences: expected true or false"),
    (["model", "input_size"], KeyError, r"manifest.model lacks 'input_size'"),
    (["format"], "onnx", r"manifest.format: expected one of \['edgernn'\]"),
    (["format_version"], "2.0", r"format_version: expected a string matching"),
    (["layers"], [], r"manifest.layers: expected a list of 1 to"),
    (["layers", 0, "type"], "Conv 9D", r"manifest.layers\[0\].type: expected a string matching"),
    (["layers", 0, "extra"], 1, r"manifest.layers\[0\]: unknown key 'extra'"),
    (["layers", 0, "arrays", "weight_hh"], 3, r"layers\[0\].arrays\['weight_hh'\]"),
    (["arrays", "0.weight_hh", "shape"], [288, 96.0], r"arrays\['0.weight_hh'\].shape\[1\]"),
    (["arrays", "0.weight_hh", "shape"], [1] * 9, r"shape: expected a list of 0 to 8"),
    (["arrays", "0.weight_hh", "dtype"], "float64", r"dtype: expected one of"),
    (["arrays", "0.weight_hh", "sha256"], "ABC", r"sha256: expected a string matching"),
    (["model", "initial_state"], [["0.h"]],
     r"initial_state: expected null, got .*; or manifest.model.initial_state\[0\]: expected "
     r"a list of 2 to 2"),
    (["provenance"], [1, 2], r"manifest.provenance: expected an object"),
])
def test_tampered_fields_are_named(keys, value, match):
    man = copy.deepcopy(_manifest(V1[0]))
    _set(man, keys, value)
    with pytest.raises(ModelFormatError, match=match):
        schema.check(schema.MANIFEST_V1, man)


def test_numbers_and_either():
    schema.check(schema.Float(0, 1), 1)          # an integer where a float is expected
    for bad in (True, float("nan"), 1.5, "0.5"):
        with pytest.raises(ModelFormatError):
            schema.check(schema.Float(0, 1), bad, "x")
    opt = schema.either(schema.Null(), schema.Int(0, 3))
    schema.check(opt, None)
    schema.check(opt, 2)
    with pytest.raises(ModelFormatError, match=r"x: expected null, got 4; or expected an integer"):
        schema.check(opt, 4, "x")


@pytest.fixture(scope="module")
def v2_manifest(tmp_path_factory):
    import numpy as np

    import edgernn

    rng = np.random.default_rng(0)
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    x = edgernn.Input(3, name="x")
    g = edgernn.GRU(r(18, 3), r(18, 6))(x, name="gru")
    y = edgernn.Dense(r(2, 6), activation="sigmoid")(g, name="y")
    path = tmp_path_factory.mktemp("v2") / "m.ernn"
    edgernn.Model(inputs=x, outputs=y).save(path)
    man = _manifest(path)
    assert man["format_version"] == "2.0"
    return man


@pytest.mark.parametrize("keys,value,match", [
    (["surprise"], 1, r"manifest: unknown key 'surprise'"),
    (["quantization"], [1], r"manifest.quantization: expected null, got \[1\]; or expected an "
                            r"object"),
    (["graph", "inputs", 0, "size"], 0, r"manifest.graph.inputs\[0\].size: expected an integer"),
    (["graph", "nodes", 0, "inputs"], [7], r"manifest.graph.nodes\[0\].inputs\[0\]: expected a "),
    (["graph", "nodes", 0, "extra"], 1, r"manifest.graph.nodes\[0\]: unknown key 'extra'"),
    (["graph", "outputs"], "y", r"manifest.graph.outputs: expected a list"),
    (["graph", "edges"], [], r"manifest.graph: unknown key 'edges'"),
    (["format_version"], "1.0", r"format_version: expected a string matching"),
    (["model", "return_sequences"], KeyError, r"manifest.model lacks 'return_sequences'"),
])
def test_format_2_fields_are_checked(v2_manifest, keys, value, match):
    schema.check(schema.MANIFEST_V2, v2_manifest)
    man = copy.deepcopy(v2_manifest)
    _set(man, keys, value)
    with pytest.raises(ModelFormatError, match=match):
        schema.check(schema.MANIFEST_V2, man)
