"""Embedding: ``y = weight[token]``. Kernel: :mod:`edgernn.kernels.embedding`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFormatError
from ..kernels import optable as T
from .base import Op, f32_array
from .registry import register


@register
@dataclass(frozen=True, eq=False)
class Embedding(Op):
    """Token lookup ``y = weight[token]``; applied to a model input, the model takes
    token ids instead of float vectors.

    Parameters
    ----------
    weight : float32[num_embeddings, embedding_dim]
    """

    weight: np.ndarray
    _arrays = ("weight",)
    kernel = "embedding:embedding_kernel"

    def __post_init__(self):
        w = f32_array("weight", self.weight, None, owner="Embedding")
        if w.ndim != 2 or 0 in w.shape:
            raise ModelFormatError(f"Embedding.weight: expected a non-empty 2-D array, "
                                   f"got {w.shape}")
        object.__setattr__(self, "weight", w)

    input_size = property(lambda self: 1)
    output_size = property(lambda self: self.weight.shape[1])
    num_embeddings = property(lambda self: self.weight.shape[0])
    tokens = num_embeddings

    def pack(self, pk, row, state) -> None:
        row[T.WOFF] = pk.f32(self.weight)
        row[T.NUM] = self.num_embeddings
