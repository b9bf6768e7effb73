"""``edgernn serve``: run the daemon in the foreground (systemd runs it the same way).

    edgernn serve --config /etc/edgernn/edgernn.toml
    edgernn serve --config edgernn.toml --check      # validate config + model, exit
    python -m edgernn_serve --config edgernn.toml

Results go to the configured sinks, logs to stderr. SIGHUP reloads the config
and the model, SIGTERM or Ctrl-C stops after answering every accepted frame.
A bad config or model prints one line naming the key (or file) and exits 2.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``edgernn serve`` on ``parser``."""
    parser.add_argument("--config", "-c", required=True, help="the daemon's TOML config file")
    parser.add_argument("--check", action="store_true",
                        help="validate the config and load + step the model once, then exit")


def run(args: argparse.Namespace) -> int:
    """Validate, start, serve until stopped; 0 on a clean stop.

    Raises
    ------
    EdgeRNNError
        A config, model, source or sink that cannot be used (the CLI prints it, exits 2).
    """
    from edgernn.errors import EdgeRNNError

    try:
        import paho.mqtt.client  # noqa: F401 - fail early with a clear message
        import prometheus_client  # noqa: F401
    except ImportError as e:
        raise EdgeRNNError(f"edgernn serve needs the daemon extra "
                           f"(pip install 'edgernn[daemon]'): {e}") from None
    from edgernn_serve.config import ConfigError, load_config
    from edgernn_serve.daemon import Daemon
    from edgernn_serve.models import load_model

    config = load_config(args.config)
    if args.check:
        m = config.model
        h = load_model(m.path, m.id, m.math, m.public_key)
        src = config.source.kind
        if src in ("wav", "audio"):  # a file or a sound card: open it, check the model fits
            try:
                d = Daemon(config)
                d.front = d._front(config, h)
                source = d._source(config, d.front)
                source.check_model(h.model)
                vad = d._vad(config, source)
            except ConfigError as e:
                raise e.naming(config.path) from None
            source.close()
            if config.source.options["denoise"]:
                src += f" (denoised at {source.format.model_rate} Hz)"
            if vad is not None:
                src += f", VAD at {vad.model.audio['sample_rate']} Hz"
        print(f"{config.path}: ok; model {h.id} ({h.sha256[:12]}), input {h.model.input_size}, "
              f"output {h.model.output_size}; source {src}; {len(config.sinks)} sink(s)")
        return 0
    daemon = Daemon(config)
    try:
        daemon.start()
    except BaseException:
        # release what was opened before the failure
        for part in (daemon.sinks, daemon.server, daemon.source):
            if part is not None:
                try:
                    part.close()
                except Exception:  # noqa: BLE001 - the start-up error is the one to report
                    pass
        raise
    rc = daemon.serve()
    # Every sink is flushed and closed by now. Run the exit handlers (edgernn's
    # temporary cache folder, if it needed one), then skip the rest of the
    # interpreter's teardown: with Numba and LLVM loaded it takes 0.5-1 s of a
    # stop's 2 s budget and has nothing of ours left to do.
    import atexit
    import logging
    import os

    logging.shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m edgernn_serve``)."""
    from edgernn.errors import EdgeRNNError

    parser = argparse.ArgumentParser(prog="edgernn serve", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except EdgeRNNError as e:
        print(f"edgernn serve: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
