"""Small ``.tflite`` flatbuffers built or edited with LiteRT's generated schema
(object API), for tests of ops no committed fixture holds. LiteRT itself runs
them as the reference."""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as S


def _pack(model) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _opcode(model, name: str) -> int:
    code = getattr(S.BuiltinOperator, name)
    for k, oc in enumerate(model.operatorCodes):
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
            return k
    oc = S.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _tensor(model, sg, name, shape, data=None) -> int:
    buf = S.BufferT()
    if data is not None:
        buf.data = np.ascontiguousarray(data, np.float32).view(np.uint8).reshape(-1).tolist()
    model.buffers.append(buf)
    t = S.TensorT()
    t.shape, t.type, t.buffer, t.name = list(shape), 0, len(model.buffers) - 1, name.encode()
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _options(name: str, fused: int = 0):
    if name == "L2_NORMALIZATION":
        o = S.L2NormOptionsT()
        o.fusedActivationFunction = fused
        return S.BuiltinOptions.L2NormOptions, o
    if name == "LOG_SOFTMAX":
        return S.BuiltinOptions.LogSoftmaxOptions, S.LogSoftmaxOptionsT()
    o = S.FullyConnectedOptionsT()
    o.keepNumDims = True
    return S.BuiltinOptions.FullyConnectedOptions, o


def _op(model, sg, name, inputs, outputs, fused=0):
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = _opcode(model, name), inputs, outputs
    op.builtinOptionsType, op.builtinOptions = _options(name, fused)
    sg.operators.append(op)


def append_op(buf: bytes, name: str, fused: int = 0) -> bytes:
    """``buf`` with op ``name`` applied to its (only) output, which it replaces."""
    model = S.ModelT.InitFromPackedBuf(buf, 0)
    sg = model.subgraphs[0]
    src = sg.outputs[0]
    dst = _tensor(model, sg, f"{name.lower()}_out", sg.tensors[src].shape)
    _op(model, sg, name, [src], [dst], fused)
    sg.outputs = [dst]
    return _pack(model)


def dense_model(weight, bias, t: int) -> bytes:
    """``float32[1, t, in] -> FULLY_CONNECTED(weight[out, in], bias)``."""
    model = S.ModelT()
    model.version, model.buffers, model.operatorCodes = 3, [S.BufferT()], []
    sg = S.SubGraphT()
    sg.tensors, sg.operators = [], []
    x = _tensor(model, sg, "x", (1, t, weight.shape[1]))
    w = _tensor(model, sg, "w", weight.shape, weight)
    b = _tensor(model, sg, "b", bias.shape, bias)
    y = _tensor(model, sg, "y", (1, t, weight.shape[0]))
    _op(model, sg, "FULLY_CONNECTED", [x, w, b], [y])
    sg.inputs, sg.outputs = [x], [y]
    model.subgraphs = [sg]
    return _pack(model)


#: op -> its BuiltinOptions table (ops without one take none)
_OPTIONS = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
            "PAD": "PadOptions", "PADV2": "PadV2Options", "MIRROR_PAD": "MirrorPadOptions",
            "MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_MAX": "ReducerOptions",
            "SQUEEZE": "SqueezeOptions", "EXPAND_DIMS": "ExpandDimsOptions",
            "RESHAPE": "ReshapeOptions", "ADD": "AddOptions", "SUB": "SubOptions",
            "MUL": "MulOptions", "DIV": "DivOptions",
            "SQUARED_DIFFERENCE": "SquaredDifferenceOptions",
            "FULLY_CONNECTED": "FullyConnectedOptions",
            "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
            "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions",
            "GELU": "GeluOptions", "LEAKY_RELU": "LeakyReluOptions",
            "TRANSPOSE": "TransposeOptions", "BATCH_MATMUL": "BatchMatMulOptions",
            "CONCATENATION": "ConcatenationOptions", "STRIDED_SLICE": "StridedSliceOptions",
            "MAXIMUM": "MaximumMinimumOptions", "MINIMUM": "MaximumMinimumOptions",
            "POW": "PowOptions", "SPLIT": "SplitOptions", "PACK": "PackOptions",
            "UNPACK": "UnpackOptions", "ABS": "AbsOptions", "HARD_SWISH": "HardSwishOptions",
            "RSQRT": None, "SQRT": None, "LOG": None, "EXP": None, "NEG": "NegOptions",
            "LOGISTIC": None, "TANH": None, "RELU": None, "RELU6": None, "PRELU": None,
            "RELU_N1_TO_1": None, "SOFTMAX": "SoftmaxOptions",
            "LOG_SOFTMAX": "LogSoftmaxOptions", "L2_NORMALIZATION": "L2NormOptions"}


