"""Exception hierarchy of edgernn.

Every error raised on purpose by edgernn, its converters and its serial bridge
derives from :class:`EdgeRNNError`, and also from the builtin exception a caller
would naturally catch (``ValueError``, ``NotImplementedError``, ``OSError``).
Messages say what was expected and what arrived.
"""

from __future__ import annotations


class EdgeRNNError(Exception):
    """Base class of every error edgernn raises on purpose."""


class ModelFormatError(EdgeRNNError, ValueError):
    """A model file or model description is malformed, corrupt or unsupported."""


class UnsupportedOpError(EdgeRNNError, NotImplementedError):
    """A source-framework construct has no edgernn equivalent."""


class StreamError(EdgeRNNError, ValueError):
    """A stream was used in a way its model does not allow (shape, dtype, mode)."""


class LinkError(EdgeRNNError, OSError):
    """The serial link failed (port missing, closed, timed out)."""


class FrameError(LinkError):
    """A frame on the serial link is malformed (framing, CRC, version, size)."""


__all__ = [
    "EdgeRNNError",
    "ModelFormatError",
    "UnsupportedOpError",
    "StreamError",
    "LinkError",
    "FrameError",
]
