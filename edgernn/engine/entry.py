"""The engine's Python entry, from the native image when it holds one, else from numba.

    fn(desc, xs, ys, T) -> int status          (see :mod:`edgernn.engine.loop`)

Where the native image works (:mod:`edgernn.kernels.native`), ``fn`` is a builtin
function made here from the image's ``METH_FASTCALL`` wrapper
(:data:`edgernn.kernels.image.WRAPPER_IR`), which calls the engine's C entry
(:func:`edgernn.engine.loop.engine_c`): no numba in the process. Without an image,
numba compiles (or loads) the engine, the image is written, and its wrapper is
loaded the same way, so every process calls the engine through the same code.
Elsewhere (another machine, no cache folder), ``fn`` is numba's own entry point
(:func:`edgernn.engine.loop.native`).
"""

from __future__ import annotations

import ctypes

import numpy as np

from ..kernels import native as image

#: engine status: an array has the wrong size / is not contiguous float32 (module
#: docstring of :mod:`edgernn.engine.loop`)
BAD_SHAPE = 1
STRIDED = 2
#: image items of the engine's C entry and of its Python wrapper
ENGINE = "loop:_engine_c"
CALL = "entry:call"
METH_FASTCALL = 0x80
WRITEABLE = 0x400
_state: dict = {}


class _MethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


def _abi_ok() -> bool:
    """Whether numpy's ``PyArrayObject`` has the field offsets the wrapper reads."""
    a = np.zeros(3, np.float32)
    at = ctypes.c_int64.from_address
    return (at(id(a) + 16).value == a.ctypes.data and ctypes.c_int32.from_address(
        id(a) + 24).value == 1 and at(at(id(a) + 32).value).value == 3
        and at(at(id(a) + 40).value).value == 4 and at(id(a) + 56).value == id(a.dtype)
        and a.dtype is np.dtype(np.float32) and _flags_ok(a))


def _flags_ok(a) -> bool:
    """Whether ``a``'s flags are the int at +64, NPY_ARRAY_WRITEABLE its bit 0x400."""
    flags = ctypes.c_int32.from_address(id(a) + 64)
    was = flags.value
    a.flags.writeable = False
    off = flags.value
    a.flags.writeable = True
    return was & WRITEABLE and not off & WRITEABLE and flags.value == was


def _symbols(engine: int) -> dict:
    return {"edgernn_engine": engine, "edgernn_ndarray_type": id(np.ndarray),
            "edgernn_float32_descr": id(np.dtype(np.float32))}


def _builtin(address: int):
    """A builtin function object around the ``METH_FASTCALL`` C function at ``address``."""
    new = ctypes.pythonapi.PyCFunction_NewEx
    new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.py_object,
                                                   ctypes.py_object]
    mdef = _MethodDef(b"engine", address, METH_FASTCALL, None)
    _state.setdefault("defs", []).append(mdef)   # must outlive the function
    fn = new(ctypes.addressof(mdef), None, None)
    _state.setdefault("checking", []).append(fn)   # kept: identity stays unique
    return fn


def checks_arrays(fn) -> bool:
    """Whether ``fn`` is the image's wrapper, which checks its arrays itself (returning
    STRIDED for any it cannot take); numba's raw entry point trusts its callers."""
    return any(fn is f for f in _state.get("checking", ()))


def wrap(address: int, key: str):
    """``fn(ctx, x, y, T) -> int``: the image's Python wrapper (:data:`CALL`) around another
    C entry of the engine's signature at ``address`` (the audio front end's), loaded as
    copy ``key``; None where the image is off or lacks the wrapper."""
    if not image.enabled() or not _abi_ok():
        return None
    call = image.lookup(CALL, _symbols(address), key=f"{CALL}@{key}")
    return _builtin(call) if call else None


def from_image():
    """The entry from the native image alone (None when it lacks it): no numba."""
    if not image.enabled() or not _abi_ok():
        return None
    engine = image.lookup(ENGINE)
    call = image.lookup(CALL, _symbols(engine)) if engine else None
    return _builtin(call) if call else None


def _compiled():
    from ..kernels import image as writer
    from . import loop

    if image.enabled() and _abi_ok():
        cf = loop.engine_c()
        writer.save_cfunc(ENGINE, cf)
        writer.save_wrapper()
        call = image.lookup(CALL, _symbols(cf.address))
        if call:
            return _builtin(call)
    return loop.native()


def native():
    """``fn(desc, xs, ys, T)``: the engine's entry (module docstring)."""
    if "fn" not in _state:
        _state["fn"] = from_image() or _compiled()
    return _state["fn"]
