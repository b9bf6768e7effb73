"""State names asked of the op, not derived from its type."""

from __future__ import annotations


def state_prefixes(op) -> list[str]:
    """The prefix of each part's state in a stream: ``[""]`` for a plain recurrent op,
    ``["forward.", "backward."]`` for a Bidirectional, ``["reverse."]`` for a Reverse
    (from ``op.inner()``), so its h is ``"<node>.<prefix>h"``."""
    return [f"{part}." for part, _ in op.inner()] or [""]


__all__ = ["state_prefixes"]
