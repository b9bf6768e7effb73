"""The daemon: wires config, model, source, scheduler, sinks, metrics and systemd together.

Lifecycle::

    start()   load + validate the model, open the sinks, the metrics server and
              the source, start stepping; READY=1
    serve()   wait for signals: SIGHUP reloads, SIGTERM/SIGINT (or the end of a
              stdin/wav input) stops; WATCHDOG=1 while the stepping loop lives
    stop()    STOPPING=1; refuse new frames, answer every queued one, flush the
              sinks (all within 2 s), log the accounting; exit status 0

Reload (SIGHUP): RELOADING=1, then the config file is read again and the model
loaded and stepped once. If anything fails, the running model and sinks keep
serving and the reason is logged; otherwise the stepping thread installs the
new model, stream policy and sinks between two waves (no queued frame is lost)
and the old sinks are flushed. The source, metrics address, CPU set,
real-time priority and a denoising source's audio sinks cannot change on a
reload (restart the service for those); ``[denoise]``, the denoiser model (another
front end at the same rate included: the audio is handed over) and
its math can (:mod:`edgernn_serve.denoise`), and so can ``[vad]``
(:mod:`edgernn_serve.vad`). Finally READY=1.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time

from edgernn.errors import EdgeRNNError
from edgernn_serve.config import Config, ConfigError, load_config
from edgernn_serve.daemon_metrics import daemon_samples
from edgernn_serve.metrics import Metrics, MetricsServer
from edgernn_serve.models import ModelHandle, ModelLoadError, load_model
from edgernn_serve.notify import Notifier
from edgernn_serve.scheduler import Scheduler
from edgernn_serve.sinks import SINKS, SinkContext, SinkSet, build_sink
from edgernn_serve.sources import SourceContext, build_source

log = logging.getLogger("edgernn.serve")

STOP_BUDGET_S = 1.6  # of the 2 s a stop may take: leaves room for interpreter exit


def setup_logging(level: str) -> None:
    """Log to stderr; without timestamps under systemd (the journal adds them)."""
    root = logging.getLogger("edgernn.serve")
    if not root.handlers:
        h = logging.StreamHandler(sys.stderr)
        fmt = "%(levelname)s %(message)s" if os.environ.get("JOURNAL_STREAM") else \
            "%(asctime)s %(levelname)s %(message)s"
        h.setFormatter(logging.Formatter(fmt))
        root.addHandler(h)
        root.propagate = False
    root.setLevel(level.upper())


def _realtime(priority: int):
    def init():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            log.info("%s thread (tid %d) runs SCHED_FIFO priority %d",
                     threading.current_thread().name, threading.get_native_id(), priority)
        except (OSError, AttributeError) as e:
            log.warning("process.realtime_priority = %d not applied (%s); needs CAP_SYS_NICE "
                        "or LimitRTPRIO (see deploy/edgernn.service)", priority, e)
    return init


class Daemon:
    """One ``edgernn serve`` process (see the module docstring)."""

    def __init__(self, config: Config, stdout=None, stdin=None) -> None:
        self.config = config
        self.stdout, self.stdin = stdout, stdin
        self.metrics = Metrics()
        self.notifier = Notifier()
        self.started = time.monotonic()
        self.reloads = {"ok": 0, "failed": 0}
        self.last_reload_error: str | None = None
        self.refused = 0  # frames arriving after the stop began (never accepted)
        self._accepting = True
        self._submit_lock = threading.Lock()
        self._tls = threading.local()
        self._rt = _realtime(config.realtime_priority) if config.realtime_priority else None
        self.scheduler = self.source = self.sinks = self.server = None
        self.front = None  # a denoising source's (model rate, hop, front-end tag)
        setup_logging(config.log_level)

    # ------------------------------------------------------------ building
    def _sinks(self, config: Config, handle: ModelHandle, running=None) -> SinkSet:
        """The sinks of ``config``; ``running`` (a reload): the audio sinks carry over."""
        def audio(sinks):
            return [s for s in sinks if SINKS[s.type][1].audio]

        if running is not None:
            if audio(config.sinks) != audio(self.config.sinks):
                raise ConfigError(f"{config.path}: sink: the 'wav' and 'audio' sinks changed, "
                                  f"and a reload cannot change them (restart the service)")
            carried = {k.name: k for k in running.sinks if k.audio}
        fmt = getattr(self.source, "format", None) if config.denoise else None
        ctx = SinkContext(config.device, self.stdout, fmt)
        built = []
        try:
            for s in config.sinks:
                if running is not None and SINKS[s.type][1].audio:
                    built.append(carried[s.name])
                else:
                    built.append(build_sink(s, ctx))
        except BaseException:
            SinkSet(built).close(keep=running.sinks if running is not None else ())
            raise
        sinks = SinkSet(built)
        sinks.set_slices(handle.output_slices)
        return sinks

    def _front(self, config: Config, handle: ModelHandle):
        """A denoising source's (model rate, hop, front-end tag), from its model; else None."""
        if config.denoise is None:
            return None
        from edgernn.audio import open_denoiser

        try:
            d = open_denoiser(handle.model, config.denoise.attenuation_limit_db,
                              math=config.model.math)
        except EdgeRNNError as e:
            raise ModelLoadError(f"model {handle.path}: cannot denoise the source "
                                 f"(source.denoise, [denoise]): {e}") from None
        return d.sample_rate, d.hop, d.front_tag

    def _vad(self, config: Config, source):
        """The loaded, checked ``[vad]`` model for the rate of the samples ``source``
        feeds (the denoiser's, else its own), or None."""
        if config.vad is None:
            return None
        from edgernn_serve.vad import load_vad

        return load_vad(config.vad, source.model_rate)

    def _source(self, config: Config, front):
        ctx = SourceContext(self._submit, config.streams.queue,
                            lambda: len(self.scheduler.queue), self._sizes, self.stdin,
                            front[:2] if front else None)
        return build_source(config.source, ctx)

    def _sizes(self):
        m = self.scheduler.handle.model
        return m.input_size, m.output_size

    def _submit(self, items: list) -> None:
        if self._rt is not None and not getattr(self._tls, "rt", False):
            self._tls.rt = True  # frames are stepped in this thread too (streams.inline)
            self._rt()
        with self._submit_lock:  # a stop flips _accepting under it: no put after that
            if self._accepting:
                self.scheduler.submit(items)
            else:
                self.refused += len(items)

    def _load(self, config: Config) -> ModelHandle:
        m = config.model
        return load_model(m.path, m.id, m.math, m.public_key)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Load, validate and open everything, start serving, tell systemd READY=1.

        Raises
        ------
        EdgeRNNError
            (ConfigError, ModelLoadError, LinkError, ...) naming what failed.
        """
        c = self.config
        if c.cpus:
            try:
                os.sched_setaffinity(0, c.cpus)  # before any thread: they all inherit it
            except (OSError, ValueError) as e:
                raise ConfigError(f"{c.path}: process.cpus: cannot run on CPUs {list(c.cpus)}: "
                                  f"{e}") from None
        handle = self._load(c)
        try:
            self.front = self._front(c, handle)
            try:
                self.source = self._source(c, self.front)
            except OSError as e:
                raise ConfigError(f"{c.path}: source: cannot open the {c.source.kind} source: "
                                  f"{e}") from None
            self.source.check_model(handle.model)
            self._check_streams(c)
            vad = self._vad(c, self.source)
            sinks = self.sinks = self._sinks(c, handle)
        except ConfigError as e:  # name the config file, as every config error does
            raise e.naming(c.path) from None
        if c.denoise is not None:
            from edgernn_serve.denoise import DenoiseStepper, audio_samples

            self.scheduler = Scheduler(handle, c.streams, sinks, self.metrics, c.model.math,
                                       stepper=DenoiseStepper(self.metrics, self.front[1]),
                                       denoise=c.denoise,
                                       vad=vad)
            self.metrics.add(lambda: audio_samples(self.scheduler, self.source, self.sinks))
            if c.source.kind == "wav" and not c.source.options["realtime"] and any(
                    s.type == "audio" for s in c.sinks):
                log.warning("source.realtime = false reads the file faster than a sound card "
                            "plays it: most audio will be dropped (set realtime = true)")
        else:
            self.scheduler = Scheduler(handle, c.streams, sinks, self.metrics, c.model.math,
                                       vad=vad)
        if c.source.kind in ("wav", "audio"):  # a reload may add [vad]
            from edgernn_serve.vad import vad_samples

            self.metrics.add(lambda: vad_samples(self.scheduler.stepper))
        if c.metrics_listen is not None:
            try:
                self.server = MetricsServer(c.metrics_listen, self.metrics, self.health)
            except OSError as e:
                raise ConfigError(f"{c.path}: metrics.listen: cannot listen on "
                                  f"{c.metrics_listen[0]}:{c.metrics_listen[1]}: "
                                  f"{e.strerror or e}") from None
            self.server.start()
        self.metrics.add(self._samples)
        sinks.start()
        self.scheduler.start(self._rt)
        self.source.start()
        where = (f", metrics on http://{self.server.address[0]}:{self.server.address[1]}"
                 if self.server else "")
        msg = (f"serving {handle.id} ({handle.sha256[:12]}) to {len(c.sinks)} sink(s) from "
               f"the {c.source.kind} source{where}")
        log.info(msg)
        self.notifier.ready(msg)

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT or the end of the input; then :meth:`stop`; return 0."""
        r, w = socket.socketpair()
        w.setblocking(False)
        previous = {s: signal.signal(s, lambda *_: None)
                    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        old_fd = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
        tick = min(self.notifier.watchdog_s / 2, 1.0) if self.notifier.watchdog_s else 1.0
        reason = None
        try:
            while reason is None:
                if select.select([r], [], [], tick)[0]:
                    for sig in r.recv(64):
                        if sig in (signal.SIGTERM, signal.SIGINT):
                            reason = signal.Signals(sig).name
                        elif sig == signal.SIGHUP and reason is None:
                            self.reload()
                if reason is None and self.source.finished.is_set():
                    reason = "end of input"
                if self.health()[0]:
                    self.notifier.watchdog()
        finally:
            signal.set_wakeup_fd(old_fd)
            for s, h in previous.items():
                signal.signal(s, h)
            r.close()
            w.close()
        self.stop(reason)
        return 0

    def stop(self, reason: str = "stop") -> dict:
        """Answer every accepted frame (or count it dropped), flush the sinks, close all."""
        t0 = time.monotonic()
        self.notifier.stopping(f"stopping ({reason})")
        log.info("stopping (%s): answering queued frames, flushing sinks", reason)
        with self._submit_lock:
            self._accepting = False
        drained = self.scheduler.stop(timeout=STOP_BUDGET_S / 2)
        if drained and len(self.scheduler.queue):  # defensive: the thread has exited
            self.scheduler.process(self.scheduler.queue.get_many(0))
        self.source.close()
        left = self.sinks.flush(max(0.05, STOP_BUDGET_S - (time.monotonic() - t0)))
        self.sinks.close()
        if self.server is not None:
            self.server.close()
        summary = self.summary()
        summary.update(reason=reason, drained=drained, sinks_left_at_exit=left,
                       stop_seconds=round(time.monotonic() - t0, 3))
        log.info("stopped: %s", json.dumps(summary, sort_keys=True))
        self.notifier.close()
        return summary

    def summary(self) -> dict:
        acc = self.scheduler.accounting()
        acc["refused_while_stopping"] = self.refused
        acc["sinks"] = {s.name: {"delivered": s.delivered, "dropped": s.dropped,
                                 "pending": s.pending} for s in self.sinks.sinks}
        return acc

    # ------------------------------------------------------------ reload
    def _check_streams(self, c: Config) -> None:
        """A source whose channels are streams of their own (``channels = "each"``) needs a
        slot for each: with fewer, one channel would never play and its partner's audio
        would pile up in the sinks."""
        fmt = getattr(self.source, "format", None)
        if fmt is not None and fmt.streams > c.streams.max:
            raise ConfigError(f"{c.path}: streams.max: the {c.source.kind} source has "
                              f"{fmt.streams} channels, each a stream (channels = \"each\"); "
                              f"expected streams.max >= {fmt.streams}, got {c.streams.max}")

    def _check_sizes(self, old: ModelHandle, new: ModelHandle) -> None:
        """The senders send frames of the running model's size: a reload keeps it."""
        a, b = old.model, new.model
        for what, x, y in (("input_size", a.input_size, b.input_size),
                           ("num_tokens", a.num_tokens, b.num_tokens)):
            if x != y:
                raise ModelLoadError(f"model {new.path}: {what} {y} differs from the running "
                                     f"model's {x}; the source's frames would not fit "
                                     f"(restart the service to change it)")

    def reload(self) -> bool:
        """Re-read the config and model; swap both in atomically, or keep the old ones."""
        self.notifier.reloading()
        old, h = self.config, self.scheduler.handle
        log.info("reloading %s", old.path)
        new_sinks = None
        try:
            new = load_config(old.path)
            for what, a, b in (("source", old.source, new.source),
                               ("metrics.listen", old.metrics_listen, new.metrics_listen),
                               ("process.cpus", old.cpus, new.cpus),
                               ("process.realtime_priority", old.realtime_priority,
                                new.realtime_priority)):
                if a != b:
                    raise ConfigError(f"{new.path}: {what}: changed, and a reload cannot change "
                                      f"it (restart the service)")
            handle = self._load(new)
            self.source.check_model(handle.model)
            self._check_streams(new)
            front = self._front(new, handle)
            if front is None:
                self._check_sizes(h, handle)
            elif front[0] != self.front[0]:
                raise ModelLoadError(f"model {handle.path}: runs at {front[0]} Hz, the "
                                     f"running denoiser at {self.front[0]} Hz; a reload "
                                     f"cannot change the audio's rate (restart the service)")
            vad = self._vad(new, self.source)
            same_sinks = (new.sinks, new.device) == (old.sinks, old.device)
            if not same_sinks:
                new_sinks = self._sinks(new, handle, running=self.sinks)
                new_sinks.start_new(self.sinks)
        except Exception as e:  # noqa: BLE001 - a failed reload never stops the daemon
            if not isinstance(e, (EdgeRNNError, OSError)):
                log.debug("reload failed", exc_info=True)
                e = f"{type(e).__name__}: {e}"
            if new_sinks is not None:
                new_sinks.close(keep=self.sinks.sinks)
            self.reloads["failed"] += 1
            self.last_reload_error = str(e)
            log.error("reload failed; still serving %s (%s): %s", h.id, h.sha256[:12], e)
            self.notifier.ready(f"reload failed: {e}")
            return False
        if front is not None and front[2] != self.front[2]:
            log.info("reload: the audio of every stream is handed over from the front end "
                     "%r to %r at the next hop (the old denoiser flushed, added to the new "
                     "one's first output)", self.front[2], front[2])
            self.front = (*self.front[:2], front[2])  # the source keeps its hops
        sinks = new_sinks or self.sinks
        sinks.set_slices(handle.output_slices)
        options = {"vad": vad} if new.denoise is None else {"denoise": new.denoise, "vad": vad}
        if not self.scheduler.request_swap(handle, new.streams, sinks, new.model.math,
                                           **options):
            log.error("reload: the stepping thread did not take the new model within 5 s")
        if new_sinks is not None:
            self.sinks.flush(1.0)
            self.sinks.close(keep=new_sinks.sinks)
            self.sinks = new_sinks
        self.config = new
        setup_logging(new.log_level)
        self.reloads["ok"] += 1
        self.last_reload_error = None
        msg = f"serving {handle.id} ({handle.sha256[:12]})"
        log.info("reloaded: %s", msg)
        self.notifier.ready(msg)
        return True

    # ------------------------------------------------------------ health, metrics
    def health(self) -> tuple:
        s = self.scheduler
        age = time.monotonic() - s.heartbeat
        src_ok = self.source.healthy
        ok = s.alive and age < 2.0 and src_ok
        h = s.handle
        return ok, {"uptime_s": round(time.monotonic() - self.started, 3),
                    "model": {"id": h.id, "sha256": h.sha256},
                    "stepper_age_s": round(age, 3),
                    "source": {"kind": self.config.source.kind,
                               "connected": self.source.connected, "reader_ok": src_ok,
                               "restarts": self.source.restarts,
                               "last_error": self.source.last_error},
                    "streams": len(s.slots), "queue": len(s.queue),
                    "last_reload_error": self.last_reload_error}

    def _samples(self):
        return daemon_samples(self)
