"""edgernn: recurrent neural networks one timestep at a time on small CPUs.

>>> import edgernn
>>> model = edgernn.load("model.ernn")            # doctest: +SKIP
>>> stream = model.stream()                       # doctest: +SKIP
>>> y = stream.step(x)                            # doctest: +SKIP

The runtime imports numpy and numba only. Its floors, each importing only the
ones below it (checked by ``lint-imports``): ``cli`` > ``audio`` > ``model`` >
``format`` > ``engine`` > ``ops`` > ``ir`` > ``kernels``.
"""

from .engine.batch import StreamBatch
from .engine.stream import Stream
from .errors import (
    EdgeRNNError,
    FrameError,
    LinkError,
    ModelFormatError,
    StreamError,
    UnsupportedOpError,
)
from .ir.graph import Input, Tensor
from .ir.quant import QuantParams
from .ir.state import StreamState
from .model import Model, load, read_manifest, save
from .ops import OPS
from .ops.functional import add, concat, div, mul, slice, split, state, sub
from .version import __version__

globals().update(OPS)  # every op kind: edgernn.GRU, edgernn.Dense, ... (edgernn.ops)

__all__ = [
    *sorted(OPS), "Input", "Tensor", "concat", "add", "sub", "mul", "div", "slice", "split",
    "state",
    "QuantParams", "Model", "Stream", "StreamBatch", "StreamState", "load", "save",
    "read_manifest", "EdgeRNNError", "ModelFormatError", "UnsupportedOpError", "StreamError",
    "LinkError", "FrameError", "__version__",
]
