"""``keras.layers.Embedding`` -> :class:`edgernn.Embedding` (first layer only)."""

from __future__ import annotations

import edgernn
from edgernn.errors import UnsupportedOpError

from .common import expect_weights


def convert_embedding(layer, ctx):
    """``embeddings`` float32[num_embeddings, embedding_dim] is the edgernn ``weight``."""
    if layer.config.get("mask_zero"):
        raise UnsupportedOpError(f"layer {layer.name!r} (Embedding): mask_zero=True is not "
                                 f"supported (edgernn has no masking); supported: mask_zero=False")
    (w,) = expect_weights(layer, 1)
    return [edgernn.Embedding(w)]
