"""Check an ONNX graph before the walker trusts any of it.

``onnx.load`` parses the protobuf but checks nothing a protobuf does not: a
tensor whose ``dims`` disagree with its data, an unknown ``data_type``, an
attribute of the wrong type (``hidden_size`` as a string), two graph inputs of
one name. :func:`check_graph` refuses each of these with a
:class:`~edgernn.errors.ModelFormatError` naming the initialiser, node or
input, before any tensor is decoded:

- every tensor (initialisers, ``Constant`` values, any tensor attribute): a
  ``data_type`` edgernn can read, dims ``>= 0`` with at most
  :data:`MAX_ELEMENTS` elements, and exactly as many stored values as the
  dims say (``raw_data`` bytes or the typed field), no external data left
  unresolved;
- every attribute: a known type, and the type the op's ONNX schema gives it
  (at the model's opset);
- names: graph inputs, initialisers and node outputs each unique (a value is
  produced once: SSA).
"""

from __future__ import annotations

import math

import numpy as np
from onnx import AttributeProto, TensorProto, defs, helper

from edgernn.errors import ModelFormatError, UnsupportedOpError

#: at most this many elements in one tensor (a 2**31-element float32 tensor is 8 GiB)
MAX_ELEMENTS = 1 << 28

#: data_type -> (numpy dtype, TensorProto field holding non-raw data, values per element)
_READABLE = {
    TensorProto.FLOAT: (np.float32, "float_data", 1),
    TensorProto.UINT8: (np.uint8, "int32_data", 1),
    TensorProto.INT8: (np.int8, "int32_data", 1),
    TensorProto.UINT16: (np.uint16, "int32_data", 1),
    TensorProto.INT16: (np.int16, "int32_data", 1),
    TensorProto.INT32: (np.int32, "int32_data", 1),
    TensorProto.INT64: (np.int64, "int64_data", 1),
    TensorProto.BOOL: (np.bool_, "int32_data", 1),
    TensorProto.FLOAT16: (np.float16, "int32_data", 1),
    TensorProto.DOUBLE: (np.float64, "double_data", 1),
    TensorProto.UINT32: (np.uint32, "uint64_data", 1),
    TensorProto.UINT64: (np.uint64, "uint64_data", 1),
    TensorProto.BFLOAT16: (np.uint16, "int32_data", 1),
}
_KNOWN_ATTR_TYPES = frozenset(AttributeProto.AttributeType.values()) - {0}


def _type_name(code: int, enum) -> str:
    try:
        return enum.Name(code)
    except ValueError:
        return str(code)


def check_tensor(t, what: str) -> None:
    """Refuse a TensorProto that cannot be decoded to exactly its dims.

    Parameters
    ----------
    t : onnx.TensorProto
    what : str
        How the error names it, e.g. ``"initializer 'W'"``.
    """
    code = t.data_type
    if code not in _READABLE:
        if code in TensorProto.DataType.values() and code != TensorProto.UNDEFINED:
            raise UnsupportedOpError(f"{what}: data_type "
                                     f"{_type_name(code, TensorProto.DataType)} is not "
                                     f"supported (numeric types only)")
        raise ModelFormatError(f"{what}: data_type {code} is not an ONNX tensor type")
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        raise ModelFormatError(f"{what}: dims {dims} hold a negative size")
    n = math.prod(dims)
    if n > MAX_ELEMENTS:
        raise ModelFormatError(f"{what}: dims {dims} hold {n} elements, more than the "
                               f"{MAX_ELEMENTS} allowed")
    if t.data_location == TensorProto.EXTERNAL:
        raise ModelFormatError(f"{what}: its data is external and was not loaded (give "
                               f"the path of the .onnx file, next to its data files)")
    dtype, field, per = _READABLE[code]
    if t.HasField("raw_data"):
        have, need = len(t.raw_data), n * np.dtype(dtype).itemsize
        if have != need:
            raise ModelFormatError(f"{what}: dims {dims} of "
                                   f"{_type_name(code, TensorProto.DataType)} need {need} "
                                   f"bytes of raw_data, got {have}")
        return
    have = len(getattr(t, field))
    if have != n * per:
        raise ModelFormatError(f"{what}: dims {dims} need {n * per} values in {field}, "
                               f"got {have}")


def _schema_types(node, opset: int) -> dict:
    """Attribute name -> AttributeProto type code from the op's ONNX schema ({}
    when ONNX has no schema for it, e.g. com.microsoft ops)."""
    domain = "" if node.domain == "ai.onnx" else node.domain
    try:
        schema = defs.get_schema(node.op_type, opset, domain)
    except Exception:  # onnx raises SchemaError for ops it does not know
        return {}
    return {name: int(a.type) for name, a in schema.attributes.items()}


def check_node(node, opset: int, desc: str) -> None:
    """Refuse attributes of unknown type, of the wrong type for the op, or twice."""
    want = _schema_types(node, opset)
    seen = set()
    for a in node.attribute:
        if a.name in seen:
            raise ModelFormatError(f"{desc}: attribute {a.name!r} appears twice")
        seen.add(a.name)
        if a.type not in _KNOWN_ATTR_TYPES:
            raise ModelFormatError(f"{desc}: attribute {a.name!r} has type {a.type}, not an "
                                   f"ONNX attribute type")
        if a.name in want and want[a.name] != a.type:
            raise ModelFormatError(
                f"{desc}: attribute {a.name!r} must be "
                f"{_type_name(want[a.name], AttributeProto.AttributeType)}, got "
                f"{_type_name(a.type, AttributeProto.AttributeType)} "
                f"{_short(helper.get_attribute_value(a))}")
        if a.type == AttributeProto.TENSOR:
            check_tensor(a.t, f"{desc}: attribute {a.name!r}")
        for k, t in enumerate(a.tensors):
            check_tensor(t, f"{desc}: attribute {a.name!r}[{k}]")
        if a.type in (AttributeProto.STRING, AttributeProto.STRINGS):
            for s in ([a.s] if a.type == AttributeProto.STRING else a.strings):
                try:
                    s.decode()
                except UnicodeDecodeError:
                    raise ModelFormatError(f"{desc}: attribute {a.name!r} is not UTF-8 text: "
                                           f"{_short(s)}") from None


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def check_graph(graph, opset: int, node_desc) -> None:
    """Run every check above on ``graph``; ``node_desc(node)`` names a node."""
    inputs = [vi.name for vi in graph.input]
    _unique(inputs, "graph input")
    _unique([t.name for t in graph.initializer], "initializer")
    for t in graph.initializer:
        check_tensor(t, f"initializer {t.name!r}")
    produced = set(inputs) | {t.name for t in graph.initializer}
    for node in graph.node:
        desc = node_desc(node)
        check_node(node, opset, desc)
        for o in node.output:
            if not o:
                continue
            if o in produced:
                raise ModelFormatError(f"{desc}: output {o!r} is already a graph input, an "
                                       f"initializer or another node's output (each value "
                                       f"is produced once)")
            produced.add(o)


def _unique(names, what: str) -> None:
    seen = set()
    for n in names:
        if n in seen:
            raise ModelFormatError(f"{what} {n!r} appears twice; each name must be unique")
        seen.add(n)


__all__ = ["check_graph", "check_node", "check_tensor", "MAX_ELEMENTS"]
