"""Where results go. One table, :data:`SINKS`: ``{type: (schema, class)}``.

``schema(table, source) -> options`` validates a ``[[sink]]`` table (``source``:
the validated ``SourceConf``, for checks across the two); ``class.build(conf,
context)`` makes the sink. Config validation, construction and reload all go
through this table; a new type is its module plus one line here. The base
classes and the JSON record: :mod:`edgernn_serve.sinks.base`.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgernn_serve.sinks.audio import PlaybackSink, WavSink, playback_schema, wav_schema
from edgernn_serve.sinks.base import QueuedSink, Sink, SinkSet, record
from edgernn_serve.sinks.mqtt import MqttSink, mqtt_schema
from edgernn_serve.sinks.serial import SerialSink, serial_schema
from edgernn_serve.sinks.stream import (
    FileSink,
    StdoutSink,
    UdpSink,
    UnixSink,
    no_options,
    path_schema,
    udp_schema,
)

SINKS = {
    "stdout": (no_options, StdoutSink),
    "file": (path_schema, FileSink),
    "udp": (udp_schema, UdpSink),
    "unix": (path_schema, UnixSink),
    "serial": (serial_schema, SerialSink),
    "mqtt": (mqtt_schema, MqttSink),
    "wav": (wav_schema, WavSink),
    "audio": (playback_schema, PlaybackSink),
}


@dataclass
class SinkContext:
    """What a sink is built with besides its table: the device name, stdout's
    stand-in (tests), and a denoising source's ``AudioFormat`` (else None)."""

    device: str
    stdout: object = None
    audio: object = None


def build_sink(conf, ctx: SinkContext) -> Sink:
    """The sink of one validated ``SinkConf``."""
    return SINKS[conf.type][1].build(conf, ctx)


__all__ = ["SINKS", "QueuedSink", "Sink", "SinkContext", "SinkSet", "build_sink", "record"]
