"""Streaming models of the kinds people train in PyTorch, exported by torch.onnx.export
(opset 17, TorchScript exporter), converted (Python API and ``edgernn convert``) and
streamed one step at a time: within 1e-5 of ONNX Runtime and of torch over 150 steps,
state carried inside the stream (the GRU's h fed back by hand to ONNX Runtime).

- a keyword-spotting CRNN: causal Conv1d + BatchNorm1d + ReLU / PReLU, GRU, Linear + Softmax
- a TCN (locuslab style): dilated Conv1d padded both sides + Chomp1d, BatchNorm1d, PReLU,
  residual with a 1x1 downsample, taking [N, C, T] as such models do
- a GRU with LayerNorm, GELU (exported as Erf) and Hardswish, h0 -> hn in the graph
- a causal Conv-TasNet separator (samples in, [N, 1, T]): 1x1 Conv, PReLU, channel-wise
  LayerNorm (transpose, LayerNorm, transpose), depthwise dilated causal Conv1d, residual and
  skip paths, sigmoid mask
- a per-frame model (one frame per call, h0 -> hn): Conv1d over frequency + BatchNorm +
  ReLU, MaxPool1d, GroupNorm, Conv1d + InstanceNorm1d + GELU(tanh), AvgPool1d and
  AdaptiveAvgPool1d(1), a GRU, sign/floor/round/ceil (both exporters)

2-D convolutions (CRN-style models): tests/test_convert_torch_conv2d_models.py.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgernn.cli import main
from tests.helpers import need_module

torch = need_module("torch", "torch (the dev extra)")
need_module("onnx", "onnx (the convert extra)")
ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
nn, F = torch.nn, torch.nn.functional
import edgernn  # noqa: E402
from converters.onnx import from_onnx, run_like_onnx  # noqa: E402

STEPS = 150


class KWSCRNN(nn.Module):
    def __init__(self, n_mels=40, ch=32, hidden=48, classes=12):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv1d(n_mels, ch, 3, bias=False), nn.BatchNorm1d(ch)
        self.conv2, self.bn2 = nn.Conv1d(ch, ch, 3, dilation=2), nn.BatchNorm1d(ch)
        self.act2 = nn.PReLU(ch)
        self.gru = nn.GRU(ch, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):                                   # [1, T, n_mels]
        x = x.permute(0, 2, 1)
        x = F.relu(self.bn1(self.conv1(F.pad(x, (2, 0)))))
        x = self.act2(self.bn2(self.conv2(F.pad(x, (4, 0)))))
        y, _ = self.gru(x.permute(0, 2, 1))
        return torch.softmax(self.fc(y), dim=-1)


class Chomp1d(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        return x[:, :, :-self.n].contiguous()


class TemporalBlock(nn.Module):
    def __init__(self, cin, cout, k, d):
        super().__init__()
        p = (k - 1) * d
        self.net = nn.Sequential(
            nn.Conv1d(cin, cout, k, padding=p, dilation=d), Chomp1d(p), nn.BatchNorm1d(cout),
            nn.PReLU(), nn.Conv1d(cout, cout, k, padding=p, dilation=d), Chomp1d(p),
            nn.BatchNorm1d(cout), nn.PReLU())
        self.down = nn.Conv1d(cin, cout, 1) if cin != cout else None
        self.out = nn.PReLU(cout)

    def forward(self, x):
        return self.out(self.net(x) + (x if self.down is None else self.down(x)))


class TCN(nn.Module):
    def __init__(self, cin=16, ch=24, out=4):
        super().__init__()
        self.blocks = nn.Sequential(TemporalBlock(cin, ch, 3, 1), TemporalBlock(ch, ch, 3, 2),
                                    TemporalBlock(ch, ch, 3, 4))
        self.head = nn.Conv1d(ch, out, 1)

    def forward(self, x):                                   # [1, C, T]
        return torch.sigmoid(self.head(self.blocks(x)))


class GRUNormGELU(nn.Module):
    def __init__(self, n_in=24, h=32, out=10):
        super().__init__()
        self.inp, self.ln1 = nn.Linear(n_in, h), nn.LayerNorm(h)
        self.gru, self.ln2 = nn.GRU(h, h, batch_first=True), nn.LayerNorm(h)
        self.fc1, self.act, self.fc2 = nn.Linear(h, h), nn.Hardswish(), nn.Linear(h, out)

    def forward(self, x, h0):                               # [1, T, n_in], [1, 1, h]
        y, hn = self.gru(F.gelu(self.ln1(self.inp(x))), h0)
        return self.fc2(self.act(self.fc1(self.ln2(y)))), hn


class ChannelNorm(nn.Module):
    """Conv-TasNet's cLN: LayerNorm over the channels of each time step."""

    def __init__(self, c):
        super().__init__()
        self.ln = nn.LayerNorm(c)

    def forward(self, x):
        return self.ln(x.transpose(1, 2)).transpose(1, 2)


