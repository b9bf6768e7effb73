"""The native image (edgernn.kernels.native): a warm process loads the compiled kernels and
engine from the cache without numba or llvmlite, and computes the same bits as numba.

Each case runs fresh interpreters on one cache folder: a cold one (numba compiles and
writes the image), a warm one (image only; numba must not be imported) and one with
``EDGERNN_NATIVE=0`` (numba's own entry and kernels), and compares their outputs bit
for bit. Damaged images (missing, stale, another CPU, corrupt) must fall back to numba
with the same results and no error.
"""

import hashlib
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgernn
from edgernn.kernels import elfload
from tests.helpers import assert_same_bits, run_child
from tests.int8_ops import quantized
from tests.test_graph import rnnoise_like

# x86-64 by default; AArch64 when asked for (EDGERNN_NATIVE=1, as these tests' children are)
pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64")
                                or sys.platform != "linux",
                                reason="the native image is built on x86-64 and AArch64 Linux")

_CHILD = r"""
import json, sys
import numpy as np
import edgernn
from edgernn.engine import entry

paths, out = sys.argv[1:-1], sys.argv[-1]
res = {}
for i, p in enumerate(paths):
    m = edgernn.load(p)
    rng = np.random.default_rng(i)
    xs = rng.uniform(-2, 2, (7, m.input_size)).astype(np.float32)
    s = m.stream()
    res[f"{i}.step"] = np.stack([s.step(x).copy() for x in xs])
    o = np.empty(m.output_size, np.float32)
    res[f"{i}.step_out"] = np.stack([s.step(x, out=o).copy() for x in xs[::-1]])
    blocks = sys.getallocatedblocks()
    for _ in range(1000):
        s.step(xs[0], out=o)
    assert sys.getallocatedblocks() - blocks < 10, "step(x, out=) allocates"
    res[f"{i}.strided"] = m.stream().step(np.repeat(xs[0], 2)[::2])
    res[f"{i}.run"] = m.stream().run(xs)
    if m.streamable and not m.graph.inputs[1:]:
        b = m.streams(3)
        res[f"{i}.batch"] = np.stack([b.step(np.stack([x, -x, 0.5 * x])).copy() for x in xs])
np.savez(out, **res)
print(json.dumps({"numba": "numba" in sys.modules, "llvmlite": "llvmlite" in sys.modules,
                  "image": entry.from_image() is not None}))
"""


