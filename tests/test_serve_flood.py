"""A garbage flood at 10x the frame rate on a UDP and a pty serial source (issue #21):
every good frame answered, every bad one counted, RSS bounded. The same run as
bench/serve_faults.py, shorter (its figures are in docs/serve.md)."""

from __future__ import annotations

import sys

import pytest

from tests.serve_helpers import ROOT, warm_engine

BENCH = ROOT / "bench"
if str(BENCH) not in sys.path:  # appended: bench/serial.py must not shadow pyserial
    sys.path.append(str(BENCH))
from serve_faults import flood  # noqa: E402


@pytest.mark.parametrize("kind", ["udp", "serial"])
def test_garbage_flood_is_counted_and_every_good_frame_answered(tmp_path, kind):
    warm_engine()
    r = flood(kind, tmp_path, seconds=3.0, rate=100.0, garbage=10, seed=5)
    assert r["good_sent"] >= 200 and r["garbage_sent"] == 10 * r["good_sent"], r
    assert r["tracebacks"] == 0 and r["exit_code"] == 0, r
    if r["kernel_drops"] == 0:  # exact: nothing was lost before the daemon read it
        assert r["good_answered"] == r["answered_ok_metric"] == r["good_sent"], r
        assert r["bad_counted"] == r["garbage_sent"], r
    else:  # the kernel dropped some (a loaded machine): each is counted there instead
        assert r["good_answered"] + r["bad_counted"] + r["kernel_drops"] == \
            r["good_sent"] + r["garbage_sent"], r
    assert r["rss_mb_max"] - r["rss_mb_after_1s"] < 20, r  # bounded: no per-frame growth
