"""Shared test set-up.

(The engine keys its compiled-code cache on its own kernel sources, see
``edgernn/cache.py``; the tests need no cache handling of their own.)
"""

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
