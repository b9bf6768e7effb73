"""Which precision each node of a model gets: the mode asked, per node, and the small
products that stay float32 where int8 would be slower (:data:`MIN_MACS`)."""

from __future__ import annotations

import numpy as np

from edgernn.errors import ModelFormatError

from .qlayer import MODES

PRECISIONS = ("float32",) + MODES
#: below this many MACs per step, a blanket int8 request keeps a product in float32 (the
#: input quantisation, accumulator clearing and dequantisation of each step cost more than
#: the integer products save: measured with ``bench/int8_small.py``)
MIN_MACS = 16384


def _node_index(key, names: dict, n: int) -> int:
    """The index in ``graph.nodes`` of a mode's key: a node name, an index, or its digits."""
    if isinstance(key, str) and key in names:
        return names[key]
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < n:
        return key
    if isinstance(key, str) and key.isdigit() and int(key) < n:
        return int(key)
    shown = ", ".join(list(names)[:12]) + (", ..." if n > 12 else "")
    raise ModelFormatError(f"mode: layer {key!r} does not exist; expected a node name "
                           f"({shown}), an index in 0..{n - 1}, or 'default'")


def resolve_modes(model, mode) -> list[str]:
    """Per node of ``model.graph.nodes``: "float32", "int8-weights" or "int8".

    ``mode`` is one precision for every node; a dict from node (its name, or its
    index in ``graph.nodes``) to precision, with an optional ``"default"`` entry
    for the nodes not named (else they stay float32); or a list with one
    precision (or None: float32) per node.
    """
    nodes = model.graph.nodes
    n = len(nodes)
    names = {t.name: i for i, t in enumerate(nodes)}

    def check(v, where):
        v = "float32" if v is None else v
        if v not in PRECISIONS:
            raise ModelFormatError(f"mode{where}: expected one of {list(PRECISIONS)}, "
                                   f"got {v!r}")
        return v

    if isinstance(mode, str) or mode is None:
        return [check(mode, "")] * n
    if isinstance(mode, dict):
        per = [check(mode.get("default"), "['default']")] * n
        for key, v in mode.items():
            if key != "default":
                per[_node_index(key, names, n)] = check(v, f"[{key!r}]")
        return per
    if isinstance(mode, (list, tuple)):
        if len(mode) != n:
            raise ModelFormatError(f"mode: expected one precision per node ({n}), got "
                                   f"{len(mode)}")
        return [check(v, f"[{i}]") for i, v in enumerate(mode)]
    raise ModelFormatError(f"mode: expected a str, dict or list, got {type(mode).__name__}")


def small_nodes(model, mode, per, min_macs) -> dict:
    """{node index: reason} for the nodes ``mode`` leaves to the default and that do fewer
    than ``min_macs`` MACs per step; their entry in ``per`` becomes "float32"."""
    if isinstance(min_macs, bool) or not isinstance(min_macs, (int, np.integer)) \
            or min_macs < 0:
        raise ModelFormatError(f"min_macs: expected a whole number >= 0, got {min_macs!r}")
    if isinstance(mode, (list, tuple)):
        return {}
    nodes = model.graph.nodes
    names = {t.name: i for i, t in enumerate(nodes)}
    named = {_node_index(k, names, len(nodes)) for k in mode if k != "default"} \
        if isinstance(mode, dict) else set()
    out = {}
    for i, t in enumerate(model.graph.nodes):
        macs = t.op.macs()
        if i in named or per[i] == "float32" or not t.op.quantizable or macs >= min_macs:
            continue
        per[i] = "float32"
        out[i] = (f"small: {macs} MACs per step < min_macs={min_macs}, where int8 is slower "
                  f"than float32 (min_macs=0 quantises it)")
    return out
