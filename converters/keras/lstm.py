"""``keras.layers.LSTM`` -> :class:`edgernn.LSTM`.

Keras stores ``kernel`` float32[I, 4H], ``recurrent_kernel`` float32[H, 4H] and
``bias`` float32[4H], gate columns i, f, c, o: the same order as PyTorch's
i, f, g, o, so the weights are only transposed. ``recurrent_activation`` is the
gate activation, ``activation`` both the cell-input and cell-output one.
"""

from __future__ import annotations

import edgernn

from .activation import activation
from .common import check_recurrent_config, expect_weights


def convert_lstm(layer, ctx, in_bidirectional=False):
    check_recurrent_config(layer, in_bidirectional)
    cfg = layer.config
    use_bias = cfg.get("use_bias", True)
    w = expect_weights(layer, 3 if use_bias else 2)
    where = f"layer {layer.name!r} (LSTM) attribute"
    gate = activation(cfg.get("recurrent_activation", "sigmoid"), ctx,
                      f"{where} 'recurrent_activation'")
    act = activation(cfg.get("activation", "tanh"), ctx, f"{where} 'activation'")
    return [edgernn.LSTM(w[0].T, w[1].T, w[2] if use_bias else None, None,
                         activations=(gate, act, act))]
