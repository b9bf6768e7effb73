"""The runtime imports numpy and numba only."""

import subprocess
import sys

HEAVY = ["onnx", "onnxruntime", "torch", "tensorflow", "keras", "serial", "h5py",
         "converters", "firmware_bridge", "ai_edge_litert", "tflite_runtime"]


def test_import_edgernn_pulls_in_no_framework():
    code = (
        "import sys, edgernn, edgernn.cli\n"
        "import numpy as np\n"
        "m = edgernn.Model([edgernn.Dense(np.eye(2, dtype=np.float32))])\n"
        "m.stream().step(np.zeros(2, np.float32))\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"edgernn imported {out.stdout.strip()}"


def test_runtime_works_with_frameworks_unimportable(tmp_path):
    """Block every heavy module at import time: the runtime still loads and steps."""
    block = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {HEAVY!r}:\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    code = block + (
        "import numpy as np, edgernn\n"
        "m = edgernn.Model([edgernn.GRU(np.ones((6, 2), np.float32), np.ones((6, 2), "
        "np.float32))])\n"
        f"m.save({str(tmp_path / 'm.ernn')!r})\n"
        f"print(edgernn.load({str(tmp_path / 'm.ernn')!r}).stream().step("
        "np.ones(2, np.float32)).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(2,)"
