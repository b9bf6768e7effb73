"""int8 versions of float ops for the tests, made here from the weights (symmetric, one
scale per output row), independent of the converters' quantiser. numpy and edgernn only:
``tests/ernn_fuzz.py``'s workers import it too."""

import dataclasses

import numpy as np

from edgernn import QuantParams


def q8(w):
    """(int8 weights, float32 scales): per row (a convolution's ``[C_out, C_in/G, K]``: per
    output channel), ``max|row| / 127``, a zero row scaled by 1."""
    rows = w.reshape(w.shape[0], -1)
    s = np.abs(rows).max(axis=1) / 127
    s[s == 0] = 1
    q = np.clip(np.rint(rows / s[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), s.astype(np.float32)


def quantized(layer, mode, **kw):
    """``layer`` with every weight it names in ``quantizable`` int8 (:func:`q8`) and
    ``QuantParams(mode, scales, **kw)``."""
    new, scales = {}, {}
    for f in layer.quantizable:
        new[f], scales[f] = q8(getattr(layer, f))
    return dataclasses.replace(layer, **new, quant=QuantParams(mode, scales, **kw))
