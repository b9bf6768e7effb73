"""TFLite graphs whose recurrent state is a graph input/output pair (DTLN's
``[1, 2, 128, 2]``: layer, unit, h/c), fed back by hand in LiteRT.

``from_tflite(path, states={"input_3": "Identity_1"})`` walks the main subgraph
op by op with shaped values. A data value is an array of *places*, one per
element (an int64 ``source * 2**32 + element``), over a list of sources: an
edgernn Tensor computed in the step, or a state input. Shape ops (RESHAPE,
SQUEEZE, EXPAND_DIMS, UNPACK, PACK, STRIDED_SLICE, SPLIT, a zero PAD) only move
places; an op that computes reads its operand as one Tensor: a whole source, a
contiguous part of one (``edgernn.Slice``) or, for a state input, one
``edgernn.state`` tensor per distinct set of places (named after them, e.g.
``input_3[0,1,:,0]``). The paired output's places give each state tensor its
new value (``Model(updates=)``), so an edgernn stream carries the state inside.

Computing ops: FULLY_CONNECTED and CONV_2D 1x1 on one pixel (Dense; int8 weights
with their own scales as LiteRT's hybrid kernels, see
:func:`.simple_ops.convert_fully_connected`), LOGISTIC, TANH, ADD, SUB, MUL,
SQUARED_DIFFERENCE (data with data, one value broadcasting over the features,
or with a constant), MEAN over the features, RSQRT.
"""

from __future__ import annotations

import numpy as np

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

from .merge_ops import _constant, _fused, _node
from .simple_ops import convert_fully_connected

_BIG = np.int64(1) << 32
SHAPE_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "UNPACK", "PACK", "STRIDED_SLICE", "SPLIT",
             "PAD"}
MATH_OPS = {"FULLY_CONNECTED", "CONV_2D", "LOGISTIC", "TANH", "ADD", "SUB", "MUL",
            "SQUARED_DIFFERENCE", "MEAN", "RSQRT"}
SUPPORTED = sorted(SHAPE_OPS | MATH_OPS)


