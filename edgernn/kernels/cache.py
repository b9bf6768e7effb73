"""Where the compiled engine is cached, and when a cached engine is stale.

Numba keys its disk cache on each function's own source file, and writes it
next to the source or wherever ``NUMBA_CACHE_DIR`` says. For edgernn that is
wrong twice: the engine inlines kernels from a dozen files (editing one would
leave a stale engine behind), and a system service may not be allowed to write
into its own install. So edgernn's functions get a cache locator of their own:

- the directory is ``$EDGERNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgernn``, else
  ``~/.cache/edgernn``; inside it, one folder per runtime source hash;
- the freshness stamp of every cached function is the SHA-256 of all of the
  runtime's compiled sources (``edgernn/kernels/*.py``, ``edgernn/audio/*.py``
  and ``engine/loop.py``): a changed kernel invalidates every cached function that
  might inline it;
- when that directory cannot be written, edgernn warns once and compiles into
  a private temporary folder removed at exit (nothing is kept between runs);
  if not even that can be made, caching is turned off (:data:`CACHE`: the
  kernels' ``cache=`` flag). Importing never fails.

Other libraries' numba functions keep numba's own locators.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from numba.core import caching

from . import cachedir, native
from .startup import import_numba_registries

PKG = cachedir.PKG
_state: dict = {}
#: False when no folder at all could be written: kernels are then compiled per process
CACHE = True
source_hash = cachedir.source_hash
default_dir = cachedir.default_dir


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def cache_dir() -> Path | None:
    """The folder compiled code goes to now (None: caching is off)."""
    return _state.get("dir")


def configure() -> Path | None:
    """Install edgernn's cache locator (idempotent); returns the folder in use."""
    if "configured" in _state:
        return _state.get("dir")
    _state["configured"] = True
    root = default_dir()
    target = cachedir.engine_dir(root)
    if not _writable(target):
        try:
            tmp = Path(tempfile.mkdtemp(prefix="edgernn-cache-"))
            atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        except OSError:
            tmp = None
        warnings.warn(f"edgernn: the cache directory {str(root)!r} is not writable; the "
                      f"compiled engine {'is kept in memory' if tmp is None else 'is kept only'}"
                      f" for this process{'' if tmp is None else ' (' + str(tmp) + ')'}. Set "
                      f"EDGERNN_CACHE_DIR to a writable folder to keep it between runs.",
                      RuntimeWarning, stacklevel=3)
        target = tmp
    _state["dir"] = target
    native.use_folder(target)
    global CACHE
    CACHE = target is not None
    _keep_object_code()
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    if _EdgeRNNLocator not in impl._locator_classes:
        impl._locator_classes.insert(0, _EdgeRNNLocator)
    return target


def _keep_object_code() -> None:
    """Keep the object code of every library numba loads from its cache on the library
    (``_edgernn_object``): numba hands it to its JIT and drops it, and the native image
    (:mod:`edgernn.kernels.image`) needs the same bytes."""
    from numba.core.codegen import JITCodeLibrary

    orig = JITCodeLibrary.__dict__.get("_unserialize") or JITCodeLibrary._unserialize
    func = getattr(orig, "__func__", orig)
    if getattr(func, "_edgernn", False):
        return

    def _unserialize(cls, codegen, state):
        lib = func(cls, codegen, state)
        if state[1] == "object":
            lib._edgernn_object = state[2][0]
        return lib

    _unserialize._edgernn = True
    JITCodeLibrary._unserialize = classmethod(_unserialize)


class _EdgeRNNLocator(caching._CacheLocator):
    """Numba cache locator for functions defined in the edgernn runtime package."""

    def __init__(self, py_func, py_file):
        self._lineno = py_func.__code__.co_firstlineno
        root = _state["dir"] or Path(tempfile.gettempdir()) / "edgernn-no-cache"
        self._path = root / Path(py_file).stem

    def ensure_cache_path(self):
        os.makedirs(self._path, exist_ok=True)

    def get_cache_path(self):
        return str(self._path)

    def get_source_stamp(self):
        return source_hash()

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            inside = Path(py_file).resolve().is_relative_to(PKG)
        except (OSError, ValueError):
            return None
        if not inside or not _state.get("configured"):
            return None
        return cls(py_func, py_file)


import_numba_registries()
configure()
