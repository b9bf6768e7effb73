"""Numba kernels (``@njit(cache=True, error_model="numpy")``), one file per op kind.

Every kernel works on the engine's flat arrays (see :mod:`edgernn.engine.loop`):

``P``  int64[n_rows, WIDTH]  the op table (row 0 is the header, :mod:`.optable`)
``W``  float32[:]            the weight arena (read only while running)
``S``  float32[:]            the state arenas of all streams, stream ``s`` at ``s * A``
``L``  int64[:]              the same memory as int64 (per-stream counters)

and addresses vectors inside them by offset, so one compiled engine serves
every model: nothing is compiled per model or per instance. Importing any kernel
module installs edgernn's cache locator first (:mod:`edgernn.kernels.cache`);
importing the package alone imports no numba (a warm start runs the native image,
:mod:`edgernn.kernels.native`).
"""