def _r(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _models(rng):
    """float S-, M-, L-like stacks, int8 (weights-only and static), a graph, and the
    activations of the shared kernel (LiteRT's among them)."""
    def gru(i, h):
        return edgernn.GRU(_r(rng, 3 * h, i), _r(rng, 3 * h, h), _r(rng, 3 * h), _r(rng, 3 * h))

    def lstm(i, h):
        return edgernn.LSTM(_r(rng, 4 * h, i), _r(rng, 4 * h, h), _r(rng, 4 * h),
                            _r(rng, 4 * h))

    s = edgernn.Model([gru(16, 32), edgernn.Dense(_r(rng, 4, 32), _r(rng, 4), "sigmoid")])
    m = edgernn.Model([lstm(42, 96), gru(96, 96), edgernn.Dense(_r(rng, 22, 96), None)])
    big = edgernn.Model([gru(64, 256), lstm(256, 256), edgernn.Dense(_r(rng, 8, 256), None)])
    q_dyn = edgernn.Model([quantized(lstm(42, 96), "int8-weights"),
                           quantized(gru(96, 64), "int8-weights"),
                           edgernn.Dense(_r(rng, 6, 64), _r(rng, 6), "tanh")])
    q_static = edgernn.Model([quantized(gru(16, 48), "int8", input_scale=0.02,
                                        input_zero_point=3, state_scale=1 / 127),
                              edgernn.Dense(_r(rng, 4, 48), _r(rng, 4))])
    acts = edgernn.Model([edgernn.Dense(_r(rng, 8, 16), _r(rng, 8), "softmax"),
                          edgernn.Dense(_r(rng, 6, 8), None, "tanh_litert"),
                          edgernn.Dense(_r(rng, 4, 6), None, "sigmoid_litert")])
    return [s, m, big, q_dyn, q_static, rnnoise_like(rng), acts]


def _run(paths, cache, out, native=True):
    return run_child(_CHILD, paths, cache, out, native)


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """Model files, a cache folder whose image is complete, and the outputs of the cold
    process (numba compiled, then wrote the image) and of numba alone."""
    tmp = tmp_path_factory.mktemp("native")
    paths = []
    for i, model in enumerate(_models(np.random.default_rng(7))):
        paths.append(tmp / f"m{i}.ernn")
        edgernn.save(model, paths[-1])
    cache = tmp / "cache"
    cold_info, cold = _run(paths, cache, tmp / "cold.npz")
    assert cold_info["numba"] and cold_info["image"]
    _, numba_only = _run(paths, cache, tmp / "numba.npz", native=False)
    assert_same_bits(cold, numba_only)
    return paths, cache, cold


def _image(cache: Path) -> Path:
    [folder] = cache.glob("engine-*/native-*")
    return folder


def test_a_warm_process_imports_no_numba_and_computes_the_same_bits(warm, tmp_path):
    paths, cache, cold = warm
    info, out = _run(paths, cache, tmp_path / "warm.npz")
    assert info == {"numba": False, "llvmlite": False, "image": True}
    assert_same_bits(out, cold)


@pytest.mark.parametrize("damage", ["missing", "stale", "other_cpu", "bad_sha", "corrupt"])
def test_a_damaged_image_falls_back_to_numba_and_is_written_again(warm, tmp_path, damage):
    paths, cache, cold = warm
    work = tmp_path / "cache"
    subprocess.run(["cp", "-a", str(cache), str(work)], check=True)
    folder = _image(work)
    obj, meta_path = folder / "gru.gru_kernel.o", folder / "gru.gru_kernel.json"
    meta = json.loads(meta_path.read_text())
    if damage == "missing":
        obj.unlink()
    elif damage in ("stale", "other_cpu"):
        meta["source" if damage == "stale" else "cpu"] = "0" * 16
        meta_path.write_text(json.dumps(meta))
    elif damage == "bad_sha":
        data = bytearray(obj.read_bytes())
        data[len(data) // 2] ^= 0xFF
        obj.write_bytes(bytes(data))
    else:  # a truncated object whose hash was updated: the loader itself must refuse it
        data = obj.read_bytes()[:200]
        obj.write_bytes(data)
        meta["sha256"] = hashlib.sha256(data).hexdigest()
        meta_path.write_text(json.dumps(meta))
    info, out = _run(paths, work, tmp_path / "out.npz")
    assert info["numba"] and info["image"]   # the GRU kernel came from numba
    assert_same_bits(out, cold)
    info, out = _run(paths, work, tmp_path / "again.npz")
    assert info == {"numba": False, "llvmlite": False, "image": True}   # written again
    assert_same_bits(out, cold)


def test_the_loader_refuses_what_it_cannot_load(warm):
    _, cache, _ = warm
    good = (_image(cache) / "gru.gru_kernel.o").read_bytes()
    with pytest.raises(elfload.NativeError, match="not an ELF64"):
        elfload.load(b"garbage", "x", {})
    arm = bytearray(good)
    arm[18:20] = (40).to_bytes(2, "little")   # EM_ARM
    with pytest.raises(elfload.NativeError, match="unsupported machine 40"):
        elfload.load(bytes(arm), "x", {})
    with pytest.raises(elfload.NativeError, match="truncated or corrupt"):
        elfload.load(good[:100], "x", {})
    with pytest.raises(elfload.NativeError, match="undefined symbol 'numba_gil_ensure'"):
        elfload.load(good, "x", {})   # numba's helpers are the image's, not the process's


def test_the_numba_free_panel_sizes_are_the_kernels():
    """spec.linalg repeats tile.py's TILE and TAIL (tile.py imports numba): they must agree,
    or a warm start would pack panels the matrix kernel reads differently."""
    from edgernn.kernels import tile
    from edgernn.kernels.spec import linalg

    assert (linalg.TILE, linalg.TAIL) == (tile.TILE, tile.TAIL)
