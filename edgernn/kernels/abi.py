"""How the engine calls an op kernel: through a function pointer, compiled per op kind.

Each op kind's kernel is a ``numba.cfunc`` with the C signature

    int64 kernel(int64 desc, int64 k, int64 t)

(``desc``: address of the call descriptor, ``k``: the op's row, ``t``: the
timestep; returns 0, or -1 for a token id out of range). The planner stores the
kernel's address in the op's row (column ``FN``) and the engine calls it
through :func:`call_ptr`. So the engine's own code stays small, each kernel
is compiled (or loaded from the disk cache) once, separately, and only when a
model that uses it is loaded: a model of LSTMs and a Dense never compiles the
GRU kernel. The shared pieces (the matrix product, the less common
activations) are called the same way, through addresses in the op table's
header, so they are compiled once rather than again inside every kernel.
"""

import importlib

import numpy as np
from llvmlite import ir
from numba import cfunc, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import image, layout, native
from .cache import CACHE
from .optable import (
    D_IDX,
    D_M,
    D_NROWS,
    D_NSTREAMS,
    D_P,
    D_S,
    D_SIZE,
    D_SSTRIDE,
    D_W,
    D_WBYTES,
    S_FLAG,
    WIDTH,
)
from .pointers import view1, view2

KERNEL_SIG = types.int64(types.int64, types.int64, types.int64)
_I64 = ir.IntType(64)


@intrinsic
def call_ptr(typingctx, fn, *args):
    """``fn(*args)`` for the address ``fn`` of a C function of int64s returning int64."""
    if len(args) == 1 and isinstance(args[0], types.BaseTuple):
        args = tuple(args[0])
    if not all(isinstance(a, types.Integer) for a in (fn, *args)):
        return None
    n = len(args)

    def codegen(context, builder, sig, llargs):
        fnty = ir.FunctionType(_I64, [_I64] * n)
        ptr = builder.inttoptr(llargs[0], fnty.as_pointer())
        vals = cgutils.unpack_tuple(builder, llargs[1], n)
        return builder.call(ptr, [v if v.type == _I64 else builder.sext(v, _I64) for v in vals])

    return types.int64(fn, types.StarArgTuple(args)), codegen


@njit(cache=CACHE, inline="always")
def views(desc):
    """``(P, W, S, L, A, idx, m)`` of a call descriptor (see :mod:`edgernn.engine.loop`)."""
    d = view1(desc, D_SIZE, np.int64)
    P = view2(d[D_P], d[D_NROWS], WIDTH, np.int64)
    W = view1(d[D_W], d[D_WBYTES] // 4, np.float32)
    n_bytes = d[D_NSTREAMS] * d[D_SSTRIDE]
    S = view1(d[D_S], n_bytes // 4, np.float32)
    L = view1(d[D_S], n_bytes // 8, np.int64)
    m = d[D_M]
    return P, W, S, L, d[D_SSTRIDE] // 4, view1(d[D_IDX], m, np.int64), m


@njit(cache=CACHE, inline="always")
def views64(desc):
    """``(W64, WL, S64)``: the weight arena as float64 and int64, the state arenas as
    float64 (offsets in 8-byte elements; blocks are 64-byte aligned)."""
    d = view1(desc, D_SIZE, np.int64)
    nw = d[D_WBYTES]
    n_bytes = d[D_NSTREAMS] * d[D_SSTRIDE]
    return (view1(d[D_W], nw // 8, np.float64), view1(d[D_W], nw // 8, np.int64),
            view1(d[D_S], n_bytes // 8, np.float64))


@njit(cache=CACHE, inline="always")
def flag_nonfinite(L, b):
    """Raise the non-finite flag of the stream whose state arena starts at float ``b``
    (``L``: the int64 view of the state arenas; the engine counts and resets)."""
    L[np.uint64(b) // np.uint64(2) + np.uint64(S_FLAG)] = 1


#: LLVM flags of every kernel: reassociation lets the elementwise loops that also
#: check finiteness (a sum) vectorise; contraction forms FMAs. No flag assumes
#: finite values (the finiteness checks must see inf and nan).
FASTMATH = {"reassoc", "contract"}


class Kernel:
    """A kernel function, compiled as a ``cfunc`` with signature ``sig`` (or loaded from
    the disk cache) the first time its address is asked for."""

    def __init__(self, fn, sig):
        self.fn, self.sig, self._cfunc = fn, sig, None
        self.__doc__ = fn.__doc__

    @property
    def address(self) -> int:
        if self._cfunc is None:
            self._cfunc = cfunc(self.sig, cache=CACHE, error_model="numpy",
                                fastmath=FASTMATH)(self.fn)
        return self._cfunc.address


def kernel(sig=KERNEL_SIG):
    """Decorator: the function becomes a :class:`Kernel` (compiled on first use)."""
    return lambda fn: Kernel(fn, sig)


@njit(cache=CACHE, inline="always")
def qviews(desc):
    """``(P, W, W8, WI, S, SB, SI, A, idx, m)``: :func:`views` plus the int8 and int32
    views of the weight arena and the uint8 and int32 views of the state arenas."""
    d = view1(desc, D_SIZE, np.int64)
    P = view2(d[D_P], d[D_NROWS], WIDTH, np.int64)
    nw = d[D_WBYTES]
    W = view1(d[D_W], nw // 4, np.float32)
    W8, WI = view1(d[D_W], nw, np.int8), view1(d[D_W], nw // 4, np.int32)
    n_bytes = d[D_NSTREAMS] * d[D_SSTRIDE]
    S, SB = view1(d[D_S], n_bytes // 4, np.float32), view1(d[D_S], n_bytes, np.uint8)
    SI = view1(d[D_S], n_bytes // 4, np.int32)
    m = d[D_M]
    return P, W, W8, WI, S, SB, SI, d[D_SSTRIDE] // 4, view1(d[D_IDX], m, np.int64), m


#: the layout helpers (:mod:`.layout`), jitted for the kernels (inlined)
pad8, ceil_div, gru_scratch = (njit(cache=CACHE, inline="always")(f)
                               for f in (layout.pad8, layout.ceil_div, layout.gru_scratch))

_ADDRESSES: dict[str, int] = {}


def kernel_address(name: str) -> int:
    """Address of the kernel ``edgernn.kernels.<module>:<function>`` (compiled, or loaded
    from the disk cache, the first time it is asked for)."""
    addr = _ADDRESSES.get(name)
    if addr is None:
        if name == "qlinalg:qmatvec_kernel":   # the int8 path: a forced one must run here
            importlib.import_module("edgernn.kernels.tile_i8").checked_path()
        module, func = name.split(":")
        k = getattr(importlib.import_module(f"edgernn.kernels.{module}"), func)
        addr = _ADDRESSES[name] = k.address
        image.save_cfunc(name, k._cfunc)   # for the next process to load without numba
    return addr


SHARED = native.SHARED

__all__ = ["KERNEL_SIG", "call_ptr", "views", "qviews", "kernel_address", "SHARED",
           "flag_nonfinite", "np"]
