"""``keras.layers.Dense`` -> :class:`edgernn.Dense`, applied at every timestep."""

from __future__ import annotations

import edgernn

from .activation import activation
from .common import expect_weights


def convert_dense(layer, ctx):
    """Keras ``kernel`` float32[in, out] is edgernn ``weight`` float32[out, in] transposed."""
    cfg = layer.config
    use_bias = cfg.get("use_bias", True)
    w = expect_weights(layer, 2 if use_bias else 1)
    act = activation(cfg.get("activation"), ctx, f"layer {layer.name!r} (Dense) attribute "
                                                  f"'activation'")
    return [edgernn.Dense(w[0].T, w[1] if use_bias else None, activation=act)]
