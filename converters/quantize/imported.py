"""Models that arrive already quantised (LiteRT int8, ONNX Runtime quantised ops).

An importer builds each layer in float32 from the source's dequantised weights
(``W = (W_q - zp) * s``, exactly representable) and says how the source
quantised it with a :class:`SourceQuant`; :func:`assemble` turns the chain into
the quantised model: the source's int8 weights and per-row scales are recovered
exactly (``rint(W / s)``, checked), its input/state scales and zero points
become ``QuantParams``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import edgernn
from edgernn.errors import ModelFormatError

from .qlayer import MATRICES, QuantizedLayer, QuantParams, kind, runtime_has_int8


@dataclass
class SourceQuant:
    """A float ``layer`` (dequantised weights) and how the source quantised it.

    scales : weight field name -> float32[rows], the source's scale of each row
        (a per-tensor scale repeated); weights must be ``W_q * s`` exactly.
    x_range, h_range : (scale, zero_point) of the input / recurrent state ("int8")
    note : where the source's arithmetic differs from QUANT_SPEC.md
    """

    layer: object
    mode: str
    scales: dict
    dynamic_zero_point: bool = False
    x_range: tuple | None = None
    h_range: tuple | None = None
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
    k = kind(sq.layer)
    weights = {n: int8_weights(getattr(sq.layer, n), sq.scales[n]) for n in MATRICES[k]}
    scales = {n: np.asarray(sq.scales[n], np.float32) for n in MATRICES[k]}
    kw = {}
    if sq.mode == "int8":
        kw = {"input_scale": float(sq.x_range[0]), "input_zero_point": int(sq.x_range[1])}
        if k != "Dense":
            kw.update(state_scale=float(sq.h_range[0]), state_zero_point=int(sq.h_range[1]))
    if sq.dynamic_zero_point:
        kw["dynamic_zero_point"] = True
    if runtime_has_int8():
        import dataclasses

        return dataclasses.replace(sq.layer, **weights,
                                   quant=edgernn.QuantParams(mode=sq.mode, scales=scales, **kw))
    return QuantizedLayer(sq.layer, weights, QuantParams(sq.mode, scales, **kw))


def assemble(items, provenance: dict, return_sequences: bool = True):
    """The model from a chain of float layers and :class:`SourceQuant` items.

    Returns an ``edgernn.Model`` with ``quantization`` set (once the runtime has
    int8), else a :class:`~converters.quantize.model.QuantizedModel`; the report
    names each layer's source quantisation and where its arithmetic differs.
    """
    floats, layers, info = [], [], []
    for i, it in enumerate(items):
        if isinstance(it, SourceQuant):
            floats.append(it.layer)
            layers.append(quantised_layer(it))
            info.append({"index": i, "type": kind(it.layer), "precision": it.mode,
                         "dynamic_zero_point": it.dynamic_zero_point, "note": it.note,
                         "source": it.source, "error": None, "cumulative": None})
        else:
            floats.append(it)
            layers.append(it)
            info.append({"index": i, "type": kind(it), "precision": "float32",
                         "reason": "float in the source", "error": None, "cumulative": None})
    modes = {e["precision"] for e in info if kind(floats[e["index"]]) in MATRICES}
    report = {"format": 1, "mode": modes.pop() if len(modes) == 1 else "mixed",
              "source": provenance.get("source"), "measured_with": None,
              "layers": info, "end_to_end": None, "warnings": [],
              "note": "quantisation parameters taken from the source model"}
    float_model = edgernn.Model(floats, provenance=provenance,
                                return_sequences=return_sequences)
    if runtime_has_int8():
        out = edgernn.Model(layers, provenance=provenance, return_sequences=return_sequences)
        out.quantization = report
        return out
    from .model import QuantizedModel

    return QuantizedModel(layers, float_model, report, provenance)
