"""Fault runs of ``edgernn serve`` against the real thing (issue #21); figures for docs/serve.md.

    python bench/serve_faults.py [--seconds 20] [--rate 100] [--configs 500]

- ``flood udp`` / ``flood serial``: the daemon (``python -m edgernn serve``, the
  bundled model M, input 42) reads a UDP socket or a pty; good frames arrive at
  --rate per second with 10 garbage ones after each (10x the frame rate). UDP
  garbage: random bytes and hostile JSON (deep nesting, huge numbers, bad stream
  names, wrong types); serial garbage: chunks between 0x00 delimiters that are
  no valid frame. Reported: good frames answered (a file sink), bad frames
  counted (``edgernn_bad_frames_total``), datagrams the kernel dropped, and the
  daemon's RSS after 1 s and at its peak.
- ``configs``: --configs mutated configs (:func:`mutate`), each validated at
  start (a Daemon of its own, started and stopped) and at reload (a running
  one): outcomes and the slowest case.

Writes bench/out/serve_faults.json. The suite runs short versions
(tests/test_serve_flood.py, tests/test_serve_faults.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
MODEL = ROOT / "edgernn" / "data" / "demo_m.ernn"  # GRU 42 -> 96 -> Dense 22
N_IN = 42


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _metrics(port: int) -> dict:
    """{(name, labels as a sorted tuple): value} of the daemon's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text.decode()) for s in f.samples}


