"""The tables of TFLite op converters, one entry per source op.

- :data:`OPS`: a sequence model's per-step ops, ``handler(subgraph, op) -> [layer,
  ...]`` applied to the op's one data input (a feature vector per step).
- :data:`MERGE_OPS`: a sequence model's ops of several operands, ``handler(subgraph,
  op, args) -> Tensor`` (``args``: a Tensor or a constant array per input).
- :data:`WALK`: the graph walked one step at a time with shaped values
  (:mod:`.statewalk`), ``handler(walker, op) -> [places, ...]`` per output.

Recurrent layers (fused LSTM, WHILE loops, unrolled cells) and causal convolutions
over time (:mod:`.time_conv`) are recognised as units before these tables are used.
"""

from __future__ import annotations

from . import activations, conv, elementwise, matmul, pad, pool, recurrent, reduce, shape_ops
from .fused_lstm import convert_fused_lstm
from .merge_ops import convert_concatenation
from .simple_ops import (
    convert_activation,
    convert_fully_connected,
    convert_l2_normalization,
    convert_log_softmax,
    convert_reshape,
)


def _none(sg, op):
    return []


OPS: dict = {**activations.FLAT, **reduce.FLAT, **pad.FLAT, **matmul.FLAT, **pool.FLAT}
OPS.update({
    "FULLY_CONNECTED": convert_fully_connected,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": lambda sg, op: [convert_fused_lstm(sg, op)],
    "LOGISTIC": convert_activation, "TANH": convert_activation, "RELU": convert_activation,
    "SOFTMAX": convert_activation, "LEAKY_RELU": convert_activation,
    "LOG_SOFTMAX": convert_log_softmax, "L2_NORMALIZATION": convert_l2_normalization,
    "RESHAPE": convert_reshape, "SQUEEZE": convert_reshape, "EXPAND_DIMS": convert_reshape,
    "UNPACK": convert_reshape, "TRANSPOSE": shape_ops.flat_transpose,
    "STRIDED_SLICE": _none,
    "QUANTIZE": _none,      # the next layer's QuantParams quantise its input
    "DEQUANTIZE": _none,    # edgernn layer outputs are float32
})
MERGE_OPS: dict = {"CONCATENATION": convert_concatenation, **elementwise.FLAT}

WALK: dict = {**shape_ops.WALK, **activations.WALK, **elementwise.WALK, **reduce.WALK,
              **pad.WALK, **conv.WALK, **pool.WALK, **matmul.WALK, **recurrent.WALK}

__all__ = ["OPS", "MERGE_OPS", "WALK"]
