"""A bounded, checked walk over a ``.tflite`` flatbuffer, before anything reads it.

The generated schema code trusts every offset: a truncated file gives
``struct.error``, a flipped byte ``IndexError``, ``ValueError`` or
``UnicodeDecodeError``, or a silent wrong value. :func:`verify` walks every
table and vector :mod:`converters.tflite.schema` reads and refuses the file
with one :class:`~edgernn.errors.ModelFormatError` naming the table
(``subgraph 0, tensor 5``) when:

- an offset, a vtable, a table's fields, a vector's elements or a string lie
  outside the file, or a vtable is malformed;
- a string is not UTF-8;
- an enum is out of range (tensor type), an index points at nothing (opcode,
  buffer, tensor, subgraph), a shape holds a negative size;
- a constant's bytes disagree with its shape and type, or quantisation
  parameters disagree in length.

Each table is checked once (a file may share tables), so the work is linear in
the file's size. Field numbers are those of LiteRT's ``schema.fbs``.
"""

from __future__ import annotations

import math
import struct

from edgernn.errors import ModelFormatError

#: TensorType code -> bytes per element (the codes of schema.fbs up to INT4 = 17)
_ITEMSIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: None, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8,
             11: 16, 12: 8, 13: None, 14: None, 15: 4, 16: 2, 17: None}


class _Table:
    __slots__ = ("pos", "fields", "size", "what")

    def __init__(self, pos, fields, size, what):
        self.pos, self.fields, self.size, self.what = pos, fields, size, what


