"""The daemon's own metrics series (``edgernn_*``), for ``Metrics.add``; docs/serve.md
lists them."""

from __future__ import annotations

import time


def daemon_samples(d):
    """(name, type, help, labels, value) of every series of the running Daemon ``d``."""
    s, src = d.scheduler, d.source
    c = s.c
    yield "steps", "counter", "Stream-steps computed", None, c["steps"]
    yield "batches", "counter", "Native batched step calls", None, c["batches"]
    yield ("deadline_misses", "counter", "Frames answered later than streams.deadline_ms "
           "after arrival", None, c["deadline_misses"])
    yield "deadline_seconds", "gauge", "The per-frame budget", None, s.deadline_ns * 1e-9
    yield "nonfinite_resets", "counter", ("Streams reset for a non-finite or exploding "
                                          "state or output"), None, c["nonfinite_resets"]
    yield "sequence_gaps", "counter", "Sequence-number gaps seen", None, c["gaps"]
    yield "frames_accepted", "counter", "Samples accepted into the input queue", None, \
        s.queue.accepted
    for result in ("ok", "error"):
        yield ("frames_answered", "counter", "Accepted samples answered",
               {"result": result}, c[f"results_{result}"])
    bad = dict(s.bad)
    for reason, n in src.bad_frames().items():
        bad[reason] = bad.get(reason, 0) + n
    for reason, n in sorted(bad.items()):
        yield "bad_frames", "counter", "Malformed frames by reason", {"reason": reason}, n
    for reason, n in sorted(s.resets.items()):
        yield "stream_resets", "counter", "Stream state resets by reason", \
            {"reason": reason}, n
    yield ("queue_drops", "counter", "Frames or results dropped by a full queue",
           {"queue": "input"}, s.queue.dropped_samples)
    yield ("queue_drops", "counter", "Frames or results dropped by a full queue",
           {"queue": "slots"}, c["dropped_no_slot"])
    for queue, n in src.drops().items():
        yield ("queue_drops", "counter", "Frames or results dropped by a full queue",
               {"queue": queue}, n)
    yield "reconnects", "counter", "Reconnections", {"component": "source"}, src.reconnects
    yield ("source_restarts", "counter", "Source reader threads restarted after a failure",
           None, src.restarts)
    for k in d.sinks.sinks:
        yield ("queue_drops", "counter", "Frames or results dropped by a full queue",
               {"queue": f"sink:{k.name}"}, k.dropped)
        yield ("reconnects", "counter", "Reconnections", {"component": f"sink:{k.name}"},
               k.reconnects)
        yield ("sink_errors", "counter", "Failed writes of each sink (a full disk, a "
               "broken pipe); their results are counted in queue_drops",
               {"sink": k.name, "type": k.type}, k.errors)
        yield ("sink_delivered", "counter", "Results delivered by each sink",
               {"sink": k.name, "type": k.type}, k.delivered)
        yield ("sink_pending", "gauge", "Results buffered in each sink",
               {"sink": k.name, "type": k.type}, k.pending)
    for result, n in d.reloads.items():
        yield "reloads", "counter", "Config and model reloads", {"result": result}, n
    yield "streams_active", "gauge", "Streams holding a slot", None, len(s.slots)
    yield "input_queue_length", "gauge", "Items waiting to be stepped", None, len(s.queue)
    yield "source_connected", "gauge", "1 while the source is connected", None, \
        int(src.connected)
    yield "internal_errors", "counter", "Unexpected failures (logged)", None, \
        c["internal_errors"]
    yield "start_time_seconds", "gauge", "Unix time the daemon started", None, \
        time.time() - (time.monotonic() - d.started)
