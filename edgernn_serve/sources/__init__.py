"""Where frames come from. One table, :data:`SOURCES`: ``{kind: (schema, class)}``.

``schema(table) -> options`` validates a ``[source]`` table (see
:mod:`edgernn_serve.schema`); ``class.build(options, context)`` opens the source.
Config validation, construction and reload all go through this table; a new
kind is its module plus one line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgernn_serve.sources.base import Source
from edgernn_serve.sources.capture import CaptureSource, capture_schema
from edgernn_serve.sources.lines import (
    StdinSource,
    UdpSource,
    UnixSource,
    line_schema,
    udp_schema,
    unix_schema,
)
from edgernn_serve.sources.serial import SerialSource, serial_schema
from edgernn_serve.sources.wav import WavSource, wav_schema

SOURCES = {
    "serial": (serial_schema, SerialSource),
    "stdin": (line_schema, StdinSource),
    "udp": (udp_schema, UdpSource),
    "unix": (unix_schema, UnixSource),
    "wav": (wav_schema, WavSource),
    "audio": (capture_schema, CaptureSource),
}


@dataclass
class SourceContext:
    """What a source is built with besides its options.

    Attributes
    ----------
    submit : callable
        ``submit(items)``: hands frames to the scheduler.
    queue : int
        The input queue's bound (``streams.queue``).
    backlog : callable
        Items waiting in the input queue.
    sizes : callable
        The current model's (input_size, output_size).
    stdin : file or None
        Standard input's stand-in (tests).
    front : tuple or None
        A denoising source's (model rate, hop), else None.
    """

    submit: object
    queue: int
    backlog: object
    sizes: object
    stdin: object = None
    front: tuple | None = None


def build_source(conf, ctx: SourceContext) -> Source:
    """Open the source of a validated ``SourceConf``."""
    return SOURCES[conf.kind][1].build(conf.options, ctx)


__all__ = ["SOURCES", "Source", "SourceContext", "build_source"]
