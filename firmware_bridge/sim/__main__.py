"""``python -m firmware_bridge.sim``: a simulated sensor device for the bridge.

    python -m firmware_bridge.sim --pty /tmp/edgernn-dev --model m.ernn --rate 2000 \\
        --duration 10 --corrupt 0.01 --garbage 0.01 --unplug-at 4
    edgernn bridge --port /tmp/edgernn-dev --model m.ernn

Prints "device at URL" to stderr once listening, then a JSON report (to stdout,
or ``--report``); exits 0 if every RESULT was right and none is missing, 1 if
not, 2 if no host answered the handshake within ``--connect-timeout``.
"""

from __future__ import annotations

import argparse
import json
import sys

from firmware_bridge.sim.device import Device
from firmware_bridge.sim.signals import SIGNALS
from firmware_bridge.sim.transports import PtyTransport, TcpTransport


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_bridge.sim",
                                 description=__doc__.split("\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", metavar="PATH", help="symlink to create for the pty slave")
    where.add_argument("--listen", metavar="PORT", type=int,
                       help="TCP port on 127.0.0.1 (0: any) for socket://")
    ap.add_argument("--model", help="model (.ernn) used as oracle and for --channels")
    ap.add_argument("--signal", choices=sorted(SIGNALS), default="imu")
    ap.add_argument("--channels", type=int, help="values per sample (default: model input)")
    ap.add_argument("--rate", type=float, default=2000.0,
                    help="samples/s per stream; 0 = as fast as --window allows")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--corrupt", type=float, default=0.0, help="fraction of frames corrupted")
    ap.add_argument("--garbage", type=float, default=0.0,
                    help="fraction of frames preceded by random bytes")
    ap.add_argument("--drop", type=float, default=0.0, help="fraction of samples never sent")
    ap.add_argument("--unplug-at", type=float, nargs="*", default=[],
                    help="seconds after the start at which to unplug")
    ap.add_argument("--unplug-for", type=float, default=0.3)
    ap.add_argument("--reset-on-gap", action="store_true",
                    help="oracle resets on gaps (match the bridge's option)")
    ap.add_argument("--window", type=int, default=4096, help="most samples awaiting RESULTs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--connect-timeout", type=float, default=30.0)
    ap.add_argument("--report", help="write the JSON report here instead of stdout")
    args = ap.parse_args(argv)

    model = None
    if args.model:
        import edgernn

        model = edgernn.load(args.model)
    channels = args.channels or (model.input_size if model is not None else 6)
    transport = PtyTransport(args.pty) if args.pty else TcpTransport(args.listen)
    dev = Device(transport, rate=args.rate, duration=args.duration, streams=args.streams,
                 channels=channels, signal=args.signal, model=model, corrupt=args.corrupt,
                 garbage=args.garbage, drop=args.drop, unplug_at=args.unplug_at,
                 unplug_for=args.unplug_for, reset_on_gap=args.reset_on_gap,
                 window=args.window, seed=args.seed)
    dev.on_listen = lambda url: print(f"device at {url}", file=sys.stderr, flush=True)
    try:
        report = dev.run(connect_timeout=args.connect_timeout)
    except TimeoutError as e:
        print(f"firmware_bridge.sim: {e}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=1, default=float)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
