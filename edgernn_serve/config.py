"""The daemon's TOML configuration, validated once at start (and on every reload).

Every error is a :class:`ConfigError` whose message names the file and the key
(``/etc/edgernn.toml: sink[1].qos: expected 0, 1 or 2, got 3``). Unknown keys,
wrong types and out-of-range values are refused; nothing is coerced except an
integer where a float is expected. Relative paths are taken from the directory
of the config file. ``docs/serve.md`` lists every key.
"""

from __future__ import annotations

import os
import socket
import string
from dataclasses import dataclass, field
from pathlib import Path

from edgernn.errors import EdgeRNNError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

SOURCE_KINDS = ("serial", "stdin", "udp", "unix", "wav", "audio")
SINK_TYPES = ("stdout", "file", "udp", "unix", "serial", "mqtt", "wav", "audio")
AUDIO_SINKS = ("wav", "audio")  # they take the denoised audio (source.denoise = true)
LOG_LEVELS = ("debug", "info", "warning", "error")
FEATURES = ("samples", "stft", "log_power")
WAV_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
HOP_MS = 10.0  # the denoiser's hop: the default deadline of a denoising source


class ConfigError(EdgeRNNError, ValueError):
    """The configuration file is missing, unreadable or invalid (names the key)."""

    def naming(self, path) -> ConfigError:
        """This error with its message prefixed by the config file ``path`` (once)."""
        return self if str(self).startswith(str(path)) else type(self)(f"{path}: {self}")


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


class _Table:
    """A TOML table being validated: ``take`` each key, then ``done`` refuses the rest."""

    def __init__(self, data, where: str, cfg: _Loader):
        if not isinstance(data, dict):
            raise cfg.error(where.rstrip("."), "a table", data)
        self.data, self.where, self.cfg, self.seen = data, where, cfg, set()

    def take(self, key, kind, default=..., check=None, expect=None):
        self.seen.add(key)
        if key not in self.data:
            if default is ...:
                raise ConfigError(f"{self.cfg.path}: {self.where}{key}: required key is missing")
            return default
        val = self.data[key]
        ok = isinstance(val, kind) and not (isinstance(val, bool) and kind in (int, float))
        if kind is float and isinstance(val, int) and not isinstance(val, bool):
            val, ok = float(val), True
        if not ok or (check is not None and not check(val)):
            name = expect or {str: "a string", int: "an integer", float: "a number",
                              bool: "true or false", list: "an array"}.get(kind, str(kind))
            raise self.cfg.error(f"{self.where}{key}", name, val)
        return val

    def path(self, key, default=...):
        val = self.take(key, str, default, lambda s: s != "", "a non-empty path")
        return val if val is None or val is default else self.cfg.resolve(val)

    def done(self):
        extra = sorted(set(self.data) - self.seen)
        if extra:
            raise ConfigError(f"{self.cfg.path}: {self.where}{extra[0]}: unknown key "
                              f"(expected one of {', '.join(sorted(self.seen))})")


def parse_hostport(text: str) -> tuple | None:
    """``"host:port"`` (``"[::1]:9108"``) -> (host, port), or None if malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        return None
    return host.strip("[]"), int(port)


def mqtt_url(text: str) -> tuple | None:
    """``mqtt://host[:port]`` / ``mqtts://...`` -> (tls, host, port), or None if malformed."""
    scheme, sep, rest = text.partition("://")
    rest = rest.rstrip("/")
    if not sep or scheme not in ("mqtt", "mqtts") or not rest or "/" in rest:
        return None
    tls = scheme == "mqtts"
    port = "8883" if tls else "1883"
    if rest.startswith("["):  # [v6] or [v6]:port
        host, _, tail = rest[1:].partition("]")
        if tail:
            if not tail.startswith(":"):
                return None
            port = tail[1:]
    elif ":" in rest:
        host, _, port = rest.rpartition(":")
    else:
        host = rest
    if not host or ":" in host and not rest.startswith("[") or not port.isdigit() \
            or not 0 < int(port) < 65536:
        return None
    return tls, host, int(port)


def _one_of(options):
    return lambda v: v in options, " or ".join(repr(o) for o in options)


# sounddevice's device and latency arguments
_DEVICE = (lambda v: v != "" and not isinstance(v, bool),
           "a device name (or part of it) or number")
_LATENCY = (lambda v: v in ("low", "high") if isinstance(v, str)
            else not isinstance(v, bool) and 0 < v <= 10, "'low', 'high' or seconds (0 to 10)")


