"""Malformed source models: each is refused with one edgernn error naming the
node, initialiser or table, and ``edgernn convert`` says so in one line, exit 2.

The ONNX cases are the reproducers of issue #21 (a mutated model that ended in
a traceback, or converted to the wrong model); the TFLite and Keras cases are
truncations and edits of real files. ``bench/fuzz_converters.py`` (and
``tests/test_fuzz_converters.py``) try thousands more.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from converters.onnx import from_onnx
from edgernn.errors import ModelFormatError

from .naive_onnx import recurrent_model

ROOT = Path(__file__).resolve().parents[1]


def _lstm():
    m = recurrent_model("LSTM", np.random.default_rng(0), outputs=("Y",))
    m.graph.node[0].name = "lstm"
    return m


def _init(m, name):
    return next(t for t in m.graph.initializer if t.name == name)


def _cli(path: Path):
    out = subprocess.run([sys.executable, "-m", "edgernn", "convert", str(path), "-o",
                          str(path.with_suffix(".ernn"))], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    return out.returncode, out.stderr.strip().splitlines()


def test_onnx_initializer_dims_that_disagree_with_its_data_name_the_initializer():
    m = _lstm()
    del _init(m, "W").dims[:]
    _init(m, "W").dims.extend([1, 16, 4])  # holds 1 * 16 * 3 floats
    with pytest.raises(ModelFormatError, match=r"initializer 'W': dims \[1, 16, 4\] of FLOAT "
                                               r"need 256 bytes of raw_data, got 192"):
        from_onnx(m)


def test_onnx_typed_data_shorter_than_its_dims_names_the_initializer():
    m = _lstm()
    b = _init(m, "B")
    b.ClearField("raw_data")
    b.float_data.extend([0.5] * 7)  # dims [1, 32]
    with pytest.raises(ModelFormatError, match=r"initializer 'B': dims \[1, 32\] need 32 "
                                               r"values in float_data, got 7"):
        from_onnx(m)


def test_onnx_unknown_data_type_names_the_initializer():
    m = _lstm()
    _init(m, "R").data_type = 999
    with pytest.raises(ModelFormatError, match="initializer 'R': data_type 999 is not an ONNX "
                                               "tensor type"):
        from_onnx(m)


def test_onnx_transpose_perm_out_of_range_names_the_node():
    m = _lstm()
    g = m.graph
    g.input[0].CopyFrom(helper.make_tensor_value_info("Xb", TensorProto.FLOAT, ["N", "T", 3]))
    g.node.insert(0, helper.make_node("Transpose", ["Xb"], ["X"], name="to_time_major",
                                      perm=[1, 0, 5]))
    with pytest.raises(ModelFormatError, match=r"Transpose node 'to_time_major': perm "
                                               r"\[1, 0, 5\] is not a permutation"):
        from_onnx(m)


def test_onnx_attribute_of_the_wrong_type_names_the_node_and_attribute():
    m = _lstm()
    node = m.graph.node[0]
    att = next(a for a in node.attribute if a.name == "hidden_size")
    att.CopyFrom(helper.make_attribute("hidden_size", "4"))
    with pytest.raises(ModelFormatError, match="LSTM node 'lstm': attribute 'hidden_size' must "
                                               "be INT, got STRING b'4'"):
        from_onnx(m)


def test_onnx_duplicate_graph_input_name_is_refused_not_converted_at_another_size():
    m = _lstm()
    m.graph.input.append(helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", 7]))
    with pytest.raises(ModelFormatError, match="graph input 'X' appears twice"):
        from_onnx(m)


def test_onnx_node_output_that_overwrites_an_initializer_is_refused():
    m = _lstm()
    m.graph.node[0].output[0] = "W"
    with pytest.raises(ModelFormatError, match="LSTM node 'lstm': output 'W' is already"):
        from_onnx(m)


def test_onnx_constant_value_with_lying_dims_names_the_node():
    m = _lstm()
    t = numpy_helper.from_array(np.zeros(4, np.float32), "v")
    t.dims[0] = 1 << 40
    m.graph.node.insert(0, helper.make_node("Constant", [], ["k"], name="konst", value=t))
    with pytest.raises(ModelFormatError, match="Constant node 'konst': attribute 'value': dims "
                                               r"\[1099511627776\] hold"):
        from_onnx(m)


@pytest.mark.parametrize("case", ["dims", "perm", "string_attr", "dup_input"])
def test_cli_convert_of_a_malformed_onnx_is_one_line_and_exit_2(tmp_path, case):
    m = _lstm()
    if case == "dims":
        _init(m, "W").dims[1] = 17
    elif case == "perm":
        m.graph.input[0].name = "Xb"
        m.graph.node.insert(0, helper.make_node("Transpose", ["Xb"], ["X"], name="t",
                                                perm=[1, 0, 5]))
    elif case == "string_attr":
        att = next(a for a in m.graph.node[0].attribute if a.name == "hidden_size")
        att.CopyFrom(helper.make_attribute("hidden_size", "4"))
    else:
        m.graph.input.append(helper.make_tensor_value_info("X", TensorProto.FLOAT,
                                                           ["T", "N", 7]))
    path = tmp_path / "bad.onnx"
    onnx.save(m, path)
    code, err = _cli(path)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("edgernn: error: ") and "bad.onnx" in err[0], err
    assert not path.with_suffix(".ernn").exists()



# --- TFLite: the flatbuffer is walked, checked, before it is read ----------------------
TFLITE = ROOT / "tests" / "data" / "tflite" / "gru_seq.tflite"


@pytest.mark.parametrize("keep", [12, 200, 4240, -2])
def test_tflite_truncated_file_names_the_table_past_the_end(tmp_path, keep):
    from converters import from_tflite

    data = TFLITE.read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[:keep])
    with pytest.raises(ModelFormatError, match=r"^(model|operator code|buffer|subgraph)[^:]*: "
                                               r"\d+ bytes at offset \d+ lie outside the "
                                               rf"{len(data[:keep])}-byte file"):
        from_tflite(path)


def test_tflite_string_that_is_not_utf8_names_its_table(tmp_path):
    from converters import from_tflite

    data = bytearray(TFLITE.read_bytes())
    data[data.find(b"serving_default") + 3] = 0xFF
    path = tmp_path / "name.tflite"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match=r"signature 0 \(key\): not UTF-8 text"):
        from_tflite(path)


def test_tflite_tensor_index_out_of_range_names_the_operator(tmp_path):
    from ai_edge_litert import schema_py_generated as S

    from converters import from_tflite

    from .tflite_build import _pack

    model = S.ModelT.InitFromPackedBuf(TFLITE.read_bytes(), 0)
    op = model.subgraphs[0].operators[0]
    op.inputs = [999, *list(op.inputs)[1:]]
    path = tmp_path / "index.tflite"
    path.write_bytes(_pack(model))
    with pytest.raises(ModelFormatError, match=r"subgraph 0, operator 0: inputs name tensor "
                                               r"999; the subgraph has \d+ tensors"):
        from_tflite(path)


# --- Keras: bounded JSON, shapes checked, HDF5 read in a child --------------------------
def _h5_with_config(tmp_path, config: bytes):
    import h5py

    path = tmp_path / "m.h5"
    path.write_bytes((ROOT / "tests" / "data" / "keras" / "lstm.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = config
    return path


@pytest.mark.parametrize("config,words", [
    (b"[" * 100_000, "not a JSON config (RecursionError"),
    (b"{\"class_name\": \"Sequential\"", "not a JSON config (JSONDecodeError"),
    (b"[1, 2]", "expected a JSON object, got list"),
    (b"{\"class_name\": \"Sequential\", \"config\": {\"layers\": 5}}", "a 'layers' list"),
    (b"{\"class_name\": \"Sequential\", \"config\": {\"layers\": [7]}}",
     "a layer config must be an object"),
])
def test_keras_malformed_model_config_names_the_file_and_what_was_expected(tmp_path, config,
                                                                             words):
    from converters import from_keras

    with pytest.raises(ModelFormatError, match=r"m\.h5: .*" + words.replace("(", r"\(")):
        from_keras(_h5_with_config(tmp_path, config))


@pytest.mark.parametrize("fmt", ["tflite", "keras"])
def test_cli_convert_of_a_truncated_tflite_or_keras_file_is_one_line_and_exit_2(tmp_path, fmt):
    src = TFLITE if fmt == "tflite" else ROOT / "tests" / "data" / "keras" / "lstm.h5"
    path = tmp_path / ("cut" + src.suffix)
    path.write_bytes(src.read_bytes()[:len(src.read_bytes()) * 2 // 3])
    code, err = _cli(path)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("edgernn: error: ") and path.name in err[0], err
    assert not path.with_suffix(".ernn").exists()