class Walker:
    """The walk of subgraph ``sg``; ``apply(op, layers, x)`` applies converted layers
    (keeping int8 sources aside, see ``from_tflite``)."""

    def __init__(self, sg, apply):
        self.sg, self.apply = sg, apply
        self.srcs: list = []          # edgernn Tensor, or (input name, shape)
        self.values: dict = {}        # tensor index -> places (int64 array)
        self.slices: dict = {}        # (source, start, stop) -> Tensor
        self.state_reads: dict = {}   # (input name, places) -> edgernn.state tensor

    def source(self, src, shape) -> np.ndarray:
        """Places of a new source ``src`` laid out as ``shape``."""
        self.srcs.append(src)
        return len(self.srcs) - 1 << 32 | np.arange(int(np.prod(shape)),
                                                     dtype=np.int64).reshape(shape)

    def wrap(self, op, t, shape) -> np.ndarray:
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape)) != t.size:
            raise UnsupportedOpError(f"{op}: gives {t.size} values per step where the "
                                     f"file's output is {list(shape)}")
        return self.source(t, shape)

    def tensor(self, op, places):
        """The edgernn Tensor holding ``places`` in order."""
        flat = np.asarray(places).reshape(-1)
        srcs = np.unique(flat >> 32)
        if len(srcs) != 1:
            raise UnsupportedOpError(f"{op}: takes values gathered from {len(srcs)} tensors; "
                                     f"supported: parts of one")
        src, elem = self.srcs[int(srcs[0])], flat & (_BIG - 1)
        if isinstance(src, tuple):
            return self.state_read(src, elem)
        start, n = int(elem[0]), len(elem)
        if not np.array_equal(elem, np.arange(start, start + n)):
            raise UnsupportedOpError(f"{op}: takes values {elem[:4].tolist()}... of one "
                                     f"tensor out of order; supported: a contiguous part")
        if start == 0 and n == src.size:
            return src
        key = (int(srcs[0]), start, n)
        if key not in self.slices:
            self.slices[key] = _node(op, edgernn.Slice(start, start + n), src)
        return self.slices[key]

    def state_read(self, src, elem):
        """One ``edgernn.state`` tensor per distinct set of places of state input ``src``."""
        name, shape = src
        key = (name, tuple(int(e) for e in elem))
        if key not in self.state_reads:
            idx = np.unravel_index(elem, shape)
            label = []
            for ax, ix in enumerate(idx):
                u = np.unique(ix)
                label.append(str(u[0]) if len(u) == 1 else
                             ":" if len(u) == shape[ax] else "*")
            self.state_reads[key] = edgernn.state(len(elem), name=f"{name}[{','.join(label)}]")
        return self.state_reads[key]

    def arg(self, op, k):
        """Operand ``k`` of ``op``: places (data) or an array (constant)."""
        t = op.inputs[k]
        if t in self.values:
            return self.values[t]
        c = self.sg.const(t) if t >= 0 else None
        if c is None:
            raise UnsupportedOpError(f"{op} takes {self.sg.tensors[t].name!r}, which no input, "
                                     f"constant or supported op gives (supported: "
                                     f"{', '.join(SUPPORTED)})")
        return c

    def data(self, op, k):
        v = self.arg(op, k)
        if v.dtype != np.int64 or op.inputs[k] not in self.values:
            raise UnsupportedOpError(f"{op}: input {k} is a constant; supported: data")
        return v

    def out_shape(self, op, j=0):
        return tuple(int(d) for d in self.sg.tensors[op.outputs[j]].shape)

    def step(self, op):
        """Convert one op: its outputs' places into ``values``."""
        if op.name in SHAPE_OPS:
            outs = getattr(self, "_" + op.name.lower())(op)
        elif op.name in ("FULLY_CONNECTED", "CONV_2D"):
            outs = [self._dense(op)]
        elif op.name in ("LOGISTIC", "TANH", "RSQRT"):
            x = self.tensor(op, self.data(op, 0))
            layers = ([edgernn.Unary("sqrt"), edgernn.Unary("reciprocal")] if op.name == "RSQRT"
                      else [edgernn.Activation("sigmoid" if op.name == "LOGISTIC" else "tanh")])
            outs = [self.wrap(op, self.apply(op, layers, x), self.out_shape(op))]
        elif op.name == "MEAN":
            outs = [self._mean(op)]
        elif op.name in ("ADD", "SUB", "MUL", "SQUARED_DIFFERENCE"):
            outs = [self._binary(op)]
        else:
            raise UnsupportedOpError(f"operator {op.name} (index {op.index}) is not supported "
                                     f"in a graph with state inputs; supported: "
                                     f"{', '.join(SUPPORTED)}")
        for t, v in zip(op.outputs, outs, strict=True):
            self.values[t] = v

    # shape ops: places only move
    def _reshape(self, op):
        return [self.data(op, 0).reshape(self.out_shape(op))]

    _squeeze = _expand_dims = _reshape

    def _pad(self, op):
        pads = self.sg.const(op.inputs[1])
        if pads is None or np.any(pads):
            raise UnsupportedOpError(f"{op}: pads {None if pads is None else pads.tolist()}; "
                                     f"supported: all zero (no padding)")
        return [self.data(op, 0)]

    def _unpack(self, op):
        x = self.data(op, 0)
        return list(np.moveaxis(x, op.opt("Axis", 0) % x.ndim, 0))

    def _pack(self, op):
        parts = [self.data(op, k) for k in range(len(op.inputs))]
        return [np.stack(parts, axis=op.opt("Axis", 0) % (parts[0].ndim + 1))]

    def _split(self, op):
        axis, x = self.sg.const(op.inputs[0]), self.data(op, 1)
        if axis is None:
            raise UnsupportedOpError(f"{op}: the axis is not a constant")
        return np.split(x, len(op.outputs), axis=int(axis) % x.ndim)

    def _strided_slice(self, op):
        x = self.data(op, 0)
        begin, end, strides = (self.sg.const(t) for t in op.inputs[1:4])
        if begin is None or end is None or strides is None or op.opt("EllipsisMask", 0) or \
                op.opt("NewAxisMask", 0) or op.opt("Offset", False):
            raise UnsupportedOpError(f"{op}: begin, end and strides must be constants, without "
                                     f"ellipsis, new-axis or offset masks")
        bm, em, sm = (op.opt(n, 0) for n in ("BeginMask", "EndMask", "ShrinkAxisMask"))
        index = []
        for ax in range(x.ndim):
            b, e, s = int(begin[ax]), int(end[ax]), int(strides[ax])
            if sm >> ax & 1:
                index.append(b)
            else:
                index.append(slice(None if bm >> ax & 1 else b, None if em >> ax & 1 else e, s))
        return [x[tuple(index)].reshape(self.out_shape(op))]

    # computing ops
    def _dense(self, op):
        x = self.data(op, 0)
        if op.name == "CONV_2D":
            layers = self._conv_1x1(op, x)
        else:
            layers = convert_fully_connected(self.sg, op)
        n_in = np.shape(self.sg.tensors[op.inputs[1]].real())[-1]
        if x.size != n_in:
            raise UnsupportedOpError(f"{op}: input {list(x.shape)} for weights of {n_in} "
                                     f"inputs; supported: one row per step")
        t = self.apply(op, layers, self.tensor(op, x))
        return self.wrap(op, t, self.out_shape(op))

    def _conv_1x1(self, op, x):
        """CONV_2D of one pixel by a 1x1 kernel: a Dense by W[O, C]."""
        w_t = self.sg.tensors[op.inputs[1]]
        shape = tuple(w_t.shape)
        if x.ndim != 4 or x.shape[:3] != (1, 1, 1) or len(shape) != 4 or shape[1:3] != (1, 1) \
                or any(op.opt(n, 1) != 1 for n in ("StrideH", "StrideW", "DilationHFactor",
                                                    "DilationWFactor")):
            raise UnsupportedOpError(f"{op}: input {list(x.shape)}, weights {list(shape)}; "
                                     f"supported: a 1x1 kernel, stride and dilation 1, on one "
                                     f"pixel [1, 1, 1, C]")
        fc = _Reshaped(op, {op.inputs[1]: (shape[0], shape[3])})
        return convert_fully_connected(_ReshapedGraph(self.sg, fc.shapes), fc)

    def _mean(self, op):
        x = self.data(op, 0)
        axes = self.sg.const(op.inputs[1])
        axes = sorted({int(a) % x.ndim for a in np.asarray(axes).reshape(-1)})
        big = [a for a in range(x.ndim) if x.shape[a] != 1]
        if [a for a in axes if x.shape[a] != 1] != big:
            raise UnsupportedOpError(f"{op}: mean over axes {axes} of {list(x.shape)}; "
                                     f"supported: over every axis longer than 1")
        t = self.apply(op, [edgernn.Reduce("mean", x.size)], self.tensor(op, x))
        return self.wrap(op, t, self.out_shape(op))

    def _binary(self, op):
        args = [self.arg(op, k) for k in range(2)]
        data = [k for k in range(2) if op.inputs[k] in self.values]
        if not data:
            raise UnsupportedOpError(f"{op}: of two constants")
        shape = self.out_shape(op)
        name = op.name
        if len(data) == 2:
            a, b = (self.tensor(op, v) for v in args)
            if a.size != b.size and 1 not in (a.size, b.size):
                raise UnsupportedOpError(f"{op}: data of {a.size} and {b.size} values; "
                                         f"supported: equal sizes or one value")
            if name == "SQUARED_DIFFERENCE":
                d = _node(op, edgernn.Sub(), a, b)
                return self.wrap(op, _node(op, edgernn.Mul(), d, d), shape)
            cls = {"ADD": edgernn.Add, "SUB": edgernn.Sub, "MUL": edgernn.Mul}[name]
            return self.wrap(op, _fused(op, _node(op, cls(), a, b)), shape)
        k = data[0]
        x = self.tensor(op, args[k])
        c = _constant(self.sg, op, args[1 - k], x.size)
        if name == "SQUARED_DIFFERENCE":
            d = _node(op, edgernn.Add(-c), x)
            return self.wrap(op, _node(op, edgernn.Mul(), d, d), shape)
        if name == "SUB" and k == 1:  # c - x
            t = _node(op, edgernn.Add(c), _node(op, edgernn.Mul(np.float32(-1)), x))
        else:
            t = _node(op, {"ADD": edgernn.Add, "SUB": edgernn.Sub, "MUL": edgernn.Mul}[name](c), x)
        return self.wrap(op, _fused(op, t), shape)


