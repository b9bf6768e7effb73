"""Mutated ONNX, TFLite and Keras files: each is refused with an edgernn error or
converts (and steps); never a traceback, a hang or a crash.

The mutations are ``tests/converter_fuzz.py``'s (byte flips, truncations,
junk, offset lies; ONNX dims, data types, data, attributes, names and op
types; Keras config values). 300 cases with a fixed seed run in a worker under
a 4 GB address-space cap and a 10 s timer per case; the 10^4-case run is
``bench/fuzz_converters.py`` (figures in ``docs/errors.md``).
"""

import argparse
import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "bench") not in sys.path:  # appended: bench/serial.py must not shadow pyserial
    sys.path.append(str(ROOT / "bench"))

import fuzz_converters  # noqa: E402

from tests import converter_fuzz  # noqa: E402


def test_300_mutated_source_files_give_only_edgernn_errors_or_a_conversion():
    args = argparse.Namespace(seed=21, mem_gb=4.0, case_seconds=converter_fuzz.CASE_SECONDS)
    rows = fuzz_converters.run_batch(0, 300, args)
    bad = [(r["i"], r["format"], r["mutation"], r["outcome"], r["message"][:200])
           for r in rows if not converter_fuzz.ok(r["outcome"])]
    assert not bad, bad[:10]
    assert len(rows) == 300
    per_fmt = collections.Counter((r["format"], r["outcome"]) for r in rows)
    for fmt in converter_fuzz.FORMATS:  # the mutations do reach each reader's checks
        assert per_fmt[(fmt, "rejected")] >= 40, per_fmt
    kinds = {(r["format"], r["mutation"]) for r in rows}
    assert kinds == {(f, k) for f in converter_fuzz.FORMATS
                     for k in converter_fuzz.MUTATIONS[f]}  # every mutation was tried
