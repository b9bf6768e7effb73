"""A small symmetric per-row int8 quantiser for the bench (no converters, no torch).

Used when ``converters.quantize`` is unavailable or fails (the bench then says
so), and by ``arch_outputs.py`` to make the same int8 models on every machine.
Each quantisable weight (``layer.quantizable``) gets one scale per output row,
``s = max|row| / 127``, ``w_q = rint(w / s)``; inputs are quantised per step
with a zero point (``dynamic_zero_point``, as LiteRT's dynamic range).
"""

from __future__ import annotations

import dataclasses

import numpy as np

import edgernn


def quantise_rows(model):
    """``model`` with int8-weights layers wherever a layer has quantisable weights."""
    layers = []
    for layer in model.layers:
        fields = getattr(layer, "quantizable", ())
        if not fields:
            layers.append(layer)
            continue
        q, scales = {}, {}
        for f in fields:
            w = np.asarray(getattr(layer, f), np.float32)
            s = np.maximum(np.abs(w).max(axis=1), 1e-30) / 127.0
            q[f] = np.clip(np.rint(w / s[:, None]), -127, 127).astype(np.int8)
            scales[f] = s.astype(np.float32)
        layers.append(dataclasses.replace(layer, **q, quant=edgernn.QuantParams(
            "int8-weights", scales, dynamic_zero_point=True)))
    return edgernn.Model(layers)
