"""Typed array views over raw addresses, for the engine's entry point and kernels.

The entry point receives one integer: the address of a call descriptor (an
int64 array owned by the Python stream object, see :mod:`edgernn.engine.loop`).
Everything else -- op table, weight arena, state arenas, stream indices -- is
reached through addresses stored in it and viewed with these functions: a
C-contiguous array struct around the address, built in place (no allocation,
no reference count, nothing compiled per dtype). The Python side keeps every
array it published an address of alive.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array


def _view_codegen(ndim):
    def codegen(context, builder, sig, args):
        aryty = sig.return_type
        ary = context.make_array(aryty)(context, builder)
        dty = context.get_data_type(aryty.dtype)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(dty))
        shape = list(args[1:1 + ndim])
        strides, step = [], itemsize
        for n in reversed(shape):
            strides.insert(0, step)
            step = builder.mul(step, n)
        data = builder.inttoptr(args[0], dty.as_pointer())
        populate_array(ary, data=data, shape=shape, strides=strides, itemsize=itemsize,
                       meminfo=None)
        return ary._getvalue()
    return codegen


@intrinsic
def view1(typingctx, addr, n, dtype):
    """``view1(addr, n, np.float32)``: a 1-D array of ``n`` items at byte address ``addr``."""
    if not (isinstance(dtype, types.NumberClass) and isinstance(addr, types.Integer)
            and isinstance(n, types.Integer)):
        return None
    sig = types.Array(dtype.instance_type, 1, "C")(addr, n, dtype)
    return sig, lambda c, b, s, a: _view_codegen(1)(c, b, s, [_i64(b, v) for v in a[:2]])


@intrinsic
def view2(typingctx, addr, rows, cols, dtype):
    """``view2(addr, rows, cols, np.int64)``: a 2-D C-order array at byte address ``addr``."""
    if not (isinstance(dtype, types.NumberClass) and all(
            isinstance(v, types.Integer) for v in (addr, rows, cols))):
        return None
    sig = types.Array(dtype.instance_type, 2, "C")(addr, rows, cols, dtype)
    return sig, lambda c, b, s, a: _view_codegen(2)(c, b, s, [_i64(b, v) for v in a[:3]])


def _i64(builder, v):
    return builder.sext(v, ir.IntType(64)) if v.type.width < 64 else v


__all__ = ["view1", "view2"]
