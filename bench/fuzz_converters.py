"""10^4 mutated ONNX, TFLite and Keras files, each converted in a capped worker.

    nice -n 15 .venv/bin/python bench/fuzz_converters.py [--cases 10000] [--seed 0]

Cases come from ``tests/converter_fuzz.py`` (the mutation engine the tests
use), fully determined by ``--seed`` and the case index; the formats take
turns. Workers run batches of cases in fresh processes under ``RLIMIT_AS =
--mem-gb``; each case converts the file and, when it converts, steps the
model 3 times. A case over ``--case-seconds`` is stopped by the worker's
timer (``hang``); a worker that stops answering is killed (``hang``) and one
that dies (a crash, or the memory cap) is recorded as ``crash:<status>``; the
run goes on from the next case.

Writes ``bench/out/fuzz_converters.json``: outcome counts per format and per
mutation, how many refusals came from the last-resort guard
(:mod:`converters.common.guard`, "malformed or unsupported") rather than a
named check and how many were the Keras reader's HDF5 time cap, the slowest
case, the largest worker RSS, and every failing case.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

from fuzzrun import capped_worker, run_cases

ROOT = Path(__file__).resolve().parents[1]
GUARD = "malformed or unsupported ("


def run_batch(start: int, count: int, args) -> list[dict]:
    """Run cases [start, start+count); restart the worker after a hang or a crash."""
    return run_cases(
        start, count,
        lambda s, c, err: capped_worker("tests.converter_fuzz", [s, c, args.seed],
                                        args.mem_gb, err),
        180, args.case_seconds + 10,  # imports and the seed files; one case
        lambda i, stalled, status, tail: {
            "i": i, "format": "?", "seed_file": "?", "mutation": "?", "seconds": None,
            "maxrss_mb": None, "outcome": "hang" if stalled else f"crash:{status}",
            "message": tail})


def summary(rows: list[dict]) -> dict:
    """Counts by outcome, per format and per (format, mutation)."""
    per_fmt = collections.defaultdict(collections.Counter)
    per_kind = collections.defaultdict(collections.Counter)
    for r in rows:
        per_fmt[r["format"]][r["outcome"]] += 1
        per_kind[f"{r['format']}/{r['mutation']}"][r["outcome"]] += 1
    timed = [r for r in rows if r["seconds"] is not None]
    return {"cases": len(rows),
            "outcomes": dict(collections.Counter(r["outcome"] for r in rows)),
            "per_format": {k: dict(v) for k, v in sorted(per_fmt.items())},
            "per_mutation": {k: dict(v) for k, v in sorted(per_kind.items())},
            "guard_refusals": sum(GUARD in r["message"] for r in rows
                                  if r["outcome"] == "rejected"),
            "guard_by_error": dict(collections.Counter(
                f"{r['format']}: {r['message'].split(GUARD, 1)[1].split(':')[0]}"
                for r in rows if GUARD in r["message"]).most_common(12)),
            "hdf5_timeouts": sum("took more than" in r["message"] for r in rows
                                 if r["outcome"] == "rejected"),
            "slowest_case": max(timed, key=lambda r: r["seconds"]) if timed else None,
            "slowest_not_capped": max((r for r in timed if "took more than" not in r["message"]),
                                      key=lambda r: r["seconds"], default=None),
            "max_worker_rss_mb": max((r["maxrss_mb"] or 0) for r in rows)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mem-gb", type=float, default=4.0)
    p.add_argument("--case-seconds", type=float, default=10.0)
    p.add_argument("--json", default=str(ROOT / "bench" / "out" / "fuzz_converters.json"))
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    for start in range(0, args.cases, args.batch):
        rows += run_batch(start, min(args.batch, args.cases - start), args)
        done = collections.Counter(r["outcome"] for r in rows)
        print(f"{len(rows)}/{args.cases} cases, {time.perf_counter() - t0:.0f} s: {dict(done)}",
              file=sys.stderr, flush=True)
    failures = [r for r in rows if r["outcome"] not in ("rejected", "converted")]
    res = {"seed": args.seed, "mem_cap_gb": args.mem_gb,
           "case_seconds_cap": args.case_seconds, **summary(rows),
           "failures": len(failures), "failing_cases": failures[:50],
           "wall_s": round(time.perf_counter() - t0, 1)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=1))
    keys = ("cases", "outcomes", "per_format", "guard_refusals", "guard_by_error",
            "hdf5_timeouts", "failures",
            "max_worker_rss_mb", "slowest_case", "slowest_not_capped", "wall_s")
    print(json.dumps({k: res[k] for k in keys}, indent=1))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
