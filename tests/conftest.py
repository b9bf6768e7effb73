"""Shared test set-up.

Numba's on-disk cache is keyed on the source file of each cached function only,
so a kernel edited in ``edgernn/kernels/`` would leave a stale compiled engine
behind on a developer's machine. Before the tests import edgernn, drop every
cached file when any runtime source changed since the cache was written.
"""

import hashlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _drop_stale_numba_cache() -> None:
    pkg = ROOT / "edgernn"
    digest = hashlib.sha256()
    for p in sorted(pkg.rglob("*.py")):
        digest.update(p.relative_to(pkg).as_posix().encode() + p.read_bytes())
    stamp = pkg / "__pycache__" / "edgernn-sources.sha256"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    for p in list(pkg.rglob("*.nbi")) + list(pkg.rglob("*.nbc")):
        p.unlink(missing_ok=True)
    stamp.parent.mkdir(exist_ok=True)
    stamp.write_text(digest.hexdigest())


_drop_stale_numba_cache()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
