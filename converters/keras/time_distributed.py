"""``keras.layers.TimeDistributed`` around a per-step layer: the layer itself.

edgernn already applies Dense and activations at every timestep, so the
wrapper adds nothing; its weights are the wrapped layer's.
"""

from __future__ import annotations

from edgernn.errors import UnsupportedOpError

from .reader import KerasLayer


def convert_time_distributed(layer, ctx, per_step=None):
    """``per_step`` maps the wrapped class names allowed to their converters."""
    inner_cfg = layer.config.get("layer", {})
    cls = inner_cfg.get("class_name")
    if cls not in per_step:
        raise UnsupportedOpError(f"layer {layer.name!r} (TimeDistributed) wraps {cls!r}; "
                                 f"supported: {sorted(per_step)}")
    inner = KerasLayer(cls, inner_cfg.get("config", {}), layer.weights)
    return per_step[cls](inner, ctx)
