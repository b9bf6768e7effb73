"""The one table of ONNX op converters: op type -> ``handler(ctx, node, inputs)``.

A handler gets the :class:`~converters.onnx.context.Context`, the NodeProto
and the symbolic values of its inputs (None for an omitted optional input),
and returns the symbolic values of its outputs in order.
"""

from __future__ import annotations

from .activations import OPS as _ACTIVATION_OPS
from .cache import OPS as _CACHE_OPS
from .cache_select import OPS as _CACHE_SELECT_OPS
from .chomp import OPS as _CHOMP_OPS
from .concat import OPS as _CONCAT_OPS
from .conv import OPS as _CONV_OPS
from .conv2d import OPS as _CONV2D_OPS
from .conv_transpose import OPS as _CONV_TRANSPOSE_OPS
from .elementwise import OPS as _ELEMENTWISE_OPS
from .gemm import OPS as _GEMM_OPS
from .gru import convert_gru
from .lstm import convert_lstm
from .normalization import OPS as _NORMALIZATION_OPS
from .norms import OPS as _NORM_OPS
from .pad import OPS as _PAD_OPS
from .pointwise import OPS as _POINTWISE_OPS
from .pool import OPS as _POOL_OPS
from .quantized import MS_OPS
from .quantized import OPS as _QUANT_OPS
from .reduce import OPS as _REDUCE_OPS
from .regroup import OPS as _REGROUP_OPS
from .rnn import convert_rnn
from .select import OPS as _SELECT_OPS
from .shape_ops import OPS as _SHAPE_OPS
from .tile import OPS as _TILE_OPS
from .unary import OPS as _UNARY_OPS

OPS: dict = {"LSTM": convert_lstm, "GRU": convert_gru, "RNN": convert_rnn}
# unary after norms (it hands a norm's Sqrt/Clip/Max/Pow back to them); quantised last:
# Mul, Cast fall back
for _table in (_GEMM_OPS, _ELEMENTWISE_OPS, _ACTIVATION_OPS, _SHAPE_OPS, _SELECT_OPS,
               _CONCAT_OPS, _CONV_OPS, _NORM_OPS, _PAD_OPS, _REDUCE_OPS, _UNARY_OPS,
               _NORMALIZATION_OPS, _POINTWISE_OPS, _CHOMP_OPS, _POOL_OPS, _REGROUP_OPS,
               _TILE_OPS, _CONV2D_OPS,
               _CONV_TRANSPOSE_OPS, _CACHE_OPS, _CACHE_SELECT_OPS, _QUANT_OPS):
    OPS.update(_table)

#: ops in the table only to refuse them with a specific message
REFUSED: frozenset = frozenset()

#: ops computed on runtime shapes only (Shape chains building zero states)
SHAPE_ARITH = frozenset({"Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast",
                         "Reshape", "Mul", "Add", "Sub", "Div", "Equal", "Where", "Identity",
                         "Range", "Max", "Min", "ReduceProd"})

#: ops that are never folded even with constant inputs
NO_FOLD = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                     "Bernoulli", "Multinomial"})

__all__ = ["OPS", "MS_OPS", "REFUSED", "SHAPE_ARITH", "NO_FOLD"]
