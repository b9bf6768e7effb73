"""The import contracts of pyproject.toml ([tool.importlinter], run by ``make test``) hold,
and they can fail: an upward import or a converter import planted in a copy of the tree
breaks the contract that forbids it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import require

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edgernn", "converters", "firmware_bridge", "edgernn_serve")


def _lint(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    require(exe.exists(), "import-linter (the dev extra)")
    return subprocess.run([str(exe), "--config", str(root / "pyproject.toml")], cwd=root,
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_import_contracts_are_kept():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "0 broken" in out.stdout


@pytest.fixture
def tree(tmp_path):
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__",
                                                                                  "data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize("module, line, contract", [
    ("edgernn/ops/base.py", "import converters.onnx", "imports no workstation"),
    ("edgernn/kernels/optable.py", "from edgernn.engine import plan", "runtime floors"),
    ("edgernn/ir/graph.py", "from edgernn.ops import concat", "runtime floors"),
    ("edgernn/audio/io.py", "import edgernn_serve", "does not import the daemon"),
    ("edgernn/ops/registry.py", "from edgernn.ops import gru", "no import circles"),
    ("edgernn/kernels/spec/reduce.py", "import numba", "import no numba or llvmlite"),
    ("edgernn/kernels/native.py", "from edgernn.kernels import abi", "import no numba"),
])
def test_a_planted_import_breaks_its_contract(tree, module, line, contract):
    f = tree / module
    f.write_text(f.read_text() + f"\n\ndef _planted():\n    {line}\n")
    out = _lint(tree)
    assert out.returncode != 0, out.stdout[-2000:]
    broken = [ln for ln in out.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(contract in ln for ln in broken), out.stdout[-2000:]
