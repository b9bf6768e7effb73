"""``keras.layers.GRU`` -> :class:`edgernn.GRU`.

Keras stores ``kernel`` float32[I, 3H] and ``recurrent_kernel`` float32[H, 3H]
with gate columns z, r, h; edgernn wants rows r, z, n. ``reset_after=True``
(Keras 2 and 3 default) has ``bias`` float32[2, 3H] (input bias, recurrent
bias) and is ``linear_before_reset=True``; ``reset_after=False`` has one
``bias`` float32[3H] and applies the reset gate before the recurrent matmul.
"""

from __future__ import annotations

import numpy as np

import edgernn

from ..common.gates import reorder
from .activation import activation
from .common import check_recurrent_config, expect_weights


def zrh_to_rzn(a: np.ndarray) -> np.ndarray:
    """Gate blocks along axis 0 from Keras z, r, h to edgernn r, z, n."""
    return reorder(a, "keras", "GRU")


def convert_gru(layer, ctx, in_bidirectional=False):
    check_recurrent_config(layer, in_bidirectional)
    cfg = layer.config
    use_bias = cfg.get("use_bias", True)
    reset_after = bool(cfg.get("reset_after", True))
    w = expect_weights(layer, 3 if use_bias else 2)
    b_ih = b_hh = None
    if use_bias:
        b = np.asarray(w[2])
        if reset_after:
            b_ih, b_hh = zrh_to_rzn(b[0]), zrh_to_rzn(b[1])
        else:
            b_ih = zrh_to_rzn(b.reshape(-1))
    where = f"layer {layer.name!r} (GRU) attribute"
    gate = activation(cfg.get("recurrent_activation", "sigmoid"), ctx,
                      f"{where} 'recurrent_activation'")
    act = activation(cfg.get("activation", "tanh"), ctx, f"{where} 'activation'")
    return [edgernn.GRU(zrh_to_rzn(w[0].T), zrh_to_rzn(w[1].T), b_ih, b_hh,
                        linear_before_reset=reset_after, activations=(gate, act))]
