"""``keras.layers.SimpleRNN`` -> :class:`edgernn.RNN`.

Keras: ``h' = act(x @ kernel + h @ recurrent_kernel + bias)`` with
``kernel`` float32[I, H], ``recurrent_kernel`` float32[H, H], ``bias`` float32[H].
"""

from __future__ import annotations

import edgernn

from .activation import activation
from .common import check_recurrent_config, expect_weights


def convert_simple_rnn(layer, ctx, in_bidirectional=False):
    check_recurrent_config(layer, in_bidirectional)
    use_bias = layer.config.get("use_bias", True)
    w = expect_weights(layer, 3 if use_bias else 2)
    act = activation(layer.config.get("activation", "tanh"), ctx,
                     f"layer {layer.name!r} (SimpleRNN) attribute 'activation'")
    return [edgernn.RNN(w[0].T, w[1].T, w[2] if use_bias else None, None, nonlinearity=act)]
