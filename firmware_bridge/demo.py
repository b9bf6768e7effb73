"""``python -m firmware_bridge.demo``: a simulated IMU talking to the bridge over a pty.

Runs, as a user would, two processes: ``python -m firmware_bridge.sim`` (a 6-axis
IMU at 500 Hz with gestures, 1% corrupted frames, garbage between frames and one
unplug) and ``python -m firmware_bridge.cli`` (the ``edgernn bridge`` command) on
a small LSTM. Prints the bridge's live statistics, then the device's check of
every RESULT. Exits 0 if every intact frame got exactly the right RESULT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np


def demo_model(seed: int = 0):
    """LSTM(6, 32) -> Dense(32, 3): random weights, a stand-in gesture classifier."""
    import edgernn

    r = np.random.default_rng(seed)

    def w(*shape):
        return (r.standard_normal(shape) * 0.2).astype(np.float32)

    return edgernn.Model([edgernn.LSTM(w(128, 6), w(128, 32), w(128), w(128)),
                          edgernn.Dense(w(3, 32), w(3))])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a .ernn model (default: a random LSTM(6, 32))")
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgernn-demo-") as tmp:
        model = args.model
        if model is None:
            model = os.path.join(tmp, "gestures.ernn")
            demo_model().save(model)
        tty = os.path.join(tmp, "ttyIMU")
        sim_cmd = [sys.executable, "-m", "firmware_bridge.sim", "--pty", tty, "--model", model,
                   "--rate", "500", "--duration", str(args.seconds), "--corrupt", "0.01",
                   "--garbage", "0.01", "--unplug-at", str(args.seconds / 2)]
        bridge_cmd = [sys.executable, "-m", "firmware_bridge.cli", "--port", tty,
                      "--model", model, "--stats-interval", "0.5"]
        print("$", " ".join(sim_cmd[1:]), flush=True)
        sim = subprocess.Popen(sim_cmd, stdout=subprocess.PIPE)
        end = time.monotonic() + 30
        while not os.path.lexists(tty) and time.monotonic() < end and sim.poll() is None:
            time.sleep(0.02)
        print("$", " ".join(bridge_cmd[1:]), flush=True)
        bridge = subprocess.Popen(bridge_cmd)
        try:
            out, _ = sim.communicate(timeout=args.seconds + 60)
        finally:
            bridge.send_signal(signal.SIGINT)  # what Ctrl-C does
            bridge.wait(timeout=20)
    report = json.loads(out)
    q = report["latency_us"]
    print(f"\ndevice: sent {report['sent']} samples ({report['corrupted']} corrupted, "
          f"{report['garbage_bursts']} garbage bursts), unplugged {report['unplugs']}x; "
          f"RESULTs right {report['matched']}, wrong {report['mismatched']}, "
          f"missing {report['missing']}, answering a corrupted frame "
          f"{report['answered_corrupted']}; round trip p50 {q['p50']:.0f} us, "
          f"p99 {q['p99']:.0f} us")
    print("demo", "OK" if report["ok"] and bridge.returncode == 0 else "FAILED")
    return 0 if report["ok"] and bridge.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
