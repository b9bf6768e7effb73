"""How the engine calls an op kernel: through a function pointer, compiled per op kind.

Each op kind's kernel is a ``numba.cfunc`` with the C signature

    int64 kernel(int64 desc, int64 k, int64 t)

(``desc``: address of the call descriptor, ``k``: the op's row, ``t``: the
timestep; returns 0, or -1 for a token id out of range). The planner stores the
kernel's address in the op's row (column ``FN``) and the engine calls it
through :func:`call_kernel`. So the engine's own code stays small, each kernel
is compiled (or loaded from the disk cache) once, separately, and only when a
model that uses it is loaded: a model of LSTMs and a Dense never compiles the
GRU kernel.
"""

import importlib

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ..cache import CACHE
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
    WIDTH,
)
from .pointers import f32_view, i64_table, i64_view

KERNEL_SIG = types.int64(types.int64, types.int64, types.int64)
_I64 = ir.IntType(64)


@intrinsic
def call_kernel(typingctx, fn, desc, k, t):
    """Call the kernel at address ``fn`` with ``(desc, k, t)``; its int64 result."""
    if not all(isinstance(a, types.Integer) for a in (fn, desc, k, t)):
        return None

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(_I64, [_I64, _I64, _I64])
        ptr = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(ptr, [builder.sext(a, _I64) if a.type != _I64 else a
                                  for a in args[1:]])

    return types.int64(fn, desc, k, t), codegen


@njit(cache=CACHE)
def views(desc):
    """``(P, W, S, L, A, idx, m)`` of a call descriptor (see :mod:`edgernn.engine`)."""
    d = i64_view(desc, D_SIZE)
    P = i64_table(d[D_P], d[D_NROWS], WIDTH)
    W = f32_view(d[D_W], d[D_WBYTES] // 4)
    n_bytes = d[D_NSTREAMS] * d[D_SSTRIDE]
    S = f32_view(d[D_S], n_bytes // 4)
    L = i64_view(d[D_S], n_bytes // 8)
    m = d[D_M]
    return P, W, S, L, d[D_SSTRIDE] // 4, i64_view(d[D_IDX], m), m


_ADDRESSES: dict[str, int] = {}


def kernel_address(name: str) -> int:
    """Address of the kernel ``edgernn.kernels.<module>:<function>`` (compiled, or loaded
    from the disk cache, the first time it is asked for)."""
    addr = _ADDRESSES.get(name)
    if addr is None:
        module, func = name.split(":")
        addr = _ADDRESSES[name] = getattr(importlib.import_module(f"edgernn.kernels.{module}"),
                                          func).address
    return addr


#: every kernel, for ``edgernn warmup``
KERNELS = ("dense:dense_kernel", "dense:activation_kernel", "rnn:rnn_kernel",
           "lstm:lstm_kernel", "gru:gru_kernel", "embedding:embedding_kernel",
           "elementwise:binary_kernel")

__all__ = ["KERNEL_SIG", "call_kernel", "views", "kernel_address", "KERNELS", "np"]