class _ReshapedGraph:
    """``sg`` with some constants seen in another shape (a 1x1 kernel as FC weights)."""

    def __init__(self, sg, shapes):
        self._sg, self._shapes = sg, shapes
        self.tensors = _Tensors(sg, shapes)

    def const(self, t):
        return self._sg.const(t)


class _Tensors:
    def __init__(self, sg, shapes):
        self._sg, self._shapes = sg, shapes

    def __getitem__(self, t):
        return _ShapedTensor(self._sg.tensors[t], self._shapes.get(t))


class _ShapedTensor:
    def __init__(self, t, shape):
        self._t, self._shape = t, shape

    def __getattr__(self, name):
        return getattr(self._t, name)

    @property
    def data(self):
        return self._t.data

    def real(self):
        r = self._t.real()
        return r if self._shape is None else r.reshape(self._shape)


class _Reshaped:
    """``op`` (a CONV_2D) read as a FULLY_CONNECTED by :func:`convert_fully_connected`."""

    def __init__(self, op, shapes):
        self._op, self.shapes = op, shapes
        self.inputs, self.outputs = op.inputs, op.outputs

    def opt(self, name, default=None):
        return self._op.opt(name, default)

    def __str__(self):
        return str(self._op)


def state_pairs(sg, names, states) -> dict:
    """``states`` (input name -> output name) as tensor indices, checked."""
    by_name = {names(t): t for t in [*sg.inputs, *sg.outputs]}
    pairs = {}
    for i, o in states.items():
        if i not in by_name or by_name[i] not in sg.inputs:
            raise UnsupportedOpError(f"states: {i!r} is not a graph input; inputs: "
                                     f"{[names(t) for t in sg.inputs]}")
        if o not in by_name or by_name[o] not in sg.outputs:
            raise UnsupportedOpError(f"states: {o!r} is not a graph output; outputs: "
                                     f"{[names(t) for t in sg.outputs]}")
        ti, to = by_name[i], by_name[o]
        if list(sg.tensors[ti].shape) != list(sg.tensors[to].shape):
            raise UnsupportedOpError(f"states: input {i!r} is {list(sg.tensors[ti].shape)} "
                                     f"but output {o!r} is {list(sg.tensors[to].shape)}")
        pairs[ti] = to
    return pairs


def updates(walker, pairs, names) -> dict:
    """Each state tensor -> the value the paired output holds at its places."""
    out = {}
    for (name, elem), st in walker.state_reads.items():
        ti = next(t for t in pairs if names(t) == name)
        to = pairs[ti]
        if to not in walker.values:
            raise ModelFormatError(f"output {names(to)!r} is not computed by the supported "
                                   f"ops from the inputs")
        places = walker.values[to].reshape(-1)[list(elem)]
        out[st] = walker.tensor(f"state output {names(to)!r} (for {st.name})", places)
    return out


__all__ = ["Walker", "state_pairs", "updates", "SUPPORTED"]
