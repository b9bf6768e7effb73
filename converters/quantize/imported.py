"""Models that arrive already quantised (LiteRT int8, ONNX Runtime quantised ops).

An importer builds each op in float32 from the source's dequantised weights
(``W = (W_q - zp) * s``, exactly representable) and says how the source
quantised it with a :class:`SourceQuant`; :func:`assemble` turns the graph into
the quantised model: the source's int8 weights and per-row scales are recovered
exactly (``rint(W / s)``, checked), its input/state scales and zero points and
its rounding become ``edgernn.QuantParams``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgernn.errors import ModelFormatError

from . import trace
from .qlayer import kind, with_int8


@dataclass
class SourceQuant:
    """A float ``layer`` (dequantised weights) and how the source quantised it.

    scales : weight field name -> float32[rows], the source's scale of each row
        (a per-tensor scale repeated); weights must be ``W_q * s`` exactly.
    x_range, h_range : (scale, zero_point) of the input / recurrent state ("int8")
    y_range : (scale, zero_point) of a Dense's requantised 8-bit output, or None
    round_half_away : the source rounds ``v / s`` half away from zero (LiteRT)
    note : where the source's arithmetic differs from edgernn's
    """

    layer: object
    mode: str
    scales: dict
    dynamic_zero_point: bool = False
    x_range: tuple | None = None
    h_range: tuple | None = None
    y_range: tuple | None = None
    round_half_away: bool = False
    note: str = ""
    source: dict = field(default_factory=dict)


def int8_weights(w, s) -> np.ndarray:
    """The int8 matrix with ``w == q * s`` (rows scaled by ``s``); raises if w is not on
    that grid (the source's weights were not symmetric int8 with these scales)."""
    w64 = np.asarray(w, np.float64)
    s64 = np.asarray(s, np.float64)[:, None]
    q = np.rint(w64 / s64)
    if np.abs(q).max(initial=0) > 127 or np.any(np.abs(q * s64 - w64) > 1e-3 * s64):
        raise ModelFormatError("weights are not symmetric int8 values times the given "
                               "per-row scales")
    return q.astype(np.int8)


def quantised_layer(sq: SourceQuant):
    """The runtime op of ``sq``: int8 weights, the source's parameters, biases merged."""
    weights = {n: int8_weights(getattr(sq.layer, n), sq.scales[n]) for n in sq.layer.quantizable}
    scales = {n: np.asarray(sq.scales[n], np.float32) for n in sq.layer.quantizable}
    kw = {}
    if sq.mode == "int8":
        kw = {"input_scale": float(sq.x_range[0]), "input_zero_point": int(sq.x_range[1])}
        if sq.layer.state_vectors():
            kw.update(state_scale=float(sq.h_range[0]), state_zero_point=int(sq.h_range[1]))
    elif sq.dynamic_zero_point:
        kw["dynamic_zero_point"] = True
    if sq.y_range is not None:
        kw.update(output_scale=float(sq.y_range[0]), output_zero_point=int(sq.y_range[1]))
    return with_int8(sq.layer, weights, mode=sq.mode, scales=scales,
                     round_half_away=sq.round_half_away, **kw)


def assemble(model, quant: dict, provenance: dict | None = None):
    """``model`` (float, dequantised weights) with node ``name``'s op replaced by the
    int8 op of ``quant[name]`` (a :class:`SourceQuant`).

    Returns the ``edgernn.Model`` with ``quantization`` set: per node the source's
    quantisation and where its arithmetic differs (no error figures: the source
    fixed the parameters; compare against the source's runtime).
    """
    ops, info = {}, []
    for i, t in enumerate(model.graph.nodes):
        sq = quant.get(t.name)
        if sq is not None:
            ops[t.name] = quantised_layer(sq)
            info.append({"index": i, "name": t.name, "type": kind(t.op), "precision": sq.mode,
                         "dynamic_zero_point": sq.dynamic_zero_point,
                         "round_half_away": sq.round_half_away, "note": sq.note,
                         "source": sq.source, "error": None, "cumulative": None})
        elif t.op.quantizable:
            info.append({"index": i, "name": t.name, "type": kind(t.op),
                         "precision": "float32", "reason": "float in the source",
                         "error": None, "cumulative": None})
    modes = {e["precision"] for e in info}
    prov = model.provenance if provenance is None else provenance
    report = {"format": 2, "mode": modes.pop() if len(modes) == 1 else "mixed",
              "source": prov.get("source"), "measured_with": None,
              "layers": info, "end_to_end": None, "warnings": [],
              "note": "quantisation parameters taken from the source model"}
    return trace.rebuild(model, ops, report, prov)
