"""The last line of a converter's checks: an error no check foresaw names where.

Each reader checks what it can name precisely (:mod:`converters.onnx.validate`,
:mod:`converters.tflite.verify`, :mod:`converters.keras.reader`). A malformed
file can still reach a converter in a shape no check describes (a bad index
into a list of gates, a list where a Keras config holds an object); :func:`naming` turns
such an error into one :class:`~edgernn.errors.ModelFormatError` naming the
node, operator or layer, so a user sees a message, never a traceback. The
fuzzer (``bench/fuzz_converters.py``) counts how often it is reached.
"""

from __future__ import annotations

import struct
from contextlib import contextmanager

from edgernn.errors import EdgeRNNError, ModelFormatError

#: what a converter meeting malformed data raises by itself
MALFORMED = (ArithmeticError, AttributeError, LookupError, TypeError, ValueError, struct.error,
             RecursionError)


@contextmanager
def naming(where: str):
    """Re-raise a :data:`MALFORMED` error as a ModelFormatError naming ``where``.

    Parameters
    ----------
    where : str
        e.g. ``"LSTM node 'lstm'"``, ``"operator 3 in subgraph 'main'"``.
    """
    try:
        yield
    except EdgeRNNError:
        raise
    except MALFORMED as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ModelFormatError(f"{where}: malformed or unsupported "
                               f"({type(exc).__name__}: {first})") from exc


__all__ = ["naming", "MALFORMED"]
