"""Running fuzz cases in memory-capped worker processes that may hang or die (shared by
``fuzz_modelfile.py`` and ``fuzz_converters.py``).

A worker runs cases ``[start, start + count)`` and prints one JSON line per case (with
its index ``i``). A worker that stops answering (a hang inside native code) or dies
(a crash, the memory cap) is killed, its case recorded by ``failed``, and a new
worker goes on from the next case.
"""

from __future__ import annotations

import json
import resource
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def capped_worker(module: str, argv, mem_gb: float, err) -> subprocess.Popen:
    """``python -m module *argv`` in the checkout, under ``RLIMIT_AS = mem_gb``."""
    cap = int(mem_gb * (1 << 30))

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return subprocess.Popen([sys.executable, "-m", module, *map(str, argv)], cwd=ROOT,
                            preexec_fn=limit, stdout=subprocess.PIPE, stderr=err, text=True)


def run_cases(start: int, count: int, spawn, startup_s: float, case_s: float,
              failed) -> list[dict]:
    """Rows of cases ``[start, start + count)``.

    ``spawn(start, count, err)`` starts a worker (stderr to ``err``);
    ``startup_s``: how long its imports may take before the first row; ``case_s``: how
    long one case may take; ``failed(i, stalled, status, stderr_tail)``: the row of a
    case whose worker hung (``stalled``) or died with ``status``.
    """
    rows, nxt, end = [], start, start + count
    while nxt < end:
        err = tempfile.TemporaryFile()
        proc = spawn(nxt, end - nxt, err)
        deadline = time.monotonic() + startup_s
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        stalled = False
        while nxt < end:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                stalled = True
                break
            line = proc.stdout.readline()
            if not line:
                break
            row = json.loads(line)
            rows.append(row)
            nxt = row["i"] + 1
            deadline = time.monotonic() + case_s
        if nxt < end:  # the worker hung or died on case nxt
            proc.kill()
            status = proc.wait()
            err.seek(0)
            rows.append(failed(nxt, stalled, status,
                               err.read().decode(errors="replace")[-800:]))
            nxt += 1
        else:
            proc.wait()
        sel.close()
        err.close()
    return rows