class Graph:
    """A one-subgraph float model written op by op, laid out as LiteRT's converter
    lays Keras layers out; ``build`` gives the flatbuffer.

    >>> g = Graph(); x = g.input("x", (1, 5, 3))
    >>> y = g.op("RELU", [x], (1, 5, 3)); buf = g.build([x], [y])
    """

    def __init__(self):
        self.model = S.ModelT()
        self.model.version, self.model.buffers, self.model.operatorCodes = 3, [S.BufferT()], []
        self.sg = S.SubGraphT()
        self.sg.tensors, self.sg.operators = [], []
        self._n = 0

    def tensor(self, name, shape, data=None, dtype=np.float32, variable=False) -> int:
        buf = S.BufferT()
        if data is not None:
            buf.data = np.ascontiguousarray(data, dtype).view(np.uint8).reshape(-1).tolist()
        self.model.buffers.append(buf)
        t = S.TensorT()
        t.shape, t.buffer, t.name = list(shape), len(self.model.buffers) - 1, name.encode()
        t.type = {np.float32: S.TensorType.FLOAT32, np.int32: S.TensorType.INT32}[dtype]
        t.isVariable = variable
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def input(self, name, shape, dtype=np.float32) -> int:
        return self.tensor(name, shape, dtype=dtype)

    def const(self, data, dtype=np.float32) -> int:
        data = np.asarray(data, dtype)
        self._n += 1
        return self.tensor(f"c{self._n}", data.shape, data, dtype)

    def ints(self, values) -> int:
        return self.const(np.asarray(values), np.int32)

    def op(self, name, inputs, out_shape, name_out=None, outputs=None, **options):
        """Op ``name`` on tensor indices ``inputs`` (-1: absent); its options by the
        schema's field names (``padding=1``, ``strideW=2``, ``keepDims=True``, ...).
        Returns the output tensor (or the given ``outputs``)."""
        if outputs is None:
            self._n += 1
            outputs = [self.tensor(name_out or f"{name.lower()}{self._n}", out_shape)]
        op = S.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = _opcode(self.model, name), list(inputs), outputs
        table = _OPTIONS.get(name)
        if table:
            o = getattr(S, table + "T")()
            for k, v in options.items():
                setattr(o, k, v)
            op.builtinOptionsType, op.builtinOptions = getattr(S.BuiltinOptions, table), o
        self.sg.operators.append(op)
        return outputs[0] if len(outputs) == 1 else outputs

    def build(self, inputs, outputs) -> bytes:
        self.sg.inputs, self.sg.outputs = list(inputs), list(outputs)
        self.model.subgraphs = [self.sg]
        return _pack(self.model)


class LiteRT:
    """LiteRT's interpreter (builtin kernels, one thread) on ``buf``; a call with the
    inputs in order gives the outputs in order."""

    def __init__(self, buf: bytes):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.it = Interpreter(model_content=buf, num_threads=1,
                              experimental_op_resolver_type=OpResolverType.
                              BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self.it.allocate_tensors()
        self.ins, self.outs = self.it.get_input_details(), self.it.get_output_details()

    def __call__(self, *feeds) -> list:
        for d, x in zip(self.ins, feeds, strict=True):
            self.it.set_tensor(d["index"], np.ascontiguousarray(x, d["dtype"]))
        self.it.invoke()
        return [self.it.get_tensor(d["index"]).copy() for d in self.outs]
