"""edgernn: recurrent neural networks one timestep at a time on small CPUs.

>>> import edgernn
>>> model = edgernn.load("model.ernn")            # doctest: +SKIP
>>> stream = model.stream()                       # doctest: +SKIP
>>> y = stream.step(x)                            # doctest: +SKIP

The runtime imports numpy and numba only.
"""

__version__ = "0.1.0"

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
from .layers import GRU, LSTM, RNN, Dense, Embedding
from .model import Model
from .stream import Stream, StreamState
from .wrappers import Bidirectional, Reverse

__all__ = [
    "Activation", "Bidirectional", "Dense", "Embedding", "GRU", "LSTM", "RNN", "Reverse",
    "Model", "Stream", "StreamBatch", "StreamState", "load", "read_manifest",
    "EdgeRNNError", "ModelFormatError", "UnsupportedOpError", "StreamError",
    "LinkError", "FrameError", "__version__",
]
