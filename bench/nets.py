"""The reference nets of BENCH.md, built in PyTorch and mirrored in edgernn.

Shared by the bench scripts, including ``make_litert_models.py`` which runs in a
TensorFlow environment without edgernn (so edgernn is imported only when used).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SEEDS = {"S": 1, "M": 2, "L": 3}


class Net(nn.Module):
    """``rnn`` -> ``Linear`` [-> sigmoid] over (T, I) or one step with explicit state."""

    def __init__(self, rnn, linear, sigmoid=False):
        super().__init__()
        self.rnn, self.linear, self.sigmoid = rnn, linear, sigmoid

    def forward(self, x, state=None):
        y, state = self.rnn(x, state)
        y = self.linear(y)
        return (torch.sigmoid(y) if self.sigmoid else y), state


def build_torch(name: str, batch_first: bool = False) -> Net:
    """Net ``name`` in {"S", "M", "L"} after ``torch.manual_seed`` of BENCH.md."""
    torch.manual_seed(SEEDS[name])
    kw = {"batch_first": batch_first}
    if name == "S":
        return Net(nn.LSTM(16, 32, **kw), nn.Linear(32, 4))
    if name == "M":
        return Net(nn.GRU(42, 96, **kw), nn.Linear(96, 22), sigmoid=True)
    return Net(nn.LSTM(64, 256, num_layers=2, **kw), nn.Linear(256, 64))


def to_edgernn(net: Net):
    """The same weights as an ``edgernn.Model`` (PyTorch layout maps straight in)."""
    import edgernn

    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    kind = edgernn.LSTM if isinstance(net.rnn, nn.LSTM) else edgernn.GRU
    layers = [kind(sd[f"rnn.weight_ih_l{i}"], sd[f"rnn.weight_hh_l{i}"],
                   sd[f"rnn.bias_ih_l{i}"], sd[f"rnn.bias_hh_l{i}"])
              for i in range(net.rnn.num_layers)]
    layers.append(edgernn.Dense(sd["linear.weight"], sd["linear.bias"],
                                "sigmoid" if net.sigmoid else "linear"))
    return edgernn.Model(layers, provenance={"source": "torch", "net": "BENCH.md reference"})


def torch_reference(net: Net, xs: np.ndarray) -> np.ndarray:
    """float32[T, O]: the torch net over xs float32[T, I] from zero state."""
    with torch.no_grad():
        return net(torch.from_numpy(xs))[0].numpy()
