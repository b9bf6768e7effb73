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
