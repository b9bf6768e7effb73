"""``edgernn bridge``: serve a model to a device on a serial port, in the foreground.

    edgernn bridge --port /dev/ttyACM0 --model m.ernn [--baud 115200]
    python -m firmware_bridge.cli --port socket://127.0.0.1:7000 --model m.ernn

Live statistics go to stderr every ``--stats-interval`` seconds; Ctrl-C, SIGTERM
or ``--duration`` stops it: it prints a summary to stdout and exits 0. pyserial is
imported only when the bridge runs.
"""

from __future__ import annotations

import argparse
import sys

from edgernn.cli.util import Parser, float_range, int_range


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``edgernn bridge`` on ``parser``."""
    parser.add_argument("--port", required=True,
                        help="serial device or pyserial URL (loop://, socket://host:port, "
                             "rfc2217://host:port)")
    parser.add_argument("--model", required=True, help="model file (.ernn)")
    parser.add_argument("--public-key", default=None,
                        help="require a model signed with this Ed25519 key (PEM file)")
    parser.add_argument("--baud", type=int_range(1, 100_000_000), default=115200,
                        help="line speed (default 115200)")
    parser.add_argument("--wait", action="store_true",
                        help="if the port is missing at start, keep trying until it appears")
    parser.add_argument("--reset-on-gap", action="store_true",
                        help="reset a stream's state when its sequence numbers skip")
    parser.add_argument("--queue", type=int_range(1, 10_000_000), default=4096,
                        help="receive queue bound in frames; beyond it the oldest are dropped")
    parser.add_argument("--threaded", action="store_true",
                        help="step in a consumer thread fed by the receive queue instead of "
                             "in the reader thread (decouples reads from slow models)")
    parser.add_argument("--stats-interval", type=float_range(0), default=1.0,
                        help="seconds between live statistics lines (0: none)")
    parser.add_argument("--duration", type=float_range(0, lo_open=True), default=None,
                        help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--json", default=None, help="also write the final statistics here")


def _live_line(s: dict) -> str:
    return (f"in {s['frames_in']} out {s['frames_out']} results {s['results']} "
            f"crc {s['bad_crc']} framing {s['bad_framing']} gaps {s['gaps']} "
            f"overflows {s['overflows']} reconnects {s['reconnects']} "
            f"errors {s['step_errors'] + s['callback_errors']} "
            f"step p50 {s['step_us']['p50']:.1f} us p99 {s['step_us']['p99']:.1f} us")


def summary(s: dict) -> str:
    """Multi-line human summary of Bridge.stats()."""
    lat = s["step_us"]
    rows = [
        ("uptime", f"{s['uptime_s']:.1f} s, {s['streams']} stream(s)"),
        ("frames in / out", f"{s['frames_in']} / {s['frames_out']}"),
        ("samples / results", f"{s['samples']} / {s['results']}"),
        ("bad CRC / framing", f"{s['bad_crc']} / {s['bad_framing']} {s['rejected']}"),
        ("sequence gaps", f"{s['gaps']} (state resets {s['gap_resets']})"),
        ("bad samples / step errors", f"{s['bad_samples']} / {s['step_errors']}"),
        ("internal errors", str(s["callback_errors"])),
        ("queue overflows", str(s["overflows"])),
        ("disconnects / reconnects", f"{s['disconnects']} / {s['reconnects']}"),
        ("writes dropped", str(s["tx_dropped"])),
        ("step latency us", f"p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  "
                            f"p99 {lat['p99']:.1f}  p99.9 {lat['p99.9']:.1f}  "
                            f"max {lat['max']:.1f}" if lat["n"] else "no steps"),
    ]
    if s["last_error"]:
        rows.append(("last link error", s["last_error"]))
    return "\n".join(f"{k:>26}: {v}" for k, v in rows)


def _on_sigterm(handler):
    """Install a SIGTERM handler if we are the main thread; return the previous one."""
    import signal

    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, TypeError):  # not the main thread, or no previous Python handler
        return None


def run(args: argparse.Namespace) -> int:
    """Run the bridge until Ctrl-C or ``--duration``; print a summary; return 0."""
    import threading

    import edgernn
    from edgernn.errors import EdgeRNNError
    from firmware_bridge.bridge import Bridge
    from firmware_bridge.link import Link

    try:
        import serial  # noqa: F401 - fail early with a clear message
    except ImportError as e:
        raise EdgeRNNError("edgernn bridge needs pyserial: pip install 'edgernn[bridge]'") from e
    from edgernn.cli.util import report_path

    report_path(args.json)
    try:
        model = edgernn.load(args.model, require_signature=args.public_key is not None,
                             public_key=args.public_key)
    except OSError as e:  # a missing or unreadable file; format errors are EdgeRNNErrors
        raise EdgeRNNError(f"cannot read model {args.model!r}: {e.strerror or e}") from e
    if not model.streamable:
        raise EdgeRNNError(f"{args.model}: this model needs whole sequences (Bidirectional or "
                           f"Reverse layer) and cannot be stepped; the bridge steps one frame "
                           f"at a time")
    link = Link(args.port, baudrate=args.baud, rx_capacity=args.queue)
    bridge = Bridge(link, model, reset_on_gap=args.reset_on_gap, inline=not args.threaded)
    link.open(wait=args.wait)
    tty = sys.stderr.isatty()

    def tick(s: dict) -> None:
        end = "\r" if tty else "\n"
        print(_live_line(s), end=end, file=sys.stderr, flush=True)

    stop = threading.Event()
    previous = _on_sigterm(lambda *_: stop.set())  # a service manager's stop = Ctrl-C
    print(f"edgernn bridge: {args.model} (in {model.input_size}, out {model.output_size}) "
          f"on {args.port}; Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        stats = bridge.serve(stop, duration=args.duration,
                             on_tick=tick if args.stats_interval > 0 else None,
                             tick_s=args.stats_interval or 1.0)
    except KeyboardInterrupt:
        stats = bridge.stats()
    finally:
        link.close()
        _on_sigterm(previous)
    if tty:
        print(file=sys.stderr)
    print(summary(stats), flush=True)
    if args.json:
        from edgernn.cli.util import write_json

        write_json(args.json, stats)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m firmware_bridge.cli``)."""
    from edgernn.cli.util import os_error_line
    from edgernn.errors import EdgeRNNError

    parser = Parser(prog="edgernn bridge", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except EdgeRNNError as e:
        print(f"edgernn bridge: error: {e}", file=sys.stderr)
    except OSError as e:
        print(f"edgernn bridge: error: {os_error_line(e)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
