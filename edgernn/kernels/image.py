"""Writing the native image (:mod:`edgernn.kernels.native`) from a process that has numba.

Each item is numba's own object code of a compiled ``cfunc`` (the bytes its JIT
loaded, kept by :func:`edgernn.kernels.cache._keep_object_code` when they came
from numba's cache), so the image runs exactly the machine code numba would.
One more item is made here: :data:`CALL`, the Python entry of the engine, a
``METH_FASTCALL`` function written in LLVM IR (:data:`WRAPPER_IR`) and compiled
by llvmlite with the large code model.
"""

from __future__ import annotations

from llvmlite import binding as llb

from . import native, tile_i8

#: the image item holding the Python entry of the engine
CALL = "entry:call"
CALL_SYMBOL = "edgernn_engine_call"
#: status returned when an argument is not an exact 1-D float32 ndarray of stride 4, or
#: ``y`` is read-only (the caller checks them, and passes contiguous float32 copies:
#: :data:`edgernn.engine.entry.STRIDED`)
STRIDED = 2

#: ``PyObject *edgernn_engine_call(PyObject *self, PyObject *const *args, Py_ssize_t n)``
#: with ``args = (desc: int, x: ndarray, y: ndarray, T: int)``: checks each array is an
#: exact ``numpy.ndarray``, 1-D, float32 (the dtype singleton) and of stride 4, and ``y``
#: writeable (else returns STRIDED), reads its data pointer and length at the offsets of
#: numpy's ``PyArrayObject`` (data +16, nd +24, dimensions +32, strides +40, descr +56,
#: flags +64 with NPY_ARRAY_WRITEABLE 0x400; checked at load by
#: :mod:`edgernn.engine.entry`), releases the GIL around ``edgernn_engine(desc, x, nx, y,
#: ny, T)`` and returns its status as an int.
WRAPPER_IR = r"""
@edgernn_ndarray_type = external global i8
@edgernn_float32_descr = external global i8
@PyExc_TypeError = external global i8*
@msg = private unnamed_addr constant [33 x i8] c"engine: expected (desc, x, y, T)\00"

declare i64 @PyLong_AsLongLong(i8*)
declare i8* @PyLong_FromLongLong(i64)
declare i8* @PyErr_Occurred()
declare void @PyErr_SetString(i8*, i8*)
declare i8* @PyEval_SaveThread()
declare void @PyEval_RestoreThread(i8*)
declare i64 @edgernn_engine(i64, i64, i64, i64, i64, i64)

define internal i1 @ok(i8* %a) {
  %tp = getelementptr i8, i8* %a, i64 8
  %tpp = bitcast i8* %tp to i8**
  %t = load i8*, i8** %tpp
  %c1 = icmp eq i8* %t, @edgernn_ndarray_type
  br i1 %c1, label %nd, label %no
nd:
  %ndp = getelementptr i8, i8* %a, i64 24
  %ndi = bitcast i8* %ndp to i32*
  %n = load i32, i32* %ndi
  %c2 = icmp eq i32 %n, 1
  br i1 %c2, label %dt, label %no
dt:
  %dp = getelementptr i8, i8* %a, i64 56
  %dpp = bitcast i8* %dp to i8**
  %d = load i8*, i8** %dpp
  %c3 = icmp eq i8* %d, @edgernn_float32_descr
  br i1 %c3, label %st, label %no
st:
  %sp = getelementptr i8, i8* %a, i64 40
  %spp = bitcast i8* %sp to i64**
  %s = load i64*, i64** %spp
  %s0 = load i64, i64* %s
  %c4 = icmp eq i64 %s0, 4
  ret i1 %c4
no:
  ret i1 false
}

define internal i64 @field(i8* %a, i64 %off) {
  %p = getelementptr i8, i8* %a, i64 %off
  %pp = bitcast i8* %p to i64*
  %v = load i64, i64* %pp
  ret i64 %v
}

define i8* @edgernn_engine_call(i8* %self, i8** %args, i64 %n) {
entry:
  %c = icmp eq i64 %n, 4
  br i1 %c, label %go, label %bad
bad:
  %e = load i8*, i8** @PyExc_TypeError
  %m = getelementptr [33 x i8], [33 x i8]* @msg, i64 0, i64 0
  call void @PyErr_SetString(i8* %e, i8* %m)
  ret i8* null
go:
  %a0 = load i8*, i8** %args
  %p3 = getelementptr i8*, i8** %args, i64 3
  %a3 = load i8*, i8** %p3
  %desc = call i64 @PyLong_AsLongLong(i8* %a0)
  %T = call i64 @PyLong_AsLongLong(i8* %a3)
  %m1 = icmp eq i64 %desc, -1
  %m2 = icmp eq i64 %T, -1
  %mm = or i1 %m1, %m2
  br i1 %mm, label %maybe, label %arrays
maybe:
  %err = call i8* @PyErr_Occurred()
  %has = icmp ne i8* %err, null
  br i1 %has, label %fail, label %arrays
fail:
  ret i8* null
arrays:
  %p1 = getelementptr i8*, i8** %args, i64 1
  %x = load i8*, i8** %p1
  %p2 = getelementptr i8*, i8** %args, i64 2
  %y = load i8*, i8** %p2
  %okx = call i1 @ok(i8* %x)
  %oky = call i1 @ok(i8* %y)
  %oka = and i1 %okx, %oky
  br i1 %oka, label %flags, label %strided
flags:
  %yfp = getelementptr i8, i8* %y, i64 64
  %yfi = bitcast i8* %yfp to i32*
  %yf = load i32, i32* %yfi
  %yw = and i32 %yf, 1024
  %okw = icmp ne i32 %yw, 0
  br i1 %okw, label %run, label %strided
strided:
  %r2 = call i8* @PyLong_FromLongLong(i64 2)
  ret i8* %r2
run:
  %xd = call i64 @field(i8* %x, i64 16)
  %xdims = call i64 @field(i8* %x, i64 32)
  %xdp = inttoptr i64 %xdims to i64*
  %xn = load i64, i64* %xdp
  %yd = call i64 @field(i8* %y, i64 16)
  %ydims = call i64 @field(i8* %y, i64 32)
  %ydp = inttoptr i64 %ydims to i64*
  %yn = load i64, i64* %ydp
  %ts = call i8* @PyEval_SaveThread()
  %rc = call i64 @edgernn_engine(i64 %desc, i64 %xd, i64 %xn, i64 %yd, i64 %yn, i64 %T)
  call void @PyEval_RestoreThread(i8* %ts)
  %r = call i8* @PyLong_FromLongLong(i64 %rc)
  ret i8* %r
}
"""


