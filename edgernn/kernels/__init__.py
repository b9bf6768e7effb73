"""Numba kernels (``@njit(cache=True, error_model="numpy")``), one file per layer kind.

Every kernel works on three flat arrays shared by the whole engine:

``P``  int64[n_ops + 1, 16]  the op table (row 0 is the header, see ``plan.py``)
``W``  float32[n_weights]    the weight arena (read only while running)
``S``  float32[n_state]      one stream's state and scratch arena

and addresses vectors inside them by offset, so one compiled engine serves
every model: nothing is compiled per model or per instance.
"""
