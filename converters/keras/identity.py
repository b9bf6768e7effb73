"""Layers that do nothing at inference: InputLayer, Dropout and its kin."""

from __future__ import annotations


def convert_identity(layer, ctx):
    """No edgernn layer: dropout and noise layers are inactive at inference."""
    return []
