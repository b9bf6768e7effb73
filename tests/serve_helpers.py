"""Helpers for the daemon's tests: a real mosquitto broker, the daemon as a subprocess.

Under ``CI=true`` a missing prerequisite (mosquitto) fails the test; elsewhere it
skips with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

import edgernn
from tests.helpers import require, wait_until  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parents[1]


def warm_engine() -> None:
    """Compile (or load) the engine in this process first, so that the daemon and the
    simulated device started next load it from the disk cache instead of compiling
    it side by side (on a cold cache, e.g. a fresh CI clone)."""
    m = make_model()
    m.stream().step(np.zeros(16, np.float32))
    m.streams(2).step(np.zeros((1, 16), np.float32), streams=np.array([1]))


def warm_cache() -> None:
    """``edgernn warmup`` in a fresh process: every kernel in the disk cache of the
    runtime's sources as they are now, so that a daemon started next loads a model
    (at start or at a reload) without compiling. (This process's own warm-up is keyed
    on the sources it saw at its import, which an edit since leaves behind.)"""
    subprocess.run([sys.executable, "-m", "edgernn", "warmup"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, timeout=900)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_model(seed=0, n_in=16, hidden=32, n_out=4, kind="lstm"):
    """A recurrent layer -> Dense head with random numpy weights."""
    r = np.random.default_rng(seed)

    def w(*shape):
        return (r.standard_normal(shape) * 0.3).astype(np.float32)

    g = 4 if kind == "lstm" else 3
    cls = edgernn.LSTM if kind == "lstm" else edgernn.GRU
    return edgernn.Model([cls(w(g * hidden, n_in), w(g * hidden, hidden), w(g * hidden),
                              w(g * hidden)), edgernn.Dense(w(n_out, hidden), w(n_out))])


class Broker:
    """mosquitto on 127.0.0.1:<free port>, with persistence, in its own directory."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        require(os.path.exists(exe), "mosquitto is not installed (apt-get install mosquitto)")
        self.exe, self.dir, self.port = exe, Path(workdir), free_port()
        self.dir.mkdir(parents=True, exist_ok=True)
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.dir}/\nmax_queued_messages 1000000\n"
            f"user {user}\nlog_dest file {self.dir}/mosquitto.log\n")
        self.proc = None

    def start(self, timeout: float = 10.0) -> Broker:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: "
                                       f"{self.log()}") from None
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        p = self.dir / "mosquitto.log"
        return p.read_text()[-2000:] if p.exists() else ""


class Subscriber:
    """A paho client with a persistent session (survives a broker restart)."""

    def __init__(self, port: int, topic: str, client_id: str = "edgernn-test-sub") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list = []
        self.connects = 0
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=False)
        self.c.reconnect_delay_set(0.05, 0.5)
        self.subscribed = threading.Event()

        def on_connect(c, u, flags, rc, props=None):
            self.connects += 1
            c.subscribe(topic, qos=1)

        self.c.on_connect = on_connect
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.subscribed.wait(10), "subscription not acknowledged"

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class Daemon:
    """``python -m edgernn serve --config CFG`` as a subprocess; stdout lines collected."""

    def __init__(self, config: Path, env: dict | None = None, stdin=None,
                 preexec_fn=None) -> None:
        self.stderr_path = config.with_suffix(".stderr")
        self._err = open(self.stderr_path, "wb")  # noqa: SIM115
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "edgernn", "serve", "--config",
                                      str(config)], stdout=subprocess.PIPE, stderr=self._err,
                                     stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                     cwd=ROOT, env=full_env, preexec_fn=preexec_fn)
        self.lines: list = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 120.0) -> None:
        """Wait until ``text`` appears in the log (the first start may compile the engine)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.stderr():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.stderr()}")
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} in the daemon's log: {self.stderr()}")

    def wait_ready(self, timeout: float = 120.0) -> None:
        self.wait_log("INFO serving ", timeout)

    def terminate(self, sig=signal.SIGTERM, timeout: float = 10.0) -> tuple:
        """Send ``sig``; return (exit code, seconds until the process was gone)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        elapsed = time.monotonic() - t0
        self._reader.join(5)
        self._err.close()
        return rc, elapsed

    def run_to_end(self, timeout: float = 60.0) -> None:
        """Wait for the daemon to finish its source by itself (exit 0, or fail with its
        log); kill it if it does not; its stdout is read to the end."""
        try:
            assert self.proc.wait(timeout) == 0, self.stderr()
        finally:
            self.kill()
        self._reader.join(5)

    def results(self) -> list:
        return [json.loads(b) for b in self.lines]

    def summary(self) -> dict:
        for line in self.stderr().splitlines():
            if "stopped: {" in line:
                return json.loads(line.split("stopped: ", 1)[1])
        raise AssertionError(f"no final accounting in the log: {self.stderr()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if not self._err.closed:
            self._err.close()