class _Loader:
    def __init__(self, path: Path):
        self.path = path

    def error(self, key, expected, got) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: expected {expected}, got {got!r}")

    def resolve(self, p: str) -> Path:
        q = Path(os.path.expanduser(p))
        return q if q.is_absolute() else (self.path.parent / q)

    def load(self) -> Config:
        try:
            with open(self.path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{self.path}: config file not found") from None
        except OSError as e:
            raise ConfigError(f"{self.path}: cannot read the config file: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{self.path}: not valid TOML: {e}") from None
        top = _Table(data, "", self)
        device = top.take("device", str, socket.gethostname() or "edgernn",
                          lambda s: s != "" and not set(s) & set("+#/\0"),
                          "a non-empty name without '+', '#', '/'")
        check, expect = _one_of(LOG_LEVELS)
        log_level = top.take("log_level", str, "info", check, expect)
        source = self.source(_Table(top.take("source", dict), "source.", self))
        denoising = source.options.get("denoise", False)
        m = _Table(top.take("model", dict, {} if denoising else ...), "model.", self)
        mpath = m.path("path", _bundled_denoiser() if denoising else ...)
        check, expect = _one_of(("fast", "exact"))
        model = ModelConf(mpath, m.take("id", str, Path(mpath).stem, lambda s: s != "",
                                        "a non-empty string"),
                          m.take("math", str, "fast", check, expect), m.path("public_key", None))
        m.done()
        sinks_raw = top.take("sink", list, None, lambda v: len(v) > 0,
                             "an array of [[sink]] tables")
        if sinks_raw is None:
            raise ConfigError(f"{self.path}: sink: at least one [[sink]] table is required")
        sinks = tuple(self.sink(_Table(s, f"sink[{i}].", self), i, source)
                      for i, s in enumerate(sinks_raw))
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ConfigError(f"{self.path}: sink: names must be unique, got {names}")
        streams = self.streams(_Table(top.take("streams", dict, {}), "streams.", self),
                               HOP_MS if denoising else 1.0)
        dn = top.take("denoise", dict, None)
        if dn is not None and not denoising:
            raise ConfigError(f"{self.path}: denoise: a [denoise] table needs a denoising "
                              f"source (source.denoise = true)")
        denoise = self.denoise(_Table(dn or {}, "denoise.", self)) if denoising else None
        mt = _Table(top.take("metrics", dict, {}), "metrics.", self)
        listen = mt.take("listen", str, "127.0.0.1:9108",
                         lambda s: s == "" or parse_hostport(s) is not None,
                         "'host:port' or '' (off)")
        mt.done()
        pr = _Table(top.take("process", dict, {}), "process.", self)
        cpus = pr.take("cpus", list, None, lambda v: v and all(
            isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 4096 for c in v),
            "a non-empty array of CPU numbers")
        rt = pr.take("realtime_priority", int, 0, lambda v: 0 <= v <= 99, "0 (off) to 99")
        pr.done()
        top.done()
        return Config(self.path, device, log_level, model, source, sinks, streams,
                      parse_hostport(listen) if listen else None,
                      tuple(cpus) if cpus else None, rt, denoise)

    def source(self, t: _Table) -> SourceConf:
        url = t.take("url", str, None, lambda s: s != "", "a serial device or pyserial URL")
        check, expect = _one_of(SOURCE_KINDS)
        kind = t.take("kind", str, "serial" if url else ..., check, expect)
        o: dict = {}
        if kind == "serial":
            if url is None:
                raise ConfigError(f"{self.path}: source.url: required key is missing "
                                  f"(kind = 'serial')")
            o["url"] = url
            o["baudrate"] = t.take("baudrate", int, 115200, lambda v: v > 0, "a positive integer")
            o["wait"] = t.take("wait", bool, True)
        elif url is not None:
            raise ConfigError(f"{self.path}: source.url: only serial sources take a url "
                              f"(kind = {kind!r})")
        if kind in ("stdin", "udp", "unix"):
            fmts = ("json", "text", "f32") if kind == "udp" else ("json", "text")
            check, expect = _one_of(fmts)
            o["format"] = t.take("format", str, "json", check, expect)
        if kind == "udp":
            o["listen"] = parse_hostport(t.take("listen", str, ..., lambda s: parse_hostport(s),
                                                "'host:port'"))
        if kind == "unix":
            o["path"] = t.path("path")
        if kind == "wav":
            o["path"] = t.path("path")
            o["realtime"] = t.take("realtime", bool, False)
        if kind == "audio":
            o.update(self.capture(t))
        if kind in ("wav", "audio"):
            o["denoise"] = t.take("denoise", bool, False)
            if o["denoise"]:
                for key in ("frame", "features", "window"):
                    if key in t.data:
                        raise ConfigError(f"{self.path}: source.{key}: not used with "
                                          f"denoise = true (the denoiser takes 10 ms hops "
                                          f"of samples)")
            else:
                o["frame"] = t.take("frame", int, ..., lambda v: 1 <= v <= 1 << 16,
                                    "1 to 65536")
                check, expect = _one_of(FEATURES)
                o["features"] = t.take("features", str, "samples", check, expect)
                o["window"] = t.take("window", int, 2 * o["frame"], lambda v: v >= o["frame"]
                                     and v <= 1 << 16, f"{o['frame']} (source.frame) to 65536")
            check, expect = _one_of(("mix", "each"))
            o["channels"] = t.take("channels", str, "mix", check, expect)
        t.done()
        return SourceConf(kind, o)

    def capture(self, t: _Table) -> dict:
        """Options of ``kind = "audio"`` (live capture through sounddevice)."""
        return {
            "device": t.take("device", (str, int), None, *_DEVICE),
            "sample_rate": t.take("sample_rate", int, None, lambda v: 1000 <= v <= 768000,
                                  "1000 to 768000 Hz"),
            "input_channels": t.take("input_channels", int, 1, lambda v: 1 <= v <= 64,
                                     "1 to 64"),
            "latency": t.take("latency", (str, int, float), "low", *_LATENCY),
        }

    def denoise(self, t: _Table) -> DenoiseConf:
        d = DenoiseConf(
            attenuation_limit_db=t.take("attenuation_limit_db", float, None, lambda v: v >= 0,
                                        "decibels >= 0"),
            report_every=t.take("report_every", int, 10, lambda v: 1 <= v <= 1_000_000,
                                "1 to 1000000 frames"))
        t.done()
        return d

    def sink(self, t: _Table, i: int, source: SourceConf) -> SinkConf:
        check, expect = _one_of(SINK_TYPES)
        kind = t.take("type", str, ..., check, expect)
        denoising = source.options.get("denoise", False)
        if kind in AUDIO_SINKS and not denoising:
            raise ConfigError(f"{self.path}: sink[{i}].type: {kind!r} sinks take denoised "
                              f"audio: they need source.denoise = true")
        if kind == "serial" and denoising:
            raise ConfigError(f"{self.path}: sink[{i}].type: 'serial' sinks take model "
                              f"outputs, a denoising source gives audio (use 'wav', 'audio' "
                              f"or a JSON sink)")
        name = t.take("name", str, f"{kind}{i}" if kind != "stdout" else "stdout",
                      lambda s: s != "" and s.isascii(), "a non-empty ASCII name")
        o: dict = {}
        if kind in ("stdout", "file", "unix", "mqtt", "wav"):  # the sinks that buffer
            o["buffer"] = t.take("buffer", int, 10000, lambda v: 1 <= v <= 10_000_000,
                                 "1 to 10000000 messages")
        if kind == "file":
            o["path"] = t.path("path")
        elif kind == "udp":
            o["target"] = parse_hostport(t.take("target", str, ..., parse_hostport, "'host:port'"))
        elif kind == "unix":
            o["path"] = t.path("path")
        elif kind == "serial":
            o["url"] = t.take("url", str, None, lambda s: s != "", "a serial device or URL")
            o["baudrate"] = t.take("baudrate", int, 115200, lambda v: v > 0, "a positive integer")
        elif kind == "mqtt":
            o.update(self.mqtt(t))
        elif kind == "wav":
            o["path"] = t.path("path")
            if o["path"] == source.options.get("path"):
                raise ConfigError(f"{self.path}: sink[{i}].path: is the source's input file "
                                  f"{o['path']}; it is never overwritten")
            check, expect = _one_of(WAV_SUBTYPES)
            o["subtype"] = t.take("subtype", str, "FLOAT", check, expect)
        elif kind == "audio":
            o["device"] = t.take("device", (str, int), None, *_DEVICE)
            o["latency"] = t.take("latency", (str, int, float), "low", *_LATENCY)
            o["buffer_ms"] = t.take("buffer_ms", float, 200.0, lambda v: 20 <= v <= 60_000,
                                    "20 to 60000 ms")
        t.done()
        return SinkConf(kind, name, o)

    def mqtt(self, t: _Table) -> dict:
        url = t.take("url", str, ..., lambda s: mqtt_url(s) is not None,
                     "'mqtt://host[:port]' or 'mqtts://host[:port]'")
        tls, host, port = mqtt_url(url)

        def good_topic(s):
            try:
                fields = {f for _, f, _, _ in string.Formatter().parse(s) if f is not None}
            except ValueError:
                return False
            return s != "" and fields <= {"device", "stream"} and not set(s) & set("+#\0")

        o = {"tls": tls, "host": host, "port": port,
             "topic": t.take("topic", str, "edgernn/{device}/{stream}", good_topic,
                             "a topic with only {device} and {stream} fields, no '+' or '#'"),
             "qos": t.take("qos", int, 1, lambda v: v in (0, 1, 2), "0, 1 or 2"),
             "retain": t.take("retain", bool, False),
             "client_id": t.take("client_id", str, None),
             "username": t.take("username", str, None),
             "password_file": t.path("password_file", None),
             "keepalive": t.take("keepalive", int, 30, lambda v: 5 <= v <= 3600, "5 to 3600 s"),
             "inflight": t.take("inflight", int, 100, lambda v: 1 <= v <= 65535, "1 to 65535"),
             "reconnect_min": t.take("reconnect_min", float, 0.1, lambda v: 0.01 <= v <= 60,
                                     "0.01 to 60 s"),
             "reconnect_max": t.take("reconnect_max", float, 10.0, lambda v: 0.01 <= v <= 3600,
                                     "0.01 to 3600 s")}
        return o

    def streams(self, t: _Table, deadline_ms: float) -> StreamsConf:
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
