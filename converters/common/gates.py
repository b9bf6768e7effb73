"""Gate orders: the one table of how each source stacks its gate blocks.

edgernn takes PyTorch's order (:class:`edgernn.LSTM` i, f, g, o;
:class:`edgernn.GRU` r, z, n). Sources stack the same gates differently, in
blocks of ``hidden_size`` rows along axis 0 of each weight matrix and bias
(Keras' ``[in, G*H]`` kernels are transposed first):

===============  =============  ============  ======================================
source           LSTM           GRU           note
===============  =============  ============  ======================================
``"onnx"``       i, o, f, g     z, r, n       ONNX calls g ``c`` and n ``h``
``"keras"``      i, f, g, o     z, r, n       Keras calls g ``c`` and n ``h``
``"tflite"``     i, f, g, o     z, r, n       fused LSTM inputs 1-4, 5-8; Keras cells
===============  =============  ============  ======================================

ONNX also orders its peephole vectors i, o, f (edgernn: i, f, o), as
``"onnx-peephole"``. :func:`reorder` moves blocks from a source's order to
edgernn's.
"""

from __future__ import annotations

import numpy as np

#: edgernn's (PyTorch's) gate order per op kind
EDGERNN = {"LSTM": "ifgo", "GRU": "rzn", "RNN": "h", "peephole": "ifo"}

#: (source, op kind) -> the source's gate order, in edgernn's gate letters
SOURCE = {
    ("onnx", "LSTM"): "iofg", ("onnx", "GRU"): "zrn", ("onnx", "RNN"): "h",
    ("onnx", "peephole"): "iof",
    ("keras", "LSTM"): "ifgo", ("keras", "GRU"): "zrn", ("keras", "RNN"): "h",
    ("tflite", "LSTM"): "ifgo", ("tflite", "GRU"): "zrn", ("tflite", "RNN"): "h",
}


def order(source: str, kind: str) -> list[int]:
    """For each of edgernn's gates, in order, the index of its block in the source."""
    src = SOURCE[(source, kind)]
    return [src.index(g) for g in EDGERNN[kind]]


def reorder(a, source: str, kind: str) -> np.ndarray:
    """``a`` with its gate blocks along axis 0 moved from ``source``'s order to edgernn's.

    Parameters
    ----------
    a : array of shape [G*H, ...] (G gates of H rows each)
    source : "onnx", "keras" or "tflite"
    kind : "LSTM", "GRU", "RNN" or "peephole"
    """
    a = np.asarray(a)
    blocks = np.split(a, len(EDGERNN[kind]), axis=0)
    return np.concatenate([blocks[k] for k in order(source, kind)], axis=0)


__all__ = ["EDGERNN", "SOURCE", "order", "reorder"]
