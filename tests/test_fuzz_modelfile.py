"""500 mutated model files: each is rejected with ModelFormatError or reads back correctly.

The mutations (``tests/ernn_fuzz.py``): byte flips, truncations, junk, splices,
entry swaps/drops/duplicates, compressed entries and zip bombs, size and flag
lies in the zip directory, manifest values replaced/removed/added (re-hashed or
not), shape and dtype lies (overflowing shapes included), deep/huge JSON,
5000-digit integers, NaN, and .npy header lies. A load that succeeds must give
exactly the seed model unless the mutation re-hashed an edited manifest. Each
case runs under a 5 s timer; a batch runs in a subprocess under a 4 GB
address-space cap. The 10^4-case run is ``bench/fuzz_modelfile.py``.

TARGET "load" is ``edgernn.load`` end to end; "archive" checks the archive
layer alone.
"""

import collections
import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ernn_fuzz

TARGET = "load"
ROOT = Path(__file__).resolve().parents[1]


def test_500_mutated_files_give_only_model_format_error_or_a_correct_read(tmp_path):
    path = tmp_path / "case.ernn"
    outcomes, kinds, bad = collections.Counter(), set(), []
    for i in range(500):
        name, kind, data = ernn_fuzz.make_case(2024, i, TARGET)
        kinds.add(kind)
        path.write_bytes(data)
        outcome = ernn_fuzz.run_case(path, TARGET, name, kind, seconds=5.0)
        outcomes[outcome] += 1
        if not ernn_fuzz.ok(outcome):
            bad.append((i, kind, outcome))
    assert not bad, bad[:10]
    assert outcomes["rejected"] > 300  # the mutations do reach the checks
    assert kinds == set(ernn_fuzz.MUTATIONS)  # every kind of mutation was tried


def _capped(gb):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (gb << 30, gb << 30))
    return limit


@pytest.mark.parametrize("start", [10_000, 20_000])
def test_mutated_files_in_a_memory_capped_process(start):
    out = subprocess.run([sys.executable, "-m", "tests.ernn_fuzz", str(start), "40", "7", TARGET],
                         cwd=ROOT, preexec_fn=_capped(4), capture_output=True, text=True,
                         timeout=40 * 5 + 60)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 40
    assert all(ernn_fuzz.ok(r["outcome"]) for r in rows), [r for r in rows
                                                            if not ernn_fuzz.ok(r["outcome"])]
    assert max(r["seconds"] for r in rows) < 5


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    import zipfile

    from edgernn import ModelFormatError
    from edgernn.format import archive

    path = tmp_path / "bomb.ernn"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("manifest.json", b"{}")
        with zf.open("arrays/w.npy", "w", force_zip64=True) as out:
            zeros = bytes(1 << 24)
            for _ in range(64):  # 1 GiB of zeros in a few MiB
                out.write(zeros)
    assert path.stat().st_size < 8 << 20
    code = ("import sys, resource\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from edgernn import ModelFormatError\nfrom edgernn.format import archive\n"
            "try:\n"
            "    archive.Archive(sys.argv[1])\n"
            "except ModelFormatError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "is compressed" in out.stdout, out.stderr[-2000:]
    with pytest.raises(ModelFormatError, match="compressed"):
        archive.Archive(path)
