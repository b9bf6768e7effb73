"""edgernn: recurrent neural networks one timestep at a time on small CPUs.

>>> import edgernn
>>> model = edgernn.load("model.ernn")            # doctest: +SKIP
>>> stream = model.stream()                       # doctest: +SKIP
>>> y = stream.step(x)                            # doctest: +SKIP

The runtime imports numpy and numba only.
"""

__version__ = "0.2.0"

from .activations import Activation
from .batch import StreamBatch
from .errors import (
    EdgeRNNError,
    FrameError,
    LinkError,
    ModelFormatError,
    StreamError,
    UnsupportedOpError,
)
from .fileformat import load, read_manifest
from .graph import Input, Tensor, add, concat, mul, slice, split, sub
from .model import Model
from .ops.bidirectional import Bidirectional, Reverse
from .ops.concat import Concat
from .ops.dense import Dense
from .ops.elementwise import Add, Mul, Sub
from .ops.embedding import Embedding
from .ops.gru import GRU
from .ops.lstm import LSTM
from .ops.rnn import RNN
from .ops.slice import Slice
from .quant import QuantParams
from .stream import Stream, StreamState

__all__ = [
    "Activation", "Bidirectional", "Dense", "Embedding", "GRU", "LSTM", "RNN", "Reverse",
    "Concat", "Slice", "Add", "Sub", "Mul", "Input", "Tensor",
    "concat", "add", "sub", "mul", "slice", "split",
    "QuantParams", "Model", "Stream", "StreamBatch", "StreamState", "load", "read_manifest",
    "EdgeRNNError", "ModelFormatError", "UnsupportedOpError", "StreamError",
    "LinkError", "FrameError", "__version__",
]
