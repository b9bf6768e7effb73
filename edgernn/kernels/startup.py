"""Start-up cost of numba that edgernn does not need to pay.

The first compile or cache load in a process makes numba install its typing
and lowering registries, among them ``numba.np.arraymath``, whose module body
probes for BLAS by importing ``scipy.linalg``. When scipy is installed, that
import alone costs 0.3-0.6 s on this project's 2-vCPU VM (far more on a Pi),
about half of a warm start. The probe only chooses how numba-compiled
``np.convolve`` / ``np.correlate`` compute their inner product (BLAS, or a plain
loop with the same result); edgernn calls neither.

:func:`import_numba_registries` imports that module once with the probe's
import answered "not installed", unless scipy is already imported (then the
probe is free and runs as usual). ``scipy.linalg`` stays importable and
numba's linear algebra keeps using it: the answer is withdrawn right after.
(During that import, which ``import edgernn`` runs once, another thread that
imports ``scipy.linalg`` would be told it is missing.)
"""

from __future__ import annotations

import sys

_PROBE = "scipy.linalg.cython_blas"


def import_numba_registries() -> None:
    """Import ``numba.np.arraymath`` without its scipy import (module docstring)."""
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    sys.modules[_PROBE] = None  # `import scipy.linalg.cython_blas` raises ImportError
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        if sys.modules.get(_PROBE, 0) is None:
            del sys.modules[_PROBE]
