"""State names asked of the op, not derived from its type."""

from __future__ import annotations


def state_prefixes(op) -> list[str]:
    """The prefix of each part's state in a stream: ``[""]`` for a plain recurrent op,
    ``["forward.", "backward."]`` for a Bidirectional, ``["reverse."]`` for a Reverse
    (from ``op.inner()``), so its h is ``"<node>.<prefix>h"``."""
    return [f"{part}." for part, _ in op.inner()] or [""]


def state_names(op) -> list[str]:
    """Every state vector's name suffix, e.g. ``["forward.h", "forward.c", "backward.h",
    "backward.c"]`` (from ``op.inner()`` and ``op.state_vectors()``)."""
    parts = op.inner() or (("", op),)
    return [f"{part}.{s}" if part else s for part, inner in parts
            for s, _ in inner.state_vectors()]


__all__ = ["state_prefixes", "state_names"]
