"""CRN-style speech enhancers exported by torch.onnx.export, converted and streamed one
frame at a time, within 1e-5 of torch (and of ONNX Runtime) over 150 frames:

- a mask estimator: Conv2d over (time, frequency), causal in time and strided in frequency,
  BatchNorm2d, PReLU/ELU, MaxPool2d over frequency, [N, C, T, F] -> [N, T, C F], GRU,
  sigmoid mask times the input (both exporters)
- one with a skip-connected ConvTranspose2d decoder chomped in time

Each 2-D convolution is a Conv1d over frequency per time tap on a delay line of state
tensors (converters/onnx/conv2d.py); helpers from tests/test_convert_torch_streaming_models.py.
"""

import numpy as np
import pytest

from tests.helpers import need_module

torch = need_module("torch", "torch (the dev extra)")
need_module("onnx", "onnx (the convert extra)")
ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
nn, F = torch.nn, torch.nn.functional
from converters.onnx import from_onnx  # noqa: E402
from tests.test_convert_torch_streaming_models import (  # noqa: E402
    STEPS,
    export,
    export_dynamo,
    kinds,
    streams_like,
    trained_looking,
)


class CRN(nn.Module):
    def __init__(self, nf=32, h=32):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, (2, 3), stride=(1, 2), padding=(0, 1))
        self.b1, self.a1 = nn.BatchNorm2d(8), nn.PReLU(8)
        self.c2 = nn.Conv2d(8, 8, (3, 3), stride=(1, 2), padding=(0, 1), dilation=(2, 1))
        self.b2, self.a2, self.pool = nn.BatchNorm2d(8), nn.ELU(), nn.MaxPool2d((1, 2))
        self.gru, self.fc = nn.GRU(8 * 4, h, batch_first=True), nn.Linear(h, nf)

    def forward(self, x):                                   # [1, T, nf]
        z = self.a1(self.b1(self.c1(F.pad(x.unsqueeze(1), (0, 0, 1, 0)))))
        z = self.pool(self.a2(self.b2(self.c2(F.pad(z, (0, 0, 4, 0))))))
        n, c, t, f = z.shape
        y, _ = self.gru(z.permute(0, 2, 1, 3).reshape(n, t, c * f))
        return x * torch.sigmoid(self.fc(y))


class CRNDecoder(nn.Module):
    def __init__(self, nf=32, h=64, squeeze=True):
        super().__init__()
        self.squeeze = squeeze
        self.enc = nn.Conv2d(1, 4, (2, 3), stride=(1, 2), padding=(0, 1))
        self.gru, self.fc = nn.GRU(4 * 16, h, batch_first=True), nn.Linear(h, 4 * 16)
        self.dec = nn.ConvTranspose2d(8, 1, (2, 3), stride=(1, 2), padding=(0, 1),
                                      output_padding=(0, 1))

    def forward(self, x):                                   # [1, T, nf]
        e = F.elu(self.enc(F.pad(x.unsqueeze(1), (0, 0, 1, 0))))     # [1, 4, T, 16]
        n, c, t, f = e.shape
        y, _ = self.gru(e.permute(0, 2, 1, 3).reshape(n, t, c * f))
        d = self.fc(y).reshape(n, t, c, f).permute(0, 2, 1, 3)
        m = self.dec(torch.cat([d, e], 1))[:, :, :-1, :]            # [1, 1, T, nf]
        return x * torch.sigmoid(m.squeeze(1) if self.squeeze else m[:, 0])


@pytest.mark.parametrize("dynamo", [False, True])
def test_crn_with_causal_conv2d_streams_like_onnxruntime_and_torch(tmp_path, rng, dynamo):
    if dynamo:
        need_module("onnxscript", "onnxscript (the dev extra; torch's default exporter)")
    torch.manual_seed(6)
    net = trained_looking(CRN())
    path = tmp_path / "crn.onnx"
    if dynamo:
        export_dynamo(net, "tests.test_convert_torch_conv2d_models:CRN", (1, 23, 32), path,
                      "y")
    else:
        export(net, (torch.zeros(1, 20, 32),), path, (["x"], ["y"]),
               {"x": {1: "T"}, "y": {1: "T"}})
    model = from_onnx(path)
    # 2 + 3 time taps, a delay line of 1 + 4 steps, pooling over frequency
    assert kinds(model).count("Conv1d") == 5 and kinds(model).count("State") == 5
    assert "Pool1d" in kinds(model)
    xs = rng.normal(0, 1, (STEPS, 32)).astype(np.float32)
    s = model.stream()
    got = np.stack([s.step(x).copy() for x in xs])
    opts = ort.SessionOptions()  # its optimiser trusts the dynamo export's example shapes
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts)
    assert not isinstance(sess.get_inputs()[0].shape[1], int)   # the time axis is dynamic
    want = sess.run(None, {"x": xs[None]})[0][0]
    with torch.no_grad():
        ref = net(torch.from_numpy(xs)[None])[0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)    # torch: every step
    np.testing.assert_array_equal(model.stream().run(xs), got)
    s.reset()   # the delay line is state: zeros again
    np.testing.assert_array_equal(np.stack([s.step(x).copy() for x in xs[:10]]), got[:10])


@pytest.mark.parametrize("squeeze", [True, False])   # its one channel: squeeze(1) or [:, 0]
def test_crn_with_a_conv_transpose2d_decoder_streams_like_onnxruntime_and_torch(tmp_path, rng,
                                                                               squeeze):
    torch.manual_seed(7)
    net = CRNDecoder(squeeze=squeeze).eval()
    path = export(net, (torch.zeros(1, 20, 32),), tmp_path / "crnd.onnx", (["x"], ["y"]),
                  {"x": {1: "T"}, "y": {1: "T"}})
    model = from_onnx(path)
    xs = rng.normal(0, 1, (STEPS, 32)).astype(np.float32)
    streams_like(model, path, net, xs)
