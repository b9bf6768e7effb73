"""``keras.layers.Bidirectional`` -> :class:`edgernn.Bidirectional`.

The wrapped layer's weights come first, the backward copy's after them.
"""

from __future__ import annotations

import edgernn
from edgernn.errors import UnsupportedOpError

from .gru import convert_gru
from .lstm import convert_lstm
from .reader import KerasLayer
from .rnn import convert_simple_rnn

_INNER = {"LSTM": convert_lstm, "GRU": convert_gru, "SimpleRNN": convert_simple_rnn}
_MERGE = ("concat", "sum", "mul", "ave")


def inner_layers(layer):
    """The forward and backward layer configs (as KerasLayer) with their weights."""
    cfg = layer.config
    fwd_cfg = cfg["layer"]
    bwd_cfg = cfg.get("backward_layer") or fwd_cfg
    n = len(layer.weights) // 2
    fwd = KerasLayer(fwd_cfg["class_name"], fwd_cfg.get("config", {}), layer.weights[:n])
    bwd = KerasLayer(bwd_cfg["class_name"], bwd_cfg.get("config", {}), layer.weights[n:])
    return fwd, bwd


def convert_bidirectional(layer, ctx):
    merge = layer.config.get("merge_mode", "concat")
    if merge not in _MERGE:
        raise UnsupportedOpError(f"layer {layer.name!r} (Bidirectional): merge_mode {merge!r} "
                                 f"is not supported; supported: {list(_MERGE)}")
    fwd, bwd = inner_layers(layer)
    for part in (fwd, bwd):
        if part.class_name not in _INNER:
            raise UnsupportedOpError(f"layer {layer.name!r} (Bidirectional) wraps "
                                     f"{part.class_name!r}; supported: {sorted(_INNER)}")
    f = _INNER[fwd.class_name](fwd, ctx, in_bidirectional=True)[0]
    b = _INNER[bwd.class_name](bwd, ctx, in_bidirectional=True)[0]
    return [edgernn.Bidirectional(f, b, merge_mode=merge,
                                  return_sequences=bool(fwd.config.get("return_sequences")))]
