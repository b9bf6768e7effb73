"""A cold start compiles what the disk cache lacks in parallel processes.

Numba compiles one function at a time per process (a global compiler lock):
about 1-3 s each on this project's 2-vCPU VM and several times that on a
Raspberry Pi, and a model needs the engine and two to six kernels. When the
cache (:mod:`edgernn.kernels.cache`) lacks some of them, :func:`ensure` splits
them
over up to :func:`jobs` workers: this process and ``jobs - 1`` fresh
interpreters that import edgernn from the same place, compile their share into
the same cache folder and exit. This process then loads their code from the
cache when the model asks for it. A warm start finds everything cached and
starts no process.

Whatever a child fails to do is compiled here, as it would have been without
children (a real compile error is raised here, once). Children get no input,
their output is discarded, and whatever still runs after :data:`TIMEOUT_S` (one
deadline for all) or when this process stops waiting (an error, Ctrl-C) is killed.
``EDGERNN_COMPILE_JOBS=1`` turns this off; it is off too when the cache is a
private temporary folder (see :mod:`edgernn.kernels.cache`), where a child could not
find it, and when ``sys.executable`` is not a Python interpreter (a frozen
application would start itself again).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ..kernels import native
from ..kernels.native import SHARED
from ..ops import registry
from . import entry

#: the engine's entry point, next to the "module:function" names of the kernels
ENGINE = "loop:engine_f32"
#: rough compile cost of each item, in units of a plain kernel (for splitting the work)
COST = {ENGINE: 2.0, "qlinalg:qmatvec_kernel": 3.0}
#: a child that takes longer than this is killed (its items are compiled here)
TIMEOUT_S = 1800.0
#: default cap on the workers (a Raspberry Pi 4 or 5 has 4 cores)
MAX_JOBS = 4

_CHILD = """
import sys
sys.path[0] = sys.argv[1]  # not the working directory, which `-c` would put first
from edgernn.engine import precompile
for name in sys.argv[2:]:
    precompile.compile_here(name)
"""


def jobs() -> int:
    """Workers for a cold compile: ``$EDGERNN_COMPILE_JOBS``, else the usable CPUs, at
    most :data:`MAX_JOBS` (each worker holds its own compiler: up to 190 MB here)."""
    env = os.environ.get("EDGERNN_COMPILE_JOBS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_JOBS)


def every_kernel() -> list[str]:
    """The engine, the shared kernels and every registered op kind's kernels."""
    return [ENGINE, *SHARED, *registry.kernels()]


def kernels_of(model) -> list[str]:
    """The engine and the kernels ``model`` runs, nested ops' included (the rare
    activations' kernel aside)."""
    names = [ENGINE, "linalg:matvec_kernel"]

    def visit(op):
        if isinstance(op.kernel, str) and op.kernel not in names:
            names.append(op.kernel)
        if getattr(op, "quant", None) is not None and "qlinalg:qmatvec_kernel" not in names:
            names.append("qlinalg:qmatvec_kernel")
        for _, inner in op.inner():
            visit(inner)

    for node in model.graph.nodes:
        visit(node.op)
    return names


def cached(name: str) -> bool:
    """Whether the cache folder holds compiled code of ``name`` (by its index file)."""
    from ..kernels import cache

    folder = cache.cache_dir()
    if folder is None:
        return False
    module, func = name.split(":")
    if name == ENGINE and native.enabled():   # the engine's C entry (edgernn.engine.entry)
        func = "_engine_c"
    py = f"py{sys.version_info[0]}{sys.version_info[1]}"  # this Python's, not another's
    return any((folder / module).glob(f"{module}.{func}-*.{py}*.nbi"))


def compile_here(name: str) -> None:
    """Compile ``name`` in this process (or load it from the cache)."""
    if name == ENGINE:
        entry.native()
    else:
        from ..kernels.abi import kernel_address

        kernel_address(name)


def _python() -> bool:
    """Whether ``sys.executable`` is a Python interpreter that runs ``-c`` (not a frozen
    application or an embedding program, which would start itself again)."""
    exe = os.path.basename(sys.executable or "").lower()
    return not getattr(sys, "frozen", False) and exe.startswith(("python", "pypy"))


def _split(names: list[str], n: int) -> list[list[str]]:
    """``names`` in ``n`` groups of about equal cost, the costliest first."""
    groups: list[list[str]] = [[] for _ in range(n)]
    load = [0.0] * n
    for name in sorted(names, key=lambda k: -COST.get(k, 1.0)):
        i = load.index(min(load))
        groups[i].append(name)
        load[i] += COST.get(name, 1.0)
    return groups


def from_image(names) -> bool:
    """Load every item of ``names`` from the native image (:mod:`edgernn.kernels.native`),
    without numba; False when the image lacks one (those it holds stay loaded)."""
    ok = True
    for name in names:
        ok &= (entry.from_image() if name == ENGINE else native.lookup(name)) is not None
    return ok


def ensure(names) -> None:
    """Compile (or load) every item of ``names``, in parallel where the cache lacks several.

    A warm start finds them all in the native image and imports no numba."""
    names = list(dict.fromkeys(names))
    if from_image(names):
        return
    from ..kernels import cache, tile_i8

    if "qlinalg:qmatvec_kernel" in names:   # a bad forced int8 path: one error, up front
        tile_i8.checked_path()
    cache.configure()
    folder = cache.cache_dir()
    todo = [k for k in names if not cached(k)]
    n = min(jobs(), len(todo))
    shared = folder is not None and folder.parent == cache.default_dir()
    procs = []
    if n > 1 and shared and _python():
        groups = _split(todo, n)
        env = dict(os.environ, EDGERNN_CACHE_DIR=str(cache.default_dir()),
                   EDGERNN_COMPILE_JOBS="1")
        root = str(Path(__file__).resolve().parents[2])
        for group in groups[1:]:
            try:
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", _CHILD, root, *group], env=env,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
            except OSError:
                pass  # compiled here below
        todo = groups[0]
    try:
        for name in todo:
            compile_here(name)
        end = time.monotonic() + TIMEOUT_S  # one deadline for all the children
        for p in procs:
            try:
                p.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    finally:  # a child still running now (timeout, an error or Ctrl-C here) is stopped
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for name in names:  # load the children's work; compile what they left undone
        compile_here(name)
