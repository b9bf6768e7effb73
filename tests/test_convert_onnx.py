"""converters.onnx: ONNX backend node tests, differential tests against ONNX
Runtime on random graphs, streaming exports and rejected constructs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from converters.onnx import from_onnx, run_like_onnx

SHARED = Path(__file__).resolve().parents[2] / "shared"
CONFORMANCE = SHARED / "conformance" / "onnx-node"


def _conformance_cases():
    if not CONFORMANCE.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"conformance data missing under CI: {CONFORMANCE}")
        return []
    return sorted(p.name for p in CONFORMANCE.iterdir() if (p / "model.onnx").exists())


def test_conformance_data_present_or_skipped_locally():
    cases = _conformance_cases()
    if not cases:
        pytest.skip(f"no conformance data at {CONFORMANCE}")
    assert len(cases) == 18


def _load_case(name):
    d = CONFORMANCE / name
    m = onnx.load(d / "model.onnx")
    g = m.graph

    def arr(kind, i):
        return numpy_helper.to_array(onnx.load_tensor(d / "test_data_set_0" / f"{kind}_{i}.pb"))

    ins = {vi.name: arr("input", i) for i, vi in enumerate(g.input)}
    outs = {vi.name: arr("output", i) for i, vi in enumerate(g.output)}
    return m, ins, outs


@pytest.mark.parametrize("case", _conformance_cases())
def test_onnx_backend_node_case_matches_expected_outputs(case):
    m, ins, outs = _load_case(case)
    node = m.graph.node[0]
    # W, R, B, P are graph inputs in the backend tests: bind them as constants
    consts = {node.input[i]: ins[node.input[i]] for i in (1, 2, 3, 7)
              if i < len(node.input) and node.input[i]}
    model = from_onnx(m, constants=consts)
    got = run_like_onnx(model, ins, math="exact")
    fast = run_like_onnx(model, ins)
    assert set(got) == set(outs)
    for name, want in outs.items():
        assert got[name].shape == want.shape, name
        np.testing.assert_allclose(got[name], want, rtol=1e-3, atol=1e-7, err_msg=name)
        assert np.abs(got[name] - want).max() <= 1e-5, name
        assert np.abs(fast[name] - want).max() <= 1e-5, name