#: the image item defining the numba C helpers that compiled kernels import: numba's
#: shared library does not export them. The GIL helpers are numba's (``_helperlib.c``);
#: the others serve only a ``cfunc``'s exception path (a kernel that raised, which the
#: kernels do not do): they set a RuntimeError that the ``cfunc`` reports as
#: unraisable, as numba's would, without numba's pickled message. ``NRT_Free`` and
#: ``NRT_MemInfo_call_dtor`` do nothing: the image's code only views memory it does
#: not own (arrays without a meminfo, slices of them), so no reference count of its
#: ever falls to zero (code that allocates imports ``NRT_MemInfo_alloc*``, which
#: nothing here defines: the loader refuses it, and numba runs it).
HELPERS = native.HELPERS
HELPERS_IR = r"""
@PyExc_RuntimeError = external global i8*
@raised = private unnamed_addr constant [45 x i8] c"edgernn kernel raised (see EDGERNN_NATIVE=0)\00"

declare i32 @PyGILState_Ensure()
declare void @PyGILState_Release(i32)
declare i8* @PyUnicode_FromString(i8*)
declare void @PyErr_SetString(i8*, i8*)
declare void @Py_DecRef(i8*)

define void @numba_gil_ensure(i32* %s) {
  %v = call i32 @PyGILState_Ensure()
  store i32 %v, i32* %s
  ret void
}

define void @numba_gil_release(i32* %s) {
  %v = load i32, i32* %s
  call void @PyGILState_Release(i32 %v)
  ret void
}

define i8* @numba_unpickle(i8* %data, i32 %n, i8* %hashed) {
  %m = getelementptr [45 x i8], [45 x i8]* @raised, i64 0, i64 0
  %o = call i8* @PyUnicode_FromString(i8* %m)
  ret i8* %o
}

define i8* @numba_runtime_build_excinfo_struct(i8* %gv, i8* %args) {
  %o = call i8* @numba_unpickle(i8* null, i32 0, i8* null)
  ret i8* %o
}

define i32 @numba_do_raise(i8* %packed) {
  %e = load i8*, i8** @PyExc_RuntimeError
  %m = getelementptr [45 x i8], [45 x i8]* @raised, i64 0, i64 0
  call void @PyErr_SetString(i8* %e, i8* %m)
  call void @Py_DecRef(i8* %packed)
  ret i32 0
}

define void @NRT_Free(i8* %p) {
  ret void
}

define void @NRT_MemInfo_call_dtor(i8* %mi) {
  ret void
}
"""


def object_code(library) -> bytes | None:
    """The object code numba loaded for ``library`` (None when it is not available)."""
    data = getattr(library, "_edgernn_object", None)
    if data is None:
        try:
            data = library._get_compiled_object()
        except (RuntimeError, ValueError, AttributeError):
            return None
    return bytes(data)


def save_cfunc(name: str, cf) -> None:
    """Add the compiled ``cfunc`` ``cf`` to the image as item ``name`` (the int8 product
    with the int8 code path it was compiled for)."""
    if not native.enabled():
        return
    data = object_code(cf._library)
    if data is not None and _folder() is not None:
        extra = {"int8_path": tile_i8.path()} if name == native.QMATVEC else None
        native.save(name, data, cf.native_name, _folder(), extra)


def _folder():
    from .cache import cache_dir

    return cache_dir()


def compile_ir(text: str) -> bytes:
    """LLVM IR ``text`` compiled for this machine (large code model, like numba's)."""
    llb.initialize_native_target()
    llb.initialize_native_asmprinter()
    mod = llb.parse_assembly(text)
    mod.triple = llb.get_process_triple()
    mod.verify()
    target = llb.Target.from_triple(mod.triple)
    tm = target.create_target_machine(cpu=llb.get_host_cpu_name(), opt=2,
                                      codemodel="large", reloc="static")
    return bytes(tm.emit_object(mod))


def save_wrapper() -> None:
    """Add :data:`HELPERS` and :data:`CALL` to the image."""
    if native.enabled() and _folder() is not None:
        native.save(HELPERS, compile_ir(HELPERS_IR), "numba_gil_ensure", _folder())
        native.save(CALL, compile_ir(WRAPPER_IR), CALL_SYMBOL, _folder())
