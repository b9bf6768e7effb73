"""The daemon's TOML configuration, validated once at start (and on every reload).

Every error is a :class:`ConfigError` whose message names the file and the key
(``/etc/edgernn.toml: sink[1].qos: expected 0, 1 or 2, got 3``). Unknown keys,
wrong types and out-of-range values are refused; nothing is coerced except an
integer where a float is expected. Relative paths are taken from the directory
of the config file. ``docs/serve.md`` lists every key.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from edgernn_serve.schema import ConfigError, ConfigFile, Table, one_of, parse_hostport
from edgernn_serve.sinks import SINKS
from edgernn_serve.sources import SOURCES
from edgernn_serve.vad import VadConf, vad_schema

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

LOG_LEVELS = ("debug", "info", "warning", "error")
HOP_MS = 10.0  # the denoiser's hop: the default deadline of a denoising source
MAX_FILE = 1 << 20  # bytes of config: a TOML file beyond this is refused unread
MAX_DEPTH = 16  # TOML arrays and tables nested deeper are refused before parsing

__all__ = ["Config", "ConfigError", "DenoiseConf", "ModelConf", "SinkConf", "SourceConf",
           "StreamsConf", "VadConf", "load_config"]


@dataclass(frozen=True)
class ModelConf:
    path: Path
    id: str
    math: str = "fast"
    public_key: Path | None = None


@dataclass(frozen=True)
class SourceConf:
    """``kind`` plus its validated options (see docs/serve.md)."""

    kind: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DenoiseConf:
    """``[denoise]``: the denoiser's knobs (reloadable)."""

    attenuation_limit_db: float | None = None
    report_every: int = 10


@dataclass(frozen=True)
class SinkConf:
    type: str
    name: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StreamsConf:
    max: int = 64
    queue: int = 4096
    reset_on_gap: bool = True
    idle_reset_s: float = 0.0
    state_limit: float = 1e4
    deadline_ms: float = 1.0
    inline: bool = True


@dataclass(frozen=True)
class Config:
    path: Path
    device: str
    log_level: str
    model: ModelConf
    source: SourceConf
    sinks: tuple
    streams: StreamsConf
    metrics_listen: tuple | None
    cpus: tuple | None
    realtime_priority: int
    denoise: DenoiseConf | None = None  # set when source.denoise = true
    vad: VadConf | None = None  # [vad] (needs source.denoise = true)


def _read_toml(path: Path) -> dict:
    """The parsed file, or a one-line ConfigError (never a traceback, never unbounded)."""
    try:
        with open(path, "rb") as fh:
            if not fh.seekable() or not Path(path).is_file():
                raise ConfigError(f"{path}: not a regular file")
            raw = fh.read(MAX_FILE + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: not a regular file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror or e}") from None
    if len(raw) > MAX_FILE:
        raise ConfigError(f"{path}: the config file is larger than {MAX_FILE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not valid TOML: byte 0x{raw[e.start]:02x} at line {line} "
                          f"is not UTF-8") from None
    depth = 0
    for ch in text:  # tomllib recurses per nesting level: refuse deep nesting first
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{path}: not valid TOML for edgernn: arrays or tables "
                                  f"nested deeper than {MAX_DEPTH}")
        elif ch in "]}":
            depth = max(depth - 1, 0)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML for edgernn: nested too deeply") from None


