"""Make the demo's bundled files (run once; the outputs are committed).

- ``edgernn/data/demo_m.ernn``: reference net M of BENCH.md -- ``nn.GRU(42, 96)``
  -> ``nn.Linear(96, 22)`` -> sigmoid, RNNoise-v0.1-sized -- with PyTorch's
  initial weights after ``torch.manual_seed(2)`` (untrained: the demo shows the
  runtime, not a denoiser; the trained denoiser arrives with the audio issue).
- ``edgernn/data/demo_features.npy``: float32[1000, 42] log band energies of a
  synthetic 10 ms-frame signal (a chirp in pink-ish noise).
"""

from pathlib import Path

import numpy as np
import torch

import edgernn

OUT = Path(__file__).resolve().parents[1] / "edgernn" / "data"


def main():
    torch.manual_seed(2)
    gru, lin = torch.nn.GRU(42, 96), torch.nn.Linear(96, 22)
    g = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    model = edgernn.Model(
        [edgernn.GRU(g["weight_ih_l0"], g["weight_hh_l0"], g["bias_ih_l0"], g["bias_hh_l0"]),
         edgernn.Dense(lin.weight.detach().numpy(), lin.bias.detach().numpy(), "sigmoid")],
        provenance={"source": "torch", "note": "BENCH.md net M, torch.manual_seed(2), untrained",
                    "script": "bench/make_demo_model.py"})
    model.save(OUT / "demo_m.ernn")
    rng = np.random.default_rng(2)
    sr, hop, n = 16000, 160, 1000
    t = np.arange(n * hop) / sr
    sig = np.sin(2 * np.pi * (200 + 1500 * t / t[-1]) * t) + 0.3 * rng.standard_normal(t.size)
    frames = sig.reshape(n, hop) * np.hanning(hop)
    spec = np.abs(np.fft.rfft(frames, 2 * hop)) ** 2
    edges = np.linspace(1, spec.shape[1] - 1, 43).astype(int)
    bands = np.stack([spec[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:], strict=True)],
                     axis=1)
    feats = np.log10(bands[:, :42] + 1e-6).astype(np.float32)
    assert feats.shape == (n, 42), feats.shape
    np.save(OUT / "demo_features.npy", feats)
    print("wrote", OUT / "demo_m.ernn", OUT / "demo_features.npy")


if __name__ == "__main__":
    main()
