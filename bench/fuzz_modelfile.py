"""10^4 mutated .ernn files, each loaded in a memory-capped worker under a time cap.

    nice -n 15 .venv/bin/python bench/fuzz_modelfile.py [--cases 10000] [--target load]

Cases come from ``tests/ernn_fuzz.py`` (the mutation engine the tests use),
fully determined by ``--seed`` and the case index. Workers run batches of
cases in fresh processes under ``RLIMIT_AS = --mem-gb`` and report one JSON
line per case; a case over ``--case-seconds`` is stopped by the worker's timer,
and a worker that stops answering (a hang inside native code) or dies (a
crash, or the memory cap) is killed and the case recorded as ``hang`` or
``died:<status>``, and the run goes on from the next case.

Writes ``bench/out/fuzz_modelfile.json``: outcome counts, counts per mutation,
the slowest case, the largest worker RSS, and every failing case (anything
other than ``rejected`` -- a ModelFormatError --, ``loaded-same`` or, for
mutations that re-hash an edited manifest, ``loaded-changed``).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fuzzrun import capped_worker, run_cases  # noqa: E402

from tests.ernn_fuzz import ok  # noqa: E402


def _batch(start: int, count: int, args) -> list[dict]:
    """Run cases [start, start+count); restart after a hang or a death."""
    return run_cases(
        start, count,
        lambda s, c, err: capped_worker("tests.ernn_fuzz", [s, c, args.seed, args.target],
                                        args.mem_gb, err),
        120, args.case_seconds + 5,  # the import and the seed models; one case
        lambda i, stalled, status, tail: {
            "i": i, "seed_model": "?", "mutation": "?", "seconds": None,
            "outcome": "hang" if stalled else f"died:{status}", "maxrss_mb": None,
            "stderr_tail": tail})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", choices=["load", "archive"], default="load")
    p.add_argument("--mem-gb", type=float, default=4.0)
    p.add_argument("--case-seconds", type=float, default=5.0)
    p.add_argument("--json", default=str(ROOT / "bench" / "out" / "fuzz_modelfile.json"))
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    for start in range(0, args.cases, args.batch):
        rows += _batch(start, min(args.batch, args.cases - start), args)
        done = collections.Counter(r["outcome"] for r in rows)
        print(f"{len(rows)}/{args.cases} cases, {time.perf_counter() - t0:.0f} s: {dict(done)}",
              file=sys.stderr, flush=True)
    per_kind = collections.defaultdict(collections.Counter)
    for r in rows:
        per_kind[r["mutation"]][r["outcome"]] += 1
    timed = [r for r in rows if r["seconds"] is not None]
    failures = [r for r in rows if not ok(r["outcome"])]
    res = {"target": args.target, "cases": len(rows), "seed": args.seed,
           "mem_cap_gb": args.mem_gb, "case_seconds_cap": args.case_seconds,
           "outcomes": dict(collections.Counter(r["outcome"] for r in rows)),
           "per_mutation": {k: dict(v) for k, v in sorted(per_kind.items())},
           "slowest_case": max(timed, key=lambda r: r["seconds"]) if timed else None,
           "max_worker_rss_mb": max((r["maxrss_mb"] or 0) for r in rows),
           "failures": len(failures), "failing_cases": failures[:50],
           "wall_s": round(time.perf_counter() - t0, 1)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("target", "cases", "outcomes", "failures",
                                          "max_worker_rss_mb", "slowest_case", "wall_s")},
                     indent=1))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
