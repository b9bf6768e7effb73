"""Read a ``.tflite`` flatbuffer into plain Python objects.

The generated schema module is imported lazily, from ``ai_edge_litert``
(``ai-edge-litert``), else from ``tflite_runtime`` or TensorFlow's copy.
Only what the converter needs is read: tensors (name, shape, dtype, constant
data as numpy, ``is_variable``), operators (name, inputs, outputs, options)
and subgraphs.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from importlib import import_module

import numpy as np

from edgernn.errors import ModelFormatError

from ..common.guard import naming
from .verify import verify

_SCHEMA_MODULES = ("ai_edge_litert.schema_py_generated",
                   "tflite_runtime.schema_py_generated",
                   "tensorflow.lite.python.schema_py_generated")

#: TensorType code -> numpy dtype (the ones a float model or its int8 variant holds)
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64,
           6: np.bool_, 7: np.int16, 9: np.int8, 10: np.float64}


def schema():
    """The generated flatbuffer schema module (raises ImportError naming the options)."""
    for name in _SCHEMA_MODULES:
        try:
            return import_module(name)
        except ImportError:
            continue
    raise ImportError("reading .tflite needs the LiteRT flatbuffer schema: "
                      "pip install ai-edge-litert (or tflite-runtime)")


@dataclass
class Tensor:
    """One tensor of a subgraph; ``data`` is None unless it is a constant."""

    index: int
    name: str
    shape: tuple
    dtype: type
    type_code: int
    is_variable: bool
    data: np.ndarray | None = None
    #: quantisation (None when the tensor has none): float32 scales, int64 zero
    #: points (one each, or one per slice along ``quantized_dimension``)
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dimension: int = 0
    #: the shape with -1 on dynamic axes (None when the file gives none)
    shape_signature: tuple | None = None

    @property
    def is_float(self) -> bool:
        return self.type_code == 0

    @property
    def is_quantized(self) -> bool:
        """An integer tensor standing for real values ``(q - zero_point) * scale``."""
        return self.scale is not None and self.type_code in (2, 3, 7, 9)

    def real(self) -> np.ndarray | None:
        """Constant data as real values (dequantised when quantised)."""
        if self.data is None or not self.is_quantized:
            return self.data
        shape = [1] * self.data.ndim
        if self.scale.size > 1:
            shape[self.quantized_dimension] = -1
        s = self.scale.astype(np.float64).reshape(shape)
        z = self.zero_point.astype(np.float64).reshape(shape)
        return ((self.data.astype(np.float64) - z) * s).astype(np.float32)


@dataclass
class Op:
    """One operator: ``inputs``/``outputs`` are tensor indices (-1: absent)."""

    index: int
    name: str
    inputs: list
    outputs: list
    options: object = None

    def opt(self, getter: str, default=None):
        """An option value by the schema's getter name, e.g. ``"FusedActivationFunction"``
        (ModelFormatError naming the operator if the file's bytes cannot give it)."""
        if self.options is None or not hasattr(self.options, getter):
            return default
        try:
            value = getattr(self.options, getter)()
            if isinstance(value, bytes):
                value.decode()
            return value
        except (struct.error, IndexError, ValueError, TypeError) as exc:
            raise ModelFormatError(f"{self}: option {getter} is unreadable "
                                   f"({type(exc).__name__}: {exc})") from None

    def __str__(self) -> str:
        return f"{self.name} (operator {self.index})"


@dataclass
class Subgraph:
    index: int
    name: str
    tensors: list
    ops: list
    inputs: list
    outputs: list
    producer: dict = field(default_factory=dict)
    consumers: dict = field(default_factory=dict)

    def __post_init__(self):
        for op in self.ops:
            for t in op.outputs:
                self.producer[t] = op
            for t in op.inputs:
                if t >= 0:
                    self.consumers.setdefault(t, []).append(op)

    def const(self, t: int):
        """Constant data of tensor ``t`` as real values (quantised constants
        dequantised; None if it is computed or absent)."""
        return None if t < 0 else self.tensors[t].real()


@dataclass
class TFLiteModel:
    """``io_names``: tensor index -> name in the main subgraph's signature (inputs
    and outputs as the source model named them, e.g. Keras layer names)."""

    subgraphs: list
    sha256: str
    version: int
    io_names: dict = field(default_factory=dict)


def read_tflite(buf: bytes) -> TFLiteModel:
    """Parse a flatbuffer; ModelFormatError if it is not a TFLite model."""
    S = schema()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelFormatError(f"not a TFLite flatbuffer: expected identifier b'TFL3' at "
                               f"bytes 4..8, got {bytes(buf[4:8])!r}")
    verify(buf)  # every offset, length, index and enum below is inside the file
    m = S.Model.GetRootAsModel(buf, 0)
    op_names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    opt_names = {v: k for k, v in vars(S.BuiltinOptions).items() if not k.startswith("_")}
    codes = []
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        custom = oc.CustomCode()
        codes.append(custom.decode() if code == S.BuiltinOperator.CUSTOM and custom
                     else op_names.get(code, f"BUILTIN_{code}"))
    subgraphs = []
    for si in range(m.SubgraphsLength()):
        with naming(f"subgraph {si}"):
            subgraphs.append(_subgraph(S, m, si, buf, codes, opt_names))
    return TFLiteModel(subgraphs, hashlib.sha256(buf).hexdigest(), m.Version(),
                       _signature_names(m))


def _subgraph(S, m, si, buf, codes, opt_names) -> Subgraph:
    sg = m.Subgraphs(si)
    tensors = []
    for t in range(sg.TensorsLength()):
        with naming(f"subgraph {si}, tensor {t}"):
            tensors.append(_tensor(m, sg.Tensors(t), t, buf))
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        ops.append(Op(i, codes[op.OpcodeIndex()], _ints(op.InputsAsNumpy(), op.InputsLength()),
                      _ints(op.OutputsAsNumpy(), op.OutputsLength()),
                      _options(S, op, opt_names)))
    name = sg.Name().decode() if sg.Name() else f"subgraph{si}"
    return Subgraph(si, name, tensors, ops, _ints(sg.InputsAsNumpy(), sg.InputsLength()),
                    _ints(sg.OutputsAsNumpy(), sg.OutputsLength()))


def _signature_names(m) -> dict:
    """Tensor index -> signature name of subgraph 0's inputs and outputs."""
    out = {}
    for k in range(m.SignatureDefsLength() if hasattr(m, "SignatureDefsLength") else 0):
        sd = m.SignatureDefs(k)
        if sd.SubgraphIndex() != 0:
            continue
        for get, n in ((sd.Inputs, sd.InputsLength()), (sd.Outputs, sd.OutputsLength())):
            for i in range(n):
                t = get(i)
                if t.Name():
                    out.setdefault(int(t.TensorIndex()), t.Name().decode())
    return out


def _ints(arr, n) -> list:
    return [int(v) for v in arr] if n else []


def _options(S, op, opt_names):
    kind = op.BuiltinOptionsType()
    table = op.BuiltinOptions()
    if not kind or table is None:
        return None
    cls = getattr(S, opt_names.get(kind, ""), None)
    if cls is None:
        return None
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    return obj


def _tensor(m, t, index, buf) -> Tensor:
    shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    code = t.Type()
    dtype = _DTYPES.get(code)
    data = None
    b = m.Buffers(t.Buffer()) if t.Buffer() < m.BuffersLength() else None
    if b is not None and dtype is not None:
        raw = None
        if b.DataLength():
            raw = b.DataAsNumpy().tobytes()
        elif hasattr(b, "Offset") and b.Offset() > 1:
            raw = bytes(buf[b.Offset():b.Offset() + b.Size()])
        if raw:
            data = np.frombuffer(raw, dtype=dtype).reshape(shape)
    scale = zp = None
    qdim = 0
    q = t.Quantization()
    if q is not None and q.ScaleLength():
        scale = q.ScaleAsNumpy().astype(np.float32)
        zp = (q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength()
              else np.zeros(scale.size, np.int64))
        qdim = int(q.QuantizedDimension())
    sig = tuple(int(v) for v in t.ShapeSignatureAsNumpy()) \
        if hasattr(t, "ShapeSignatureLength") and t.ShapeSignatureLength() else None
    return Tensor(index, t.Name().decode() if t.Name() else f"t{index}", shape, dtype, code,
                  bool(t.IsVariable()), data, scale, zp, qdim, sig)
