"""Soak test of ``edgernn serve``: 1 kHz for a set time, RSS and latency over time.

    nice -n 15 python bench/soak.py [--minutes 10] [--rate 1000] [--streams 1] [--cpu 1]

The daemon runs as systemd would start it (``python -m edgernn serve``) with the
bundled model M (GRU 42->96 -> Dense 22, edgernn/data/demo_m.ernn). Its source is
the simulated device (``python -m firmware_bridge.sim``) on a real pty at --rate
samples/s in total, checking every RESULT bit for bit; its sinks are the serial
port (RESULTs back to the device), a unix socket read by this script (every
result's ``latency_us``: arrival to result, inside the daemon) and, when
mosquitto is installed, an MQTT broker on 127.0.0.1. Every --interval seconds
the script samples the daemon's RSS (/proc/PID/status VmRSS) and the latency
percentiles of that window; at the end it reads the daemon's peak RSS
(VmHWM) and the numba, llvmlite and scipy shared objects it mapped
(/proc/PID/maps), then stops it with SIGTERM. Before the daemon starts,
``edgernn serve --check`` loads and steps the model once in a process of its
own, as the systemd unit's ExecStartPre does, so the daemon starts on a warm
cache (the native image: no numba in it unless it must compile).

Targets: RSS flat within 1 MB after warm-up (the first --warmup s; issue 11),
peak RSS <= 80 MB (issue 19).
Writes bench/out/soak.json and bench/out/soak.png. Other jobs sharing the CPU
move the latency figures: report them with the command and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
MODEL = ROOT / "edgernn" / "data" / "demo_m.ernn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """``field`` of /proc/PID/status in kB (VmRSS: now; VmHWM: the peak so far)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def heavy_objects(pid: int) -> list:
    """The numba, llvmlite and scipy shared objects mapped into process ``pid``."""
    with open(f"/proc/{pid}/maps") as fh:
        paths = {ln.split(None, 5)[5].strip() for ln in fh if len(ln.split(None, 5)) == 6}
    return sorted(p for p in paths
                  if any(f"/{n}/" in p or f"/{n}." in p for n in ("numba", "llvmlite", "scipy")))


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def start_broker(tmp: Path):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(exe):
        return None, None
    port = free_port()
    conf = tmp / "mosquitto.conf"
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {user}\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


