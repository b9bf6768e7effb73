"""RNNoise 0.2's architecture (xiph/rnnoise, written here from its published description
with random weights): conv1 65->128 k3 tanh and conv2 128->384 k3 tanh, each causal (the
C code keeps the last two frames of each as state), three GRUs of 384, the concatenation
of the convolution and the GRUs, and sigmoid gain (32) and VAD (1) heads. Exported from
torch as a sequence model, converted, it streams within 1e-5 of torch over 1000 frames,
step == run."""

import numpy as np

from tests.helpers import need_module

torch = need_module("torch", "torch (the dev extra)")
nn, F = torch.nn, torch.nn.functional


class RNNoise02(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(65, 128, 3)
        self.conv2 = nn.Conv1d(128, 384, 3)
        self.gru1, self.gru2, self.gru3 = (nn.GRU(384, 384, batch_first=True) for _ in range(3))
        self.gains, self.vad = nn.Linear(4 * 384, 32), nn.Linear(4 * 384, 1)

    def forward(self, features):                       # [1, T, 65]
        x = F.pad(features.permute(0, 2, 1), (2, 0))   # two zero frames first: causal
        x = F.pad(torch.tanh(self.conv1(x)), (2, 0))
        c = torch.tanh(self.conv2(x)).permute(0, 2, 1)
        g1, _ = self.gru1(c)
        g2, _ = self.gru2(g1)
        g3, _ = self.gru3(g2)
        cat = torch.cat([c, g1, g2, g3], dim=-1)
        return torch.sigmoid(self.gains(cat)), torch.sigmoid(self.vad(cat))


def test_rnnoise_0_2_from_torch_through_onnx_streams_like_torch(tmp_path, rng):
    need_module("onnx", "onnx (the convert extra)")
    from converters.onnx import from_onnx

    torch.manual_seed(0)
    net = RNNoise02().eval()
    path = tmp_path / "rnnoise02.onnx"
    with torch.no_grad():
        torch.onnx.export(net, torch.zeros(1, 20, 65), str(path), input_names=["features"],
                          output_names=["gains", "vad"], opset_version=17, dynamo=False,
                          dynamic_axes={"features": {1: "T"}, "gains": {1: "T"},
                                        "vad": {1: "T"}})
    model = from_onnx(str(path))
    kinds = [type(op).__name__ for op in model.layers]
    assert kinds.count("CausalConv1d") == 2 and kinds.count("GRU") == 3
    xs = rng.normal(0, 1, (1000, 65)).astype(np.float32)
    with torch.no_grad():
        g, v = net(torch.from_numpy(xs)[None])
    want = np.concatenate([g[0].numpy(), v[0].numpy()], axis=1)
    ys = model.stream(math="exact").run(xs)
    np.testing.assert_allclose(ys, want, atol=1e-5, rtol=0)
    s = model.stream(math="exact")
    np.testing.assert_array_equal(np.stack([s.step(x).copy() for x in xs]), ys)
