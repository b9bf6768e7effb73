"""int8 quantisation of an :class:`edgernn.Model` (workstation side).

>>> from converters import quantize
>>> q = quantize(model, calibration="frames.npy", mode="int8")      # doctest: +SKIP
>>> print(q.quantization["end_to_end"]["held_out"])                  # doctest: +SKIP

Modes, per layer (arithmetic: QUANT_SPEC.md; gates and cell state stay float32):

``int8-weights``  dynamic range: int8 weights with a symmetric scale per output
                  row; inputs of every product quantised per call
                  (``max|v| / 127``).
``int8``          static: also the inputs (x) and the recurrent state (h) of every
                  product get a fixed scale and zero point calibrated here.
``float32``       left as it is.

``mode`` is one of these for every layer, or per layer: a dict from layer index
(or node name, ``"0"``, ``"1"``, ...) to mode with an optional ``"default"``
for the others (else they stay float32), e.g. ``{"default": "int8", 2:
"float32"}``; or a list with one entry per layer.

Calibration (:mod:`.calibration`): ``float32[T, I]`` or ``[N, T, I]`` arrays,
an iterable of ``(T, I)`` sequences, a ``.npy``/``.npz`` path (``.wav`` once
an audio front end is registered in ``calibration.LOADERS``). Every layer's
input and state are recorded by streaming the data through the float model one
step at a time, from zero state. Static ranges: for each tensor the candidates
min/max, percentiles (99.9, 99.99), MSE-optimal and (for h of bounded cells)
the activation's bound are each tried, and the one giving the smallest measured
error at the layer's output is kept (``ranges="auto"``; or force one method).

The report (``result.quantization``, JSON-able) holds per layer the precision
it got (and why a layer stayed float), the chosen ranges with every
candidate's measured error, the layer's own error (its float input, only it
quantised) and the cumulative error at its output; end to end; each on the
calibration data and on a held-out split (``held_out=`` data, or carved off:
the last fifth of the sequences, or of the steps of a single sequence):
``max_abs``, ``rms`` and ``snr_db`` against the float model.

``dynamic="asymmetric"`` quantises the inputs of ``int8-weights`` products per
call with a zero point (``s = (max(v, 0) - min(v, 0)) / 255``) as LiteRT and
ONNX Runtime do: a proposed addition to QUANT_SPEC (``QuantParams.dynamic_zero_point``),
measured in ``bench/quant_accuracy.py``; the default is QUANT_SPEC's symmetric
``max|v| / 127``.

``max_error=E`` returns layers to float32, each time the one whose return
lowers the end-to-end max abs error on the calibration data most, until that
error is at most E; ``report["kept_float"]`` lists them.
"""

from __future__ import annotations

from .calibration import LOADERS, CalibrationError, load_sequences
from .core import quantize, resolve_modes
from .qlayer import QuantizedLayer, QuantParams, quantize_weight

__all__ = ["quantize", "resolve_modes", "load_sequences", "CalibrationError", "LOADERS",
           "QuantizedLayer", "QuantParams", "quantize_weight"]


class _CallableModule(__import__("types").ModuleType):
    """``converters.quantize`` is both this package and the function: importing the
    package makes it the attribute of ``converters``, so the package is callable."""

    def __call__(self, model, calibration=None, **kwargs):
        return quantize(model, calibration, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