class TasBlock(nn.Module):
    def __init__(self, c=16, h=32, k=3, d=1):
        super().__init__()
        self.pre, self.a1, self.n1 = nn.Conv1d(c, h, 1), nn.PReLU(), ChannelNorm(h)
        self.dw, self.pad = nn.Conv1d(h, h, k, dilation=d, groups=h), (k - 1) * d
        self.a2, self.n2 = nn.PReLU(), ChannelNorm(h)
        self.res, self.skip = nn.Conv1d(h, c, 1), nn.Conv1d(h, c, 1)

    def forward(self, x):
        y = self.n1(self.a1(self.pre(x)))
        y = self.n2(self.a2(self.dw(F.pad(y, (self.pad, 0)))))
        return x + self.res(y), self.skip(y)


class CausalTasNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.mask = nn.Conv1d(1, 16, 1), nn.Conv1d(16, 16, 1)
        self.blocks = nn.ModuleList([TasBlock(d=1), TasBlock(d=2), TasBlock(d=4)])

    def forward(self, x):                                   # [1, 1, T] samples
        w = F.relu(self.enc(x))
        y, skip = w, 0
        for b in self.blocks:
            y, s = b(y)
            skip = skip + s
        return w * torch.sigmoid(self.mask(skip))


class FrameConvGRU(nn.Module):
    def __init__(self, nf=32, ch=8, h=24):
        super().__init__()
        self.conv, self.bn = nn.Conv1d(1, ch, 5, padding=2), nn.BatchNorm1d(ch)
        self.pool, self.gn = nn.MaxPool1d(2), nn.GroupNorm(2, ch)
        self.conv2 = nn.Conv1d(ch, ch, 3, padding=1)
        self.inorm = nn.InstanceNorm1d(ch, affine=True)
        self.apool, self.gpool = nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(1)
        self.gru, self.fc = nn.GRU(ch * nf // 4 + ch, h, batch_first=True), nn.Linear(h, 3)

    def forward(self, x, h0):                               # [1, nf], [1, 1, h]
        z = self.gn(self.pool(F.relu(self.bn(self.conv(x.unsqueeze(1))))))
        z = F.gelu(self.inorm(self.conv2(z)), approximate="tanh")
        z = torch.cat([self.apool(z).flatten(1), self.gpool(z).flatten(1)], 1)
        y, hn = self.gru(z.unsqueeze(1), h0)
        y = y[:, 0]
        q = torch.sign(y) * torch.floor(y * 4) + torch.round(y * 3) + torch.ceil(y)
        return self.fc(q), hn


def trained_looking(net):
    """Non-trivial BatchNorm statistics and PReLU slopes (fresh ones are 0/1 and 0.25)."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
        if isinstance(m, (nn.GroupNorm, nn.InstanceNorm1d)):
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
        if isinstance(m, nn.PReLU):
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) * 0.5)
    return net.eval()


def export(net, args, path, names, dynamic):
    with torch.no_grad():
        torch.onnx.export(net, args, str(path), input_names=names[0], output_names=names[1],
                          opset_version=17, dynamo=False, dynamic_axes=dynamic)
    return path


def export_dynamo(net, cls: str, example: tuple, path, out_name: str) -> None:
    """``net`` (an instance of ``cls``, "module:Class" with no constructor arguments)
    exported by torch's default (dynamo) exporter with input ``x`` of ``example``'s
    shape, its axis 1 (time) dynamic, in a fresh process: after one dynamo export of a
    GRU, torch 2.13 keeps the next one's time length static in the same process."""
    weights = Path(path).with_suffix(".pt")
    torch.save(net.state_dict(), weights)
    module, name = cls.split(":")
    code = (f"import sys, torch; sys.path.insert(0, sys.argv[1]); "
            f"from {module} import {name}; "
            f"net = {name}().eval(); net.load_state_dict(torch.load(sys.argv[2])); "
            f"torch.onnx.export(net, (torch.zeros(*{tuple(example)!r}),), sys.argv[3], "
            f"input_names=['x'], output_names=[{out_name!r}], dynamo=True, "
            f"dynamic_shapes=({{1: torch.export.Dim('T', min=8)}},))")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code, str(root), str(weights), str(path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]


def kinds(model):
    return [type(op).__name__ for op in model.layers]


def streams_like(model, path, net, xs, channels_first=False, ort_options=None):
    """``model`` stepped over ``xs`` [T, F] equals ONNX Runtime running ``path`` and torch
    running ``net`` on the whole sequence (within 1e-5), and its ``run`` (bit for bit);
    ``channels_first``: the exports take and give ``[N, C, T]``. Returns the steps."""
    s = model.stream()
    got = np.stack([s.step(x).copy() for x in xs])
    feed = xs.T[None] if channels_first else xs[None]
    want = ort.InferenceSession(str(path), ort_options).run(None, {"x": feed})[0][0]
    with torch.no_grad():
        ref = net(torch.from_numpy(feed.copy()))[0].numpy()
    if channels_first:
        want, ref = want.T, ref.T
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(model.stream().run(xs), got)
    return got


def test_kws_crnn_streams_like_onnxruntime_and_torch(tmp_path, rng):
    torch.manual_seed(0)
    net = trained_looking(KWSCRNN())
    path = export(net, (torch.zeros(1, 20, 40),), tmp_path / "kws.onnx", (["x"], ["p"]),
                  {"x": {1: "T"}, "p": {1: "T"}})
    model = from_onnx(path)
    assert kinds(model).count("CausalConv1d") == 2 and "GRU" in kinds(model)
    xs = rng.normal(0, 1, (STEPS, 40)).astype(np.float32)
    streams_like(model, path, net, xs)


def test_tcn_with_chomp_on_channels_first_input_streams_like_onnxruntime_and_torch(
        tmp_path, rng):
    torch.manual_seed(1)
    net = trained_looking(TCN())
    path = export(net, (torch.zeros(1, 16, 30),), tmp_path / "tcn.onnx", (["x"], ["y"]),
                  {"x": {2: "T"}, "y": {2: "T"}})
    out = tmp_path / "tcn.ernn"
    assert main(["convert", str(path), "-o", str(out)]) == 0
    model = edgernn.load(out)
    # six causal convolutions, each BatchNorm folded into the one before it, + 1 head, 1 skip
    assert kinds(model).count("CausalConv1d") == 8 and "Mul" in kinds(model)
    xs = rng.normal(0, 1, (STEPS, 16)).astype(np.float32)
    got = streams_like(model, path, net, xs, channels_first=True)
    # ONNX Runtime's feed and output layout, [N, C, T]
    np.testing.assert_array_equal(run_like_onnx(model, {"x": xs.T[None]})["y"][0].T, got)


def test_causal_conv_tasnet_streams_sample_by_sample_like_onnxruntime(tmp_path, rng):
    torch.manual_seed(5)
    net = trained_looking(CausalTasNet())
    path = export(net, (torch.zeros(1, 1, 30),), tmp_path / "tasnet.onnx", (["x"], ["y"]),
                  {"x": {2: "T"}, "y": {2: "T"}})
    model = from_onnx(path)
    assert kinds(model).count("LayerNorm") == 6 and model.input_size == 1
    xs = rng.normal(0, 1, (STEPS, 1)).astype(np.float32)
    streams_like(model, path, net, xs, channels_first=True)


def test_gru_with_layernorm_gelu_hardswish_carries_its_state_like_onnxruntime(tmp_path, rng):
    torch.manual_seed(2)
    net = GRUNormGELU().eval()
    path = export(net, (torch.zeros(1, 5, 24), torch.zeros(1, 1, 32)), tmp_path / "g.onnx",
                  (["x", "h0"], ["y", "hn"]), {"x": {1: "T"}, "y": {1: "T"}})
    model = from_onnx(path)
    assert {"LayerNorm", "Unary", "GRU"} <= set(kinds(model))
    xs = rng.normal(0, 1, (STEPS, 24)).astype(np.float32)
    s = model.stream()
    got = np.stack([s.step(x).copy() for x in xs])
    sess, h = ort.InferenceSession(str(path)), np.zeros((1, 1, 32), np.float32)
    want = []
    for x in xs:                                        # the state fed back by hand
        y, h = sess.run(None, {"x": x[None, None], "h0": h})
        want.append(y[0, 0])
    with torch.no_grad():
        ref, _ = net(torch.from_numpy(xs)[None], torch.zeros(1, 1, 32))
    np.testing.assert_allclose(got[:, :10], np.stack(want), atol=1e-5, rtol=0)
    np.testing.assert_allclose(got[:, :10], ref[0].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(model.stream().run(xs), got)


def test_kws_crnn_from_the_default_dynamo_exporter_streams_like_onnxruntime(tmp_path, rng):
    """torch.onnx.export's default exporter (opset 18+, onnxscript) with a dynamic time
    axis: the GRU's output is reshaped by a target computed from Shape nodes."""
    need_module("onnxscript", "onnxscript (the dev extra; torch's default exporter)")
    torch.manual_seed(3)
    net = trained_looking(KWSCRNN())
    path = tmp_path / "kws_dynamo.onnx"
    export_dynamo(net, "tests.test_convert_torch_streaming_models:KWSCRNN", (1, 20, 40), path,
                  "p")
    import onnx

    assert {"Shape", "Reshape", "GRU"} <= {n.op_type for n in onnx.load(str(path)).graph.node}
    model = from_onnx(path)
    xs = rng.normal(0, 1, (STEPS, 40)).astype(np.float32)
    opts = ort.SessionOptions()  # its optimiser trusts the export's example-sized shapes
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    streams_like(model, path, net, xs, ort_options=opts)


@pytest.mark.parametrize("dynamo", [False, True])
def test_per_frame_conv_pool_norm_gru_model_steps_like_onnxruntime(tmp_path, rng, dynamo):
    if dynamo:
        need_module("onnxscript", "onnxscript (the dev extra; torch's default exporter)")
    torch.manual_seed(4)
    net = trained_looking(FrameConvGRU())
    path = tmp_path / "frame.onnx"
    args = (torch.zeros(1, 32), torch.zeros(1, 1, 24))
    with torch.no_grad():
        if dynamo:
            torch.onnx.export(net, args, str(path), input_names=["x", "h0"],
                              output_names=["y", "hn"], dynamo=True)
        else:
            export(net, args, path, (["x", "h0"], ["y", "hn"]), None)
    model = from_onnx(path)
    assert {"Pool1d", "LayerNorm", "Reduce", "Unary", "GRU"} <= set(kinds(model))
    xs = rng.normal(0, 1, (STEPS, 32)).astype(np.float32)
    s = model.stream()
    got = np.stack([s.step(x).copy() for x in xs])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess, h, want, ref = ort.InferenceSession(str(path), opts), np.zeros((1, 1, 24),
                                                                         np.float32), [], []
    th, threads = torch.zeros(1, 1, 24), torch.get_num_threads()
    torch.set_num_threads(1)   # tiny per-frame calls: more threads only contend
    try:
        for x in xs:                                  # the state fed back by hand
            y, h = sess.run(None, {"x": x[None], "h0": h})
            want.append(y[0])
            with torch.no_grad():
                ty, th = net(torch.from_numpy(x)[None], th)
            ref.append(ty[0].numpy())
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(got, np.stack(want), atol=1e-5, rtol=0)
    np.testing.assert_allclose(got, np.stack(ref), atol=1e-5, rtol=0)
