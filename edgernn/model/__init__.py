"""The user-facing model: :class:`Model` (a graph of ops with its streams), ``load`` and
``save`` of ``.ernn`` files, and summaries."""

from .io import load, read_manifest, save
from .model import Model, Segment

__all__ = ["Model", "Segment", "load", "save", "read_manifest"]
