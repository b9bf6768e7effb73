"""converters.torch: log-softmax and L2-normalisation heads against PyTorch itself
(native ``nn.LogSoftmax``; ``F.normalize`` and hand-written norms through
``torch.onnx.export``)."""

from __future__ import annotations

import numpy as np
import pytest

import edgernn
from converters import from_torch
from tests.helpers import need_module

torch = need_module("torch", "torch (the dev extra)")
F = torch.nn.functional


def test_sequential_with_log_softmax_matches_torch():
    torch.manual_seed(20)
    nn = torch.nn
    net = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 5),
                        nn.LogSoftmax(dim=-1)).eval()
    model = from_torch(net)
    assert model.layers[-1].name == "log_softmax"
    x = np.random.default_rng(21).standard_normal((30, 3)).astype(np.float32) * 3
    with torch.no_grad():
        want = net(torch.as_tensor(x)).numpy()
    assert np.abs(model.stream().run(x) - want).max() <= 1e-5


def test_log_softmax_over_another_dim_is_refused_naming_the_module():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LogSoftmax(dim=0))
    with pytest.raises(edgernn.UnsupportedOpError, match="'1'.*dim=0"):
        from_torch(net)


class _Normed(torch.nn.Module):
    """GRU -> Linear -> an L2 normalisation of each step's output."""

    def __init__(self, kind, eps=1e-12):
        super().__init__()
        self.kind, self.eps = kind, eps
        self.rnn = torch.nn.GRU(3, 5, batch_first=True)
        self.fc = torch.nn.Linear(5, 4)

    def forward(self, x):
        y = self.fc(self.rnn(x)[0])
        if self.kind == "normalize":
            return F.normalize(y, dim=-1, eps=self.eps)
        if self.kind == "clamp_norm":
            return y / y.norm(dim=-1, keepdim=True).clamp_min(self.eps)
        if self.kind == "last_log_softmax":
            return torch.log_softmax(y[:, -1], dim=-1)
        return y / torch.sqrt(torch.clamp((y * y).sum(-1, keepdim=True), min=self.eps))


@pytest.mark.parametrize("kind,eps", [("normalize", 1e-12), ("normalize", 0.5),
                                      ("clamp_norm", 0.3), ("sumsq_sqrt", 0.2),
                                      ("last_log_softmax", None)])
def test_exported_normalisation_heads_match_torch(kind, eps, tmp_path):
    torch.manual_seed(22)
    net = _Normed(kind, eps).eval()
    x = np.random.default_rng(23).standard_normal((2, 25, 3)).astype(np.float32)
    model = from_torch(net, example_input=torch.as_tensor(x))
    assert model.provenance["path"] == "onnx"
    act = model.layers[-1].activation if isinstance(model.layers[-1], edgernn.Dense) \
        else model.layers[-1]
    if kind == "last_log_softmax":
        assert act.name == "log_softmax" and model.return_sequences is False
    else:
        assert act.name == "l2_normalize"
        floor_on_sum = kind == "sumsq_sqrt"  # clamps the sum of squares, not the norm
        assert act.alpha == pytest.approx(eps if floor_on_sum else eps * eps, rel=1e-6)
    with torch.no_grad():
        want = net(torch.as_tensor(x)).numpy()
    if eps == 0.5:  # the floor is reached on some steps, so it is really checked
        assert np.linalg.norm(want, axis=-1).min() < 0.99
    model.save(tmp_path / "m.ernn")
    loaded = edgernn.load(tmp_path / "m.ernn")
    for b in range(2):
        ys = loaded.stream().run(x[b])
        assert ys.shape == ((1, 4) if kind == "last_log_softmax" else (25, 4))
        assert np.abs(ys - want[b]).max() <= 1e-5