class _Loader(ConfigFile):
    def load(self) -> Config:
        top = Table(_read_toml(self.path), "", self)
        device = top.name("device", socket.gethostname() or "edgernn")
        check, expect = one_of(LOG_LEVELS)
        log_level = top.take("log_level", str, "info", check, expect)
        source = self.source(Table(top.take("source", dict), "source.", self))
        denoising = source.options.get("denoise", False)
        m = Table(top.take("model", dict, {} if denoising else ...), "model.", self)
        mpath = m.path("path", _bundled_denoiser() if denoising else ...)
        check, expect = one_of(("fast", "exact"))
        model = ModelConf(mpath, m.take("id", str, Path(mpath).stem, lambda s: s != "",
                                        "a non-empty string"),
                          m.take("math", str, "fast", check, expect), m.path("public_key", None))
        m.done()
        sinks_raw = top.take("sink", list, None, lambda v: len(v) > 0,
                             "an array of [[sink]] tables")
        if sinks_raw is None:
            raise ConfigError(f"{self.path}: sink: at least one [[sink]] table is required")
        sinks = tuple(self.sink(Table(s, f"sink[{i}].", self), i, source)
                      for i, s in enumerate(sinks_raw))
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ConfigError(f"{self.path}: sink: names must be unique, got {names}")
        streams = self.streams(Table(top.take("streams", dict, {}), "streams.", self),
                               HOP_MS if denoising else 1.0)
        dn = top.take("denoise", dict, None)
        if dn is not None and not denoising:
            raise ConfigError(f"{self.path}: denoise: a [denoise] table needs a denoising "
                              f"source (source.denoise = true)")
        denoise = self.denoise(Table(dn or {}, "denoise.", self)) if denoising else None
        vt = top.take("vad", dict, None)
        if vt is not None and not (denoising or source.options.get("features") == "samples"):
            raise ConfigError(f"{self.path}: vad: a [vad] table needs an audio source (kind "
                              f"\"wav\" or \"audio\") with denoise = true or features = "
                              f"\"samples\", got kind {source.kind!r}"
                              + (f" with features {source.options['features']!r}"
                                 if "features" in source.options else ""))
        vad = None if vt is None else vad_schema(Table(vt, "vad.", self),
                                                *one_of(("fast", "exact")))
        mt = Table(top.take("metrics", dict, {}), "metrics.", self)
        listen = mt.take("listen", str, "127.0.0.1:9108",
                         lambda s: s == "" or parse_hostport(s) is not None,
                         "'host:port' or '' (off)")
        mt.done()
        pr = Table(top.take("process", dict, {}), "process.", self)
        cpus = pr.take("cpus", list, None, lambda v: v and all(
            isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 4096 for c in v),
            "a non-empty array of CPU numbers")
        rt = pr.take("realtime_priority", int, 0, lambda v: 0 <= v <= 99, "0 (off) to 99")
        pr.done()
        top.done()
        return Config(self.path, device, log_level, model, source, sinks, streams,
                      parse_hostport(listen) if listen else None,
                      tuple(cpus) if cpus else None, rt, denoise, vad)

    def source(self, t: Table) -> SourceConf:
        url = t.data.get("url")
        check, expect = one_of(tuple(SOURCES))
        kind = t.take("kind", str, "serial" if url is not None else ..., check, expect)
        if url is not None and kind != "serial":
            raise t.fail("url", f"only serial sources take a url (kind = {kind!r})")
        options = SOURCES[kind][0](t)
        t.done()
        return SourceConf(kind, options)

    def denoise(self, t: Table) -> DenoiseConf:
        d = DenoiseConf(
            attenuation_limit_db=t.take("attenuation_limit_db", float, None, lambda v: v >= 0,
                                        "decibels >= 0"),
            report_every=t.take("report_every", int, 10, lambda v: 1 <= v <= 1_000_000,
                                "1 to 1000000 frames"))
        t.done()
        return d

    def sink(self, t: Table, i: int, source: SourceConf) -> SinkConf:
        check, expect = one_of(tuple(SINKS))
        kind = t.take("type", str, ..., check, expect)
        schema, cls = SINKS[kind]
        name = t.name("name", f"{kind}{i}" if kind != "stdout" else "stdout")
        o = {}
        if cls.buffered:
            o["buffer"] = t.take("buffer", int, 10000, lambda v: 1 <= v <= 10_000_000,
                                 "1 to 10000000 messages")
        o.update(schema(t, source))
        t.done()
        return SinkConf(kind, name, o)

    def streams(self, t: Table, deadline_ms: float) -> StreamsConf:
        s = StreamsConf(
            max=t.take("max", int, 64, lambda v: 1 <= v <= 65536, "1 to 65536"),
            queue=t.take("queue", int, 4096, lambda v: 1 <= v <= 10_000_000, "1 to 10000000"),
            reset_on_gap=t.take("reset_on_gap", bool, True),
            idle_reset_s=t.take("idle_reset", float, 0.0, lambda v: v >= 0, "seconds >= 0"),
            state_limit=t.take("state_limit", float, 1e4, lambda v: v >= 0, "a number >= 0"),
            deadline_ms=t.take("deadline_ms", float, deadline_ms, lambda v: v > 0,
                               "milliseconds > 0"),
            inline=t.take("inline", bool, True))
        t.done()
        return s


def _bundled_denoiser() -> Path:
    from edgernn.audio.denoiser import BUNDLED

    return BUNDLED


def load_config(path) -> Config:
    """Read and validate the TOML file at ``path``.

    Raises
    ------
    ConfigError
        Naming the file and the offending key.
    """
    return _Loader(Path(path)).load()