class Collector(threading.Thread):
    """Reads the daemon's unix-socket sink: latency_us of every result, per window."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(str(path))
        self.srv.listen(1)
        self.window: list = []
        self.total = 0
        self.errors = 0
        self.lock = threading.Lock()

    def run(self) -> None:
        conn, _ = self.srv.accept()
        buf = b""
        while True:
            data = conn.recv(1 << 16)
            if not data:
                return
            *lines, buf = (buf + data).split(b"\n")
            with self.lock:
                for ln in lines:
                    r = json.loads(ln)
                    self.window.append(r["latency_us"])
                    self.errors += "error" in r
                self.total += len(lines)

    def take(self) -> np.ndarray:
        with self.lock:
            w, self.window = self.window, []
        return np.asarray(w, np.float64)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="samples/s, all streams")
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--interval", type=float, default=10.0, help="seconds per sample")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS counts")
    ap.add_argument("--cpu", type=int, default=None, help="pin the daemon with taskset -c")
    args = ap.parse_args(argv)
    duration = args.minutes * 60.0
    tmp = Path(tempfile.mkdtemp(prefix="edgernn-soak-"))
    broker, bport = start_broker(tmp)
    shutil.copy(MODEL, tmp / "m.ernn")
    collector = Collector(tmp / "results.sock")
    collector.start()
    mport = free_port()
    mqtt = (f'[[sink]]\ntype = "mqtt"\nurl = "mqtt://127.0.0.1:{bport}"\nqos = 1\n'
            if bport else "")
    (tmp / "edgernn.toml").write_text(
        f'device = "soak"\n[model]\npath = "m.ernn"\n[source]\nurl = "{tmp / "dev"}"\n'
        f'[streams]\nreset_on_gap = true\n[[sink]]\ntype = "serial"\n'
        f'[[sink]]\ntype = "unix"\npath = "{tmp / "results.sock"}"\n{mqtt}'
        f'[metrics]\nlisten = "127.0.0.1:{mport}"\n')
    sim = subprocess.Popen([sys.executable, "-m", "firmware_bridge.sim", "--pty", str(tmp / "dev"),
                            "--model", str(tmp / "m.ernn"), "--rate", str(args.rate / args.streams),
                            "--streams", str(args.streams), "--duration", str(duration),
                            "--reset-on-gap", "--report", str(tmp / "sim.json")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    while not (tmp / "dev").exists():
        time.sleep(0.01)
    cmd = [sys.executable, "-m", "edgernn", "serve", "--config", str(tmp / "edgernn.toml")]
    subprocess.run([*cmd, "--check"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    if args.cpu is not None:
        cmd = ["taskset", "-c", str(args.cpu), *cmd]
    err = open(tmp / "daemon.log", "wb")  # noqa: SIM115
    daemon = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
    t0 = time.monotonic()
    samples = []
    last_cpu, last_t = 0.0, t0
    print(f"soak: {args.minutes} min at {args.rate:g} Hz ({args.streams} stream(s)); "
          f"workdir {tmp}", flush=True)
    while time.monotonic() - t0 < duration and sim.poll() is None:
        time.sleep(args.interval)
        lat = collector.take()
        q = np.percentile(lat, [50, 99, 99.9]) if lat.size else [float("nan")] * 3
        text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read()
        steps = next((float(ln.split()[-1]) for ln in text.decode().splitlines()
                      if ln.startswith("edgernn_steps_total ")), float("nan"))
        now, cpu = time.monotonic(), cpu_s(daemon.pid)
        cpu_pct = 100 * (cpu - last_cpu) / (now - last_t)
        last_cpu, last_t = cpu, now
        s = {"t_s": round(now - t0, 1), "rss_kb": rss_kb(daemon.pid), "cpu_pct": cpu_pct,
             "results": int(lat.size), "p50_us": q[0], "p99_us": q[1], "p99.9_us": q[2],
             "max_us": float(lat.max()) if lat.size else float("nan"), "steps": steps}
        samples.append(s)
        print(f"{s['t_s']:7.1f} s  rss {s['rss_kb'] / 1024:7.2f} MB  results {s['results']:6d}  "
              f"p50 {q[0]:7.1f}  p99 {q[1]:7.1f}  p99.9 {q[2]:7.1f} us  cpu {cpu_pct:5.1f}%",
              flush=True)
    sim.wait(60)
    # VmHWM comes from the kernel's approximate per-CPU counters: never below a sample
    peak_kb = max([rss_kb(daemon.pid, "VmHWM"), *(x["rss_kb"] for x in samples)])
    heavy = heavy_objects(daemon.pid)
    t_stop = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    rc = daemon.wait(30)
    stop_s = time.monotonic() - t_stop
    collector.join(5)
    if broker is not None:
        broker.terminate()
        broker.wait(10)
    report = json.loads((tmp / "sim.json").read_text())
    steady = [s["rss_kb"] for s in samples if s["t_s"] >= args.warmup]
    ts = [s["t_s"] for s in samples if s["t_s"] >= args.warmup]
    slope = float(np.polyfit(ts, steady, 1)[0]) * 3600 / 1024 if len(steady) > 2 else None
    rss_range = (max(steady) - min(steady)) / 1024 if steady else None
    res = {
        "command": "python bench/soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "loadavg_at_end": os.getloadavg()},
        "model": "M (edgernn/data/demo_m.ernn: GRU 42->96, Dense 22, sigmoid)",
        "rate_hz": args.rate, "streams": args.streams, "minutes": args.minutes,
        "mqtt_sink": bool(bport), "samples": samples,
        "rss_after_warmup": {"warmup_s": args.warmup, "min_mb": min(steady) / 1024 if steady
                             else None, "max_mb": max(steady) / 1024 if steady else None,
                             "range_mb": rss_range, "slope_mb_per_hour": slope},
        "rss_flat_within_1mb": rss_range is not None and rss_range <= 1.0,
        "peak_rss_mb": peak_kb / 1024, "peak_rss_le_80mb": peak_kb <= 80 * 1024,
        "mapped_numba_llvmlite_scipy": heavy,
        "cpu_pct_median": float(np.median([x["cpu_pct"] for x in samples[1:]]))
        if len(samples) > 1 else None,
        "latency_us_median_of_windows": {k: float(np.nanmedian([x[k] for x in samples]))
                                         for k in ("p50_us", "p99_us", "p99.9_us")},
        "results_collected": collector.total, "error_results": collector.errors,
        "device": {k: report[k] for k in ("ok", "matched", "mismatched", "missing",
                                          "latency_us")},
        "daemon_exit": rc, "stop_s": round(stop_s, 3),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "soak.json").write_text(json.dumps(res, indent=1, default=float))
    print(json.dumps({k: res[k] for k in ("rss_after_warmup", "rss_flat_within_1mb",
                                          "peak_rss_mb", "peak_rss_le_80mb",
                                          "mapped_numba_llvmlite_scipy",
                                          "cpu_pct_median", "latency_us_median_of_windows",
                                          "device", "daemon_exit", "stop_s")},
                     indent=1, default=float))
    plot(res)
    return 0 if rc == 0 and report["ok"] else 1


def plot(res: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no PNG")
        return
    s = res["samples"]
    t = [x["t_s"] / 60 for x in s]
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    a.plot(t, [x["rss_kb"] / 1024 for x in s], "o-", ms=3)
    a.axvline(res["rss_after_warmup"]["warmup_s"] / 60, color="grey", ls=":", label="warm-up")
    a.set_ylabel("daemon RSS (MB)")
    r = res["rss_after_warmup"]
    a.set_title(f"edgernn serve at {res['rate_hz']:g} Hz, model M: peak RSS "
                f"{res['peak_rss_mb']:.1f} MB, range after warm-up {r['range_mb']:.2f} MB"
                if r["range_mb"] is not None else "edgernn serve")
    a.legend()
    for key in ("p50_us", "p99_us", "p99.9_us"):
        b.plot(t, [x[key] for x in s], "o-", ms=3, label=key.replace("_us", ""))
    b.set_yscale("log")
    b.set_ylabel("arrival -> result (µs)")
    b.set_xlabel("minutes")
    b.legend()
    fig.tight_layout()
    fig.savefig(OUT / "soak.png", dpi=100)
    print(f"wrote {OUT / 'soak.png'}")


if __name__ == "__main__":
    sys.exit(main())
