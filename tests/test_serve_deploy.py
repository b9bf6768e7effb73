"""The deploy/ files and docs: the systemd unit passes systemd-analyze, the examples validate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from edgernn_serve.config import load_config
from tests.serve_helpers import ROOT, require

UNIT = ROOT / "deploy" / "edgernn.service"


def _directives(text: str) -> dict:
    out: dict = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_unit_file_declares_notify_watchdog_restart_hardening_and_cache():
    d = _directives(UNIT.read_text())
    want = {"Type": "notify", "Restart": "on-failure", "NoNewPrivileges": "yes",
            "ProtectSystem": "strict", "User": "edgernn", "SupplementaryGroups": "dialout",
            "CacheDirectory": "edgernn", "ExecReload": "/bin/kill -HUP $MAINPID"}
    for k, v in want.items():
        assert d.get(k) == [v], k
    assert int(d["WatchdogSec"][0]) > 0
    assert "EDGERNN_CACHE_DIR=/var/cache/edgernn" in d["Environment"]
    assert "MemoryDenyWriteExecute" not in d  # the JIT engine needs executable pages
    assert d["ExecStart"][0].endswith("serve --config /etc/edgernn/edgernn.toml")


def test_unit_file_passes_systemd_analyze_verify(tmp_path):
    exe = shutil.which("systemd-analyze")
    require(exe is not None, "systemd-analyze is not installed")
    edgernn = Path(sys.executable).with_name("edgernn")
    unit = tmp_path / "edgernn.service"
    unit.write_text(UNIT.read_text().replace("/opt/edgernn/bin/edgernn", str(edgernn)))
    out = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr


def test_example_config_validates():
    c = load_config(ROOT / "deploy" / "edgernn.toml")
    assert c.source.kind == "serial" and [s.type for s in c.sinks] == ["serial", "mqtt", "file"]
    assert c.metrics_listen == ("127.0.0.1", 9108)


def test_docs_audio_example_validates(tmp_path):
    import re

    text = (ROOT / "docs" / "serve.md").read_text()
    example = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    (tmp_path / "e.toml").write_text(example)
    c = load_config(tmp_path / "e.toml")
    assert c.source.kind == "audio" and c.source.options["denoise"]
    assert (c.denoise.attenuation_limit_db, c.denoise.report_every) == (18.0, 100)
    assert [s.type for s in c.sinks] == ["audio", "mqtt"] and c.model.id == "denoiser"