def _start(workdir: Path, source: str, metrics_port: int) -> tuple:
    cfg = workdir / "edgernn.toml"
    cfg.write_text(f'device = "flood"\n[model]\npath = "{MODEL}"\n[source]\n{source}\n'
                   f'[[sink]]\ntype = "file"\npath = "out.jsonl"\n'
                   f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n')
    err = open(workdir / "daemon.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "edgernn", "serve", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
    end = time.monotonic() + 120
    while b"INFO serving " not in (workdir / "daemon.log").read_bytes():
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError((workdir / "daemon.log").read_text())
        time.sleep(0.05)
    return proc, err


UDP_HOSTILE = [b"[" * 30000, b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
               b'{"x": [1], "seq": 1' + b"0" * 400 + b"}", b'{"x": [true]}',
               b'{"stream": "a#", "x": [1]}', b'{"stream": "\\ud800", "x": [1]}',
               b'{"stream": "a\\u0000b", "x": [1]}', b"\xff\xfe{", b"", b"5", b"null"]


def _udp_garbage(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return rng.choice(UDP_HOSTILE)
    return b"{" + rng.randbytes(rng.randint(0, 1500))  # never a JSON object


def _serial_garbage(rng: random.Random) -> bytes:
    body = bytes(b or 1 for b in rng.randbytes(rng.randint(5, 200)))  # no 0x00 inside
    return b"\x00" + body + b"\x00"


def flood(kind: str, workdir: Path, seconds: float = 20.0, rate: float = 100.0,
          garbage: int = 10, seed: int = 0) -> dict:
    """Good frames at ``rate``/s, ``garbage`` bad ones after each; the figures."""
    from firmware_bridge import protocol as p

    workdir.mkdir(parents=True, exist_ok=True)
    rng, xs = random.Random(seed), np.random.default_rng(seed)
    mport = _free_port()
    master = slave = sock = None
    if kind == "udp":
        port = _free_port()
        source = f'kind = "udp"\nlisten = "127.0.0.1:{port}"'
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    else:
        master, slave = os.openpty()
        tty.setraw(slave)
        source = f'kind = "serial"\nurl = "{os.ttyname(slave)}"'
    proc, err = _start(workdir, source, mport)
    stop_drain = threading.Event()
    if master is not None:  # read what the daemon writes back (nothing is expected)
        def drain():
            os.set_blocking(master, False)
            while not stop_drain.is_set():
                try:
                    os.read(master, 65536)
                except BlockingIOError:
                    time.sleep(0.01)
        threading.Thread(target=drain, daemon=True).start()
    good = bad = 0
    rss, t0 = [], time.monotonic()
    next_rss = t0 + 1.0
    try:
        while time.monotonic() - t0 < seconds:
            x = xs.standard_normal(N_IN).astype(np.float32)
            if kind == "udp":
                sock.sendto(json.dumps({"stream": "g", "seq": good, "x": x.tolist()}).encode(),
                            ("127.0.0.1", port))
                for _ in range(garbage):
                    sock.sendto(_udp_garbage(rng), ("127.0.0.1", port))
            else:
                frame = p.encode_frame(p.Frame(p.Kind.SAMPLE, 1, good & 0xFFFF, 0,
                                               p.Encoding.F32, x.astype("<f4").tobytes()))
                os.write(master, frame + b"".join(_serial_garbage(rng)
                                                  for _ in range(garbage)))
            good, bad = good + 1, bad + garbage
            now = time.monotonic()
            if now >= next_rss:
                rss.append(_rss_mb(proc.pid))
                next_rss += 0.5
            time.sleep(max(0.0, t0 + good / rate - time.monotonic()))
        end = time.monotonic() + 30
        answered = 0
        while time.monotonic() < end:
            m = _metrics(mport)
            answered = m.get(("edgernn_frames_answered_total", (("result", "ok"),)), 0)
            counted = sum(v for (n, _), v in m.items() if n == "edgernn_bad_frames_total")
            kdrop = m.get(("edgernn_queue_drops_total", (("queue", "udp_kernel"),)), 0)
            if answered + counted + kdrop >= good + bad:
                break
            time.sleep(0.2)
        rss.append(_rss_mb(proc.pid))
        reasons = {dict(lab)["reason"]: int(v) for (n, lab), v in m.items()
                   if n == "edgernn_bad_frames_total"}
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
        stop_s = time.monotonic() - t_stop
    finally:
        stop_drain.set()
        if proc.poll() is None:
            proc.kill()
        err.close()
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
        if sock is not None:
            sock.close()
    lines = (workdir / "out.jsonl").read_bytes().splitlines()
    return {"source": kind, "seconds": seconds, "good_rate": rate, "garbage_per_good": garbage,
            "good_sent": good, "good_answered": sum(b'"y"' in ln for ln in lines),
            "answered_ok_metric": int(answered), "garbage_sent": bad,
            "bad_counted": int(counted), "bad_by_reason": reasons,
            "kernel_drops": int(kdrop), "rss_mb_after_1s": round(rss[0], 1),
            "rss_mb_max": round(max(rss), 1), "rss_mb_end": round(rss[-1], 1),
            "exit_code": rc, "stop_seconds": round(stop_s, 3),
            "tracebacks": (workdir / "daemon.log").read_text().count("Traceback")}


# ---------------------------------------------------------------- mutated configs
VALUES = ['""', '"x"', "0", "-1", "1", "2", "1e999", "nan", "true", "[]", "{}", '"a#"',
          '"\\u0000"', '"\\ud800"', "99999999999999999999", '"' + "x" * 5000 + '"',
          "[" * 20 + "]" * 20, '"mqtt://[::1"', '"127.0.0.1:0"', '"o2.jsonl"', "0.5"]
TOKENS = ['"', "[", "]", "{", "}", "=", "\n", "#", "\xff", "[[sink]]\n", "type = ", '"mqtt"',
          '"file"', "true", "path", "'''", "\t", "[streams]\n"]


def mutate(text: str, rng: random.Random) -> str:
    """A value swapped for a hostile one (half the time), else bytes cut, added or copied."""
    if rng.random() < 0.5:
        lines = text.splitlines(keepends=True)
        i = rng.choice([k for k, ln in enumerate(lines) if " = " in ln])
        key = lines[i].split(" = ")[0]
        lines[i] = f"{key} = {rng.choice(VALUES)}\n"
        return "".join(lines)
    s = list(text)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(s) + 1)
        op = rng.random()
        if op < 0.3 and s:
            del s[min(i, len(s) - 1):i + rng.randint(1, 8)]
        elif op < 0.6:
            s[i:i] = rng.choice(TOKENS)
        elif s:
            j = rng.randrange(len(s))
            s[i:i] = s[j:j + rng.randint(1, 20)]
    return "".join(s)


def fuzz_base(model: Path, broker_port: int) -> str:
    """The config the mutations start from: stdin in; stdout, MQTT (no broker), a file out."""
    return (f'device = "d"\n[model]\npath = "{model}"\n[source]\nkind = "stdin"\n'
            f'[[sink]]\ntype = "stdout"\n[metrics]\nlisten = ""\n[[sink]]\ntype = "mqtt"\n'
            f'url = "mqtt://127.0.0.1:{broker_port}"\nqos = 0\n[[sink]]\ntype = "file"\n'
            f'path = "o.jsonl"\n[streams]\nmax = 4\nqueue = 100\n')


def check_config(path: Path, text: str, running=None) -> tuple:
    """Validate ``text`` at start (a Daemon of its own, started and stopped) or at reload of
    ``running``: ('ok' | 'refused' | 'TRACEBACK', message)."""
    from edgernn.errors import EdgeRNNError
    from edgernn_serve.config import load_config
    from edgernn_serve.daemon import Daemon

    path.write_bytes(text.encode("utf-8", "surrogatepass").replace(b"\xc3\xbf", b"\xff"))
    try:
        if running is not None:
            ok = running.reload()
            return ("ok", "") if ok else ("refused", running.last_reload_error)
        with open(os.devnull, "rb") as stdin:
            d = Daemon(load_config(path), stdin=stdin)
            try:
                d.start()
            except BaseException:
                for part in (d.sinks, d.server, d.source):  # as the command line does
                    if part is not None:
                        part.close()
                raise
            d.stop()
        return "ok", ""
    except EdgeRNNError as e:
        msg = str(e)
        return ("refused" if "\n" not in msg else "TRACEBACK"), msg
    except BaseException as e:  # noqa: BLE001 - what this bench looks for
        return "TRACEBACK", f"{type(e).__name__}: {e}"


def configs(workdir: Path, n: int = 500, seed: int = 21) -> dict:
    """``n`` mutated configs at start and at reload: outcomes and the slowest case."""
    import logging

    from edgernn_serve.config import load_config
    from edgernn_serve.daemon import Daemon

    workdir.mkdir(parents=True, exist_ok=True)
    base = fuzz_base(MODEL, _free_port())
    live_cfg = workdir / "edgernn.toml"
    live_cfg.write_text(base)
    with open(os.devnull, "rb") as stdin:
        live = Daemon(load_config(live_cfg), stdin=stdin)
        live.start()
        logging.disable(logging.CRITICAL)  # each refusal is logged: not here
        rng = random.Random(seed)
        out = {"start": {}, "reload": {}}
        worst, bad = (0.0, ""), []
        try:
            for _ in range(n):
                text = mutate(base, rng)
                for where, path, running in (("start", workdir / "m.toml", None),
                                             ("reload", live_cfg, live)):
                    t0 = time.monotonic()
                    outcome, msg = check_config(path, text, running)
                    dt = time.monotonic() - t0
                    worst = max(worst, (dt, f"{where}: {msg[:120]}"))
                    out[where][outcome] = out[where].get(outcome, 0) + 1
                    if outcome == "TRACEBACK":
                        bad.append((where, text, msg))
                if not (live.scheduler.alive and live.health()[0]):
                    bad.append(("reload", text, "the running daemon stopped serving"))
        finally:
            live.stop()
            logging.disable(logging.NOTSET)
    return {"configs": n, "outcomes": out, "slowest_s": round(worst[0], 3),
            "slowest": worst[1], "failures": bad[:5]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--configs", type=int, default=500)
    a = ap.parse_args()
    import tempfile

    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("udp", "serial"):
            res[f"flood_{kind}"] = flood(kind, Path(tmp) / kind, a.seconds, a.rate)
            print(json.dumps(res[f"flood_{kind}"]), flush=True)
        res["configs"] = configs(Path(tmp) / "configs", a.configs)
        print(json.dumps(res["configs"]), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "serve_faults.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
