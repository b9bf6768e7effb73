"""int8 quantisation of an :class:`edgernn.Model` (workstation side).

>>> from converters import quantize
>>> q = quantize(model, calibration="frames.npy", mode="int8")      # doctest: +SKIP
>>> print(q.quantization["end_to_end"]["held_out"])                  # doctest: +SKIP

Modes, per op (arithmetic: :mod:`edgernn.ir.quant`; gates and cell state stay float32):

``int8-weights``  dynamic range: int8 weights with a symmetric scale per output
                  row; the inputs of every product quantised per call, with a
                  zero point (``dynamic="asymmetric"``, the default: LiteRT's
                  and ONNX Runtime's scheme) or symmetric (``max|v| / 127``).
``int8``          static: also the inputs (x) and the recurrent state (h) of every
                  product get a fixed scale and zero point calibrated here.
``float32``       left as it is.

The model may be a stack or a graph: every node whose op is a Dense, RNN, LSTM
or GRU is quantised, the others (Concat, Slice, activations, ...) stay as they
are, and the result is the same graph (node names, inputs, outputs) with int8
ops. ``mode`` is one of the modes for every node, or per node: a dict from node
name (or index in ``model.graph.nodes``) to mode with an optional ``"default"``
for the others (else they stay float32), e.g. ``{"default": "int8", "gru2":
"float32"}``; or a list with one entry per node.

Calibration (:mod:`.calibration`): ``float32[T, I]`` or ``[N, T, I]`` arrays,
an iterable of ``(T, I)`` sequences, a ``.npy``/``.npz`` path (``.wav`` once
an audio front end is registered in ``calibration.LOADERS``). Every tensor of
the float model is recorded by streaming the data through it one step at a
time, from zero state. Static ranges: for each op's input and state the
candidates min/max, percentiles (99.9, 99.99), MSE-optimal and (for h of
bounded cells) the activation's bound are each tried, and the one giving the
smallest measured error at the op's output is kept (``ranges="auto"``; or
force one method).

Everything is measured in the edgernn engine on the quantised ops. The report
(``result.quantization``, JSON-able, stored in the ``.ernn`` manifest, printed by
``edgernn inspect``) holds per node the precision it got (and why a node
stayed float), the chosen ranges with every candidate's measured error, the
op's own error (its float input, only it quantised) and the cumulative error
at its output; end to end; each on the calibration data and on a held-out
split (``held_out=`` data, or carved off: the last fifth of the sequences, or
of the steps of a single sequence): ``max_abs``, ``rms`` and ``snr_db``
against the float model (4 significant digits).

Small products stay float32 (``min_macs``, default 16384 multiply-accumulates per
step): where the mode does not name a node (a single mode, or a dict's
``"default"``), a Dense, RNN, LSTM or GRU doing fewer MACs per step is kept float,
because each step's input quantisation and dequantisation cost more than its int8
products save (``bench/int8_small.py``: a GRU 16->32 runs 1.4x float in int8, a
Dense 128->64 0.97x, 16384 MACs and up 0.4-0.6x, on AVX-512 VNNI; CPUs without a
dot-product instruction cross later). The report gives the reason, ``describe()``
shows ``[float: small]``; ``min_macs=0`` quantises every node. The choice depends on
shapes only: the model computes the same on every CPU.

``max_error=E`` returns nodes to float32, each time the one whose return
lowers the end-to-end max abs error on the calibration data most, until that
error is at most E; ``report["kept_float"]`` names them.
"""

from __future__ import annotations

from .calibration import LOADERS, CalibrationError, load_sequences
from .core import quantize
from .modes import MIN_MACS, resolve_modes
from .qlayer import build, quantize_weight

__all__ = ["quantize", "resolve_modes", "MIN_MACS", "load_sequences", "CalibrationError", "LOADERS",
           "build", "quantize_weight"]


class _CallableModule(__import__("types").ModuleType):
    """``converters.quantize`` is both this package and the function: importing the
    package makes it the attribute of ``converters``, so the package is callable."""

    def __call__(self, model, calibration=None, **kwargs):
        return quantize(model, calibration, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
