"""The quantised model before the runtime runs int8: a description that maps 1:1
onto QUANT_SPEC.md, evaluated by the numpy simulation."""

from __future__ import annotations

import numpy as np

from edgernn.errors import UnsupportedOpError

from .simulate import SimStream, trace


class QuantizedModel:
    """What :func:`converters.quantize` returns until ``edgernn.QuantParams`` exists.

    Attributes
    ----------
    layers : tuple of layers; quantised ones are
        :class:`~converters.quantize.qlayer.QuantizedLayer` (int8 matrices, ``quant``)
    float_model : edgernn.Model, the model it was made from
    quantization : dict, the JSON-able report
    provenance, input_size, output_size, return_sequences : as ``edgernn.Model``
    """

    def __init__(self, layers, float_model, report, provenance):
        self.layers = tuple(layers)
        self.float_model = float_model
        self.quantization = report
        self.provenance = provenance
        self.input_size = float_model.input_size
        self.output_size = float_model.output_size
        self.return_sequences = float_model.return_sequences
        self.num_tokens = float_model.num_tokens

    def run(self, xs) -> np.ndarray:
        """float32[T, output_size] over one sequence from zero state."""
        arr = np.asarray(xs)
        seq = arr.astype(np.int64) if self.num_tokens else np.asarray(arr, np.float32)
        ys = trace(self.layers, [seq])[-1][0]
        return ys if self.return_sequences else ys[-1:]

    def stream(self) -> SimStream:
        """A stream (``run``/``step``/``reset``, state carried) over the simulation."""
        return SimStream(self.layers)

    def nbytes(self) -> int:
        """Bytes of weights, scales and biases as the runtime will store them."""
        return int(sum(layer.nbytes() for layer in self.layers))

    def save(self, path) -> None:
        raise UnsupportedOpError("saving an int8 model needs the runtime's int8 layers "
                                 "(edgernn.QuantParams, issue #9), which this edgernn "
                                 "does not have yet")

    def __repr__(self) -> str:
        names = ", ".join(getattr(layer, "kind", None) or type(layer).__name__
                          for layer in self.layers)
        return (f"QuantizedModel([{names}], mode={self.quantization['mode']!r}, "
                f"input_size={self.input_size}, output_size={self.output_size})")
