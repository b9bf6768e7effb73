"""The ``edgernn`` command line (``edgernn.cli:main``, the console script)."""

from .main import main

__all__ = ["main"]
