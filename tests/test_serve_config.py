"""edgernn serve's config: every error names the file and the key; the CLI exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgernn_serve.config import ConfigError, load_config
from tests.serve_helpers import ROOT, make_model

BASE = """
[model]
path = "m.ernn"
[source]
url = "/dev/ttyUSB0"
[[sink]]
type = "stdout"
"""


def _write(tmp_path, text) -> Path:
    p = tmp_path / "edgernn.toml"
    p.write_text(text)
    return p


def test_config_defaults_and_relative_paths(tmp_path):
    c = load_config(_write(tmp_path, BASE))
    assert c.model.path == tmp_path / "m.ernn" and c.model.id == "m" and c.model.math == "fast"
    assert c.source.kind == "serial" and c.source.options == {
        "url": "/dev/ttyUSB0", "baudrate": 115200, "wait": True}
    assert c.metrics_listen == ("127.0.0.1", 9108) and c.device
    assert c.streams.max == 64 and c.streams.reset_on_gap and c.streams.deadline_ms == 1.0
    assert [s.type for s in c.sinks] == ["stdout"] and c.cpus is None
    assert c.realtime_priority == 0 and c.log_level == "info"


def test_config_reads_every_section(tmp_path):
    c = load_config(_write(tmp_path, """
device = "pump-7"
log_level = "debug"
[model]
path = "/opt/m.ernn"
id = "pump-v3"
[source]
kind = "udp"
listen = "0.0.0.0:9200"
format = "f32"
[streams]
max = 8
queue = 100
reset_on_gap = false
idle_reset = 2.5
deadline_ms = 0.5
[[sink]]
type = "mqtt"
url = "mqtts://broker.local"
topic = "plant/{device}/rnn/{stream}"
qos = 2
[[sink]]
type = "file"
path = "out/results.jsonl"
[metrics]
listen = "[::1]:9999"
[process]
cpus = [1]
realtime_priority = 20
"""))
    assert c.device == "pump-7" and c.model.id == "pump-v3" and c.log_level == "debug"
    assert c.source.options == {"format": "f32", "listen": ("0.0.0.0", 9200)}
    assert (c.streams.max, c.streams.queue, c.streams.reset_on_gap, c.streams.idle_reset_s,
            c.streams.deadline_ms) == (8, 100, False, 2.5, 0.5)
    mq = c.sinks[0].options
    assert (mq["tls"], mq["host"], mq["port"], mq["qos"]) == (True, "broker.local", 8883, 2)
    assert c.sinks[1].options["path"] == tmp_path / "out/results.jsonl"
    assert c.metrics_listen == ("::1", 9999) and c.cpus == (1,) and c.realtime_priority == 20


@pytest.mark.parametrize("edit, key, expected", [
    ('[model]\npath = "m.ernn"', "source", "required key is missing"),
    (BASE.replace('type = "stdout"', 'type = "mqtt"\nurl = "mqtt://h"\nqos = 3'),
     "sink[0].qos", "expected 0, 1 or 2, got 3"),
    (BASE.replace('type = "stdout"', 'type = "mqtt"\nurl = "http://h"'), "sink[0].url",
     "expected 'mqtt://host[:port]'"),
    (BASE.replace('type = "stdout"', 'type = "mqtt"\nurl = "mqtt://h"\ntopic = "a/{host}"'),
     "sink[0].topic", "only {device} and {stream}"),
    (BASE.replace('type = "stdout"', 'type = "stdout"\nbufer = 3'), "sink[0].bufer",
     "unknown key"),
    (BASE + "[streams]\nmax = 0\n", "streams.max", "expected 1 to 65536, got 0"),
    (BASE + "[streams]\ndeadline_ms = true\n", "streams.deadline_ms", "got True"),
    (BASE + '[metrics]\nlisten = "9108"\n', "metrics.listen", "'host:port'"),
    (BASE + "[process]\ncpus = [-1]\n", "process.cpus", "array of CPU numbers"),
    (BASE.replace('url = "/dev/ttyUSB0"', 'kind = "tape"'), "source.kind", "'serial' or"),
    (BASE.replace('url = "/dev/ttyUSB0"', 'kind = "wav"\npath = "a.wav"'), "source.frame",
     "required key is missing"),
    (BASE.replace('url = "/dev/ttyUSB0"', 'kind = "udp"\nurl = "x"'), "source.url",
     "only serial sources take a url"),
    ('log_level = "loud"\n' + BASE, "log_level", "expected 'debug' or"),
    ('device = "a/b"\n' + BASE, "device", "without '+', '#', '/'"),
    (BASE + "[[sink]]\ntype = 'stdout'\n", "sink", "names must be unique"),
])
def test_config_error_names_the_file_and_key(tmp_path, edit, key, expected):
    path = _write(tmp_path, edit)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: {key}"), msg
    assert expected in msg, msg


def test_config_rejects_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[model\n"))


def _serve(*args):
    return subprocess.run([sys.executable, "-m", "edgernn", "serve", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_cli_bad_config_prints_one_line_and_exits_2(tmp_path):
    path = _write(tmp_path, BASE + "[streams]\nqueue = 'big'\n")
    out = _serve("--config", path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"edgernn: error: {path}: streams.queue: expected 1 to 10000000, got 'big'"]


def test_cli_corrupt_or_missing_model_exits_2_naming_the_file(tmp_path):
    path = _write(tmp_path, BASE)
    out = _serve("--config", path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert f"{tmp_path / 'm.ernn'}" in out.stderr and "cannot read" in out.stderr
    (tmp_path / "m.ernn").write_bytes(b"PK\x03\x04 not really a zip")
    out = _serve("--config", path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "m.ernn" in out.stderr and "zip" in out.stderr


def test_cli_check_validates_config_and_model(tmp_path):
    make_model().save(tmp_path / "m.ernn")
    out = _serve("--config", _write(tmp_path, BASE), "--check")
    assert out.returncode == 0, out.stderr
    assert "ok; model m" in out.stdout and "input 16, output 4" in out.stdout


def test_cli_port_in_use_for_metrics_exits_2(tmp_path):
    import socket

    make_model().save(tmp_path / "m.ernn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        path = _write(tmp_path, BASE.replace('url = "/dev/ttyUSB0"', 'kind = "stdin"')
                      + f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
        out = _serve("--config", path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(f"edgernn: error: {path}: "
                                                          f"metrics.listen: cannot listen")


def test_serve_imports_neither_converters_nor_frameworks():
    code = ("import sys, edgernn_serve.cli, edgernn_serve.daemon, edgernn_serve.sinks.mqtt, "
            "edgernn_serve.sources.wav\n"
            "bad = [m for m in ('converters', 'torch', 'onnx', 'onnxruntime', 'tensorflow', "
            "'keras') if m in sys.modules]\nprint(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_model_public_key_refuses_unsigned_models_and_takes_signed_ones(tmp_path):
    import hashlib

    from edgernn.format import archive, signing
    from edgernn_serve.models import ModelLoadError, load_model

    priv, pub = signing.generate_key_pem()
    (tmp_path / "k.pem").write_bytes(priv)
    (tmp_path / "k.pub").write_bytes(pub)
    make_model().save(tmp_path / "m.ernn")
    c = archive.read(tmp_path / "m.ernn")
    archive.write(tmp_path / "signed.ernn", c.manifest, c.arrays,
                  signing_key=str(tmp_path / "k.pem"))
    conf = load_config(_write(tmp_path, BASE.replace('path = "m.ernn"', 'path = "m.ernn"\n'
                                                     'public_key = "k.pub"')))
    assert conf.model.public_key == tmp_path / "k.pub"
    with pytest.raises(ModelLoadError, match=r"m\.ernn.*sign"):
        load_model(conf.model.path, "m", public_key=conf.model.public_key)
    h = load_model(tmp_path / "signed.ernn", "m", public_key=conf.model.public_key)
    assert h.sha256 == hashlib.sha256((tmp_path / "signed.ernn").read_bytes()).hexdigest()