class _Reader:
    """Checked little-endian reads of ``buf``; each error names ``what``."""

    def __init__(self, buf: bytes):
        self.buf, self.n = buf, len(buf)
        self.seen: dict = {}

    def need(self, pos: int, size: int, what: str) -> None:
        if pos < 0 or size < 0 or pos + size > self.n:
            raise ModelFormatError(f"{what}: {size} bytes at offset {pos} lie outside the "
                                   f"{self.n}-byte file (truncated or corrupt)")

    def unpack(self, fmt: str, pos: int, what: str):
        self.need(pos, struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def table(self, pos: int, what: str) -> _Table:
        soff = self.unpack("<i", pos, what)
        vt = pos - soff
        vsize = self.unpack("<H", vt, f"{what} (vtable)")
        size = self.unpack("<H", vt + 2, f"{what} (vtable)")
        if vsize < 4 or vsize % 2 or size < 4:
            raise ModelFormatError(f"{what}: malformed vtable (vtable {vsize} bytes, table "
                                   f"{size} bytes)")
        self.need(vt, vsize, f"{what} (vtable)")
        self.need(pos, size, what)
        fields = struct.unpack_from(f"<{(vsize - 4) // 2}H", self.buf, vt + 4)
        for k, off in enumerate(fields):
            if off and off >= size:
                raise ModelFormatError(f"{what}: field {k} at offset {off} lies outside its "
                                       f"{size}-byte table")
        return _Table(pos, fields, size, what)

    def _field(self, t: _Table, slot: int, size: int):
        off = t.fields[slot] if slot < len(t.fields) else 0
        if not off:
            return None
        if off + size > t.size:
            raise ModelFormatError(f"{t.what}: field {slot} ({size} bytes at {off}) runs past "
                                   f"its {t.size}-byte table")
        return t.pos + off

    def scalar(self, t: _Table, slot: int, fmt: str, default=0):
        p = self._field(t, slot, struct.calcsize(fmt))
        return default if p is None else struct.unpack_from(fmt, self.buf, p)[0]

    def ref(self, t: _Table, slot: int, what: str):
        p = self._field(t, slot, 4)
        return None if p is None else p + self.unpack("<I", p, what)

    def vector(self, t: _Table, slot: int, itemsize: int, what: str) -> tuple:
        """(position of element 0, length); (0, 0) when the field is absent."""
        p = self.ref(t, slot, what)
        if p is None:
            return 0, 0
        n = self.unpack("<I", p, what)
        self.need(p + 4, n * itemsize, f"{what} ({n} elements of {itemsize} bytes)")
        return p + 4, n

    def ints(self, t: _Table, slot: int, fmt: str, what: str) -> tuple:
        p, n = self.vector(t, slot, struct.calcsize(fmt), what)
        return struct.unpack_from(f"<{n}{fmt}", self.buf, p) if n else ()

    def string(self, t: _Table, slot: int, what: str) -> str:
        p, n = self.vector(t, slot, 1, what)
        try:
            return bytes(self.buf[p:p + n]).decode()
        except UnicodeDecodeError as exc:
            raise ModelFormatError(f"{what}: not UTF-8 text ({exc.reason} at byte "
                                   f"{exc.start})") from None

    def tables(self, t: _Table, slot: int, what: str) -> list:
        p, n = self.vector(t, slot, 4, what)
        out = []
        for k in range(n):
            e = p + 4 * k
            pos = e + struct.unpack_from("<I", self.buf, e)[0]
            key = (what, pos)
            if key not in self.seen:
                self.seen[key] = self.table(pos, f"{what} {k}")
            out.append(self.seen[key])
        return out


def verify(buf: bytes) -> None:
    """Refuse ``buf`` unless every part :func:`converters.tflite.schema.read_tflite`
    reads is inside it and consistent; see the module docstring."""
    r = _Reader(buf)
    root = r.table(r.unpack("<I", 0, "root offset"), "model")
    codes = r.tables(root, 1, "operator code")
    for k, oc in enumerate(codes):
        r.string(oc, 1, f"operator code {k} (custom_code)")
    buffers = r.tables(root, 4, "buffer")
    for k, b in enumerate(buffers):
        r.vector(b, 0, 1, f"buffer {k} (data)")
        off, size = r.scalar(b, 1, "<Q"), r.scalar(b, 2, "<Q")
        if off > 1:
            r.need(off, size, f"buffer {k} (offset and size)")
    subgraphs = r.tables(root, 2, "subgraph")
    if not subgraphs:
        raise ModelFormatError("model: no subgraphs")
    for s, sg in enumerate(subgraphs):
        _subgraph(r, s, sg, len(codes), buffers)
    r.string(root, 3, "model (description)")
    for k, sd in enumerate(r.tables(root, 7, "signature")):
        _signature(r, k, sd, subgraphs)


def _subgraph(r: _Reader, s: int, sg: _Table, ncodes: int, buffers: list) -> None:
    where = f"subgraph {s}"
    r.string(sg, 4, f"{where} (name)")
    tensors = r.tables(sg, 0, f"{where}, tensor")
    for k, t in enumerate(tensors):
        _tensor(r, f"{where}, tensor {k}", t, buffers)
    n = len(tensors)
    for slot, name in ((1, "inputs"), (2, "outputs")):
        bad = [i for i in r.ints(sg, slot, "i", f"{where} ({name})") if not 0 <= i < n]
        if bad:
            raise ModelFormatError(f"{where}: {name} name tensor {bad[0]}; it has {n} tensors")
    for k, op in enumerate(r.tables(sg, 3, f"{where}, operator")):
        what = f"{where}, operator {k}"
        code = r.scalar(op, 0, "<I")
        if code >= ncodes:
            raise ModelFormatError(f"{what}: opcode_index {code}; the model has {ncodes} "
                                   f"operator codes")
        for slot, name in ((1, "inputs"), (2, "outputs")):
            bad = [i for i in r.ints(op, slot, "i", f"{what} ({name})") if not -1 <= i < n]
            if bad:
                raise ModelFormatError(f"{what}: {name} name tensor {bad[0]}; the subgraph "
                                       f"has {n} tensors")
        if r.scalar(op, 3, "<B") and r.ref(op, 4, what) is not None:
            r.table(r.ref(op, 4, what), f"{what} (builtin options)")


def _tensor(r: _Reader, what: str, t: _Table, buffers: list) -> None:
    shape = r.ints(t, 0, "i", f"{what} (shape)")
    name = r.string(t, 3, f"{what} (name)")
    what = f"{what} {name!r}" if name else what
    code = r.scalar(t, 1, "<b")
    if code not in _ITEMSIZE:
        raise ModelFormatError(f"{what}: type {code} is not a TFLite TensorType (0..17)")
    b = r.scalar(t, 2, "<I")
    if b >= max(len(buffers), 1):
        raise ModelFormatError(f"{what}: buffer {b}; the model has {len(buffers)} buffers")
    if buffers:
        _, nbytes = r.vector(buffers[b], 0, 1, f"buffer {b} (data)")
        if not nbytes and r.scalar(buffers[b], 1, "<Q") > 1:
            nbytes = r.scalar(buffers[b], 2, "<Q")
        if nbytes and _ITEMSIZE[code]:
            if any(d < 0 for d in shape):
                raise ModelFormatError(f"{what}: a constant of shape {list(shape)}")
            need = math.prod(shape) * _ITEMSIZE[code]
            if nbytes != need:
                raise ModelFormatError(f"{what}: shape {list(shape)} of type {code} needs "
                                       f"{need} bytes, its buffer {b} holds {nbytes}")
    q = r.ref(t, 4, what)
    if q is not None:
        qt = r.table(q, f"{what} (quantization)")
        scale = r.vector(qt, 2, 4, f"{what} (scale)")[1]
        zp = r.vector(qt, 3, 8, f"{what} (zero_point)")[1]
        dim = r.scalar(qt, 6, "<i")
        if zp not in (0, scale) or (scale > 1 and not 0 <= dim < max(len(shape), 1)) or \
                (scale > 1 and len(shape) and shape[dim] != scale):
            raise ModelFormatError(f"{what}: {scale} scales and {zp} zero points along "
                                   f"dimension {dim} of shape {list(shape)}")


def _signature(r: _Reader, k: int, sd: _Table, subgraphs: list) -> None:
    what = f"signature {k}"
    r.string(sd, 2, f"{what} (key)")
    s = r.scalar(sd, 4, "<I")
    if s >= len(subgraphs):
        raise ModelFormatError(f"{what}: subgraph_index {s}; the model has {len(subgraphs)}")
    n = len(r.tables(subgraphs[s], 0, f"subgraph {s}, tensor"))
    for slot in (0, 1):
        for j, m in enumerate(r.tables(sd, slot, f"{what} tensor map")):
            r.string(m, 0, f"{what}, tensor map {j} (name)")
            if r.scalar(m, 1, "<I") >= n:
                raise ModelFormatError(f"{what}, tensor map {j}: tensor {r.scalar(m, 1, '<I')}"
                                       f"; subgraph {s} has {n} tensors")


__all__ = ["verify"]
