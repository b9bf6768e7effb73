"""converters.torch through ONNX for modules whose forward() is a graph: an
RNNoise-v0.1-shaped denoiser (concatenations feeding GRUs, two heads), residual
adds, several inputs and tuple returns -- against PyTorch itself."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest

import edgernn
from converters import from_torch
from converters.onnx import from_onnx, run_like_onnx
from tests.helpers import need_module

from .naive_onnx import ort_run

torch = need_module("torch", "torch (the dev extra)")


class RNNoise(torch.nn.Module):
    """RNNoise v0.1's shape: Dense 42->24 tanh; GRU 24; GRU over concat(input, dense,
    gru1) (hidden 48); GRU over concat(input, gru1, gru2) (hidden 96); a gains head
    (22, sigmoid) from gru3 and a VAD head (1, sigmoid) from gru1."""

    def __init__(self):
        super().__init__()
        self.dense = torch.nn.Linear(42, 24)
        self.gru1 = torch.nn.GRU(24, 24, batch_first=True)
        self.gru2 = torch.nn.GRU(42 + 24 + 24, 48, batch_first=True)
        self.gru3 = torch.nn.GRU(42 + 24 + 48, 96, batch_first=True)
        self.gains = torch.nn.Linear(96, 22)
        self.vad = torch.nn.Linear(24, 1)

    def forward(self, x):
        d = torch.tanh(self.dense(x))
        g1, _ = self.gru1(d)
        g2, _ = self.gru2(torch.cat([x, d, g1], dim=-1))
        g3, _ = self.gru3(torch.cat([x, g1, g2], dim=-1))
        return torch.sigmoid(self.gains(g3)), torch.sigmoid(self.vad(g1))


def _rnnoise():
    torch.manual_seed(0)
    return RNNoise().eval()


def _export(module, args, names, outs, dynamic=None) -> onnx.ModelProto:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, f, input_names=names, output_names=outs,
                          dynamic_axes=dynamic, dynamo=False)
    return onnx.load_from_string(f.getvalue())


@pytest.fixture(scope="module")
def rnnoise_model(tmp_path_factory):
    """The denoiser exported to an ONNX file, converted, saved and loaded."""
    net = _rnnoise()
    path = tmp_path_factory.mktemp("rnnoise") / "rnnoise.onnx"
    onnx.save(_export(net, (torch.zeros(1, 5, 42),), ["features"], ["gains", "vad"],
                      {"features": {0: "b", 1: "t"}}), path)
    model = from_onnx(path)
    model.save(path.with_suffix(".ernn"))
    return net, path, edgernn.load(path.with_suffix(".ernn"))


def _frames(t, seed=1, b=1):
    return (np.random.default_rng(seed).standard_normal((b, t, 42)) * 0.8).astype(np.float32)


def test_rnnoise_graph_converts_to_named_heads_and_shared_concat_inputs(rnnoise_model):
    _, _, model = rnnoise_model
    kinds = [type(op).__name__ for op in model.layers]
    assert kinds == ["Dense", "GRU", "Concat", "GRU", "Concat", "GRU", "Dense", "Dense"]
    assert model.inputs == (("features", 42),)
    assert model.outputs == (("gains", 22), ("vad", 1))
    assert model.layers[0].activation.name == "tanh"
    assert [op.activation.name for op in model.layers[-2:]] == ["sigmoid", "sigmoid"]
    assert model.stream().get_state().names == ("1.h", "3.h", "5.h")
    assert model.provenance["source"] == "onnx"


def test_rnnoise_saved_and_loaded_matches_torch_over_1000_steps(rnnoise_model):
    net, _, model = rnnoise_model
    x = _frames(1000)
    with torch.no_grad():
        gains, vad = (t[0].numpy() for t in net(torch.from_numpy(x)))
    ys = model.stream().run(x[0])
    parts = model.split(ys)
    assert np.abs(parts["gains"] - gains).max() <= 1e-5
    assert np.abs(parts["vad"] - vad).max() <= 1e-5


def test_rnnoise_step_equals_run_bit_for_bit(rnnoise_model):
    _, _, model = rnnoise_model
    x = _frames(300, seed=2)[0]
    s = model.stream()
    out = np.empty(model.output_size, np.float32)
    steps = np.empty((len(x), model.output_size), np.float32)
    for t, xt in enumerate(x):
        s.step(xt, out=out)
        steps[t] = out
    np.testing.assert_array_equal(steps, model.stream().run(x))


def test_rnnoise_batch_of_4_streams_equals_4_single_streams_bit_for_bit(rnnoise_model):
    _, _, model = rnnoise_model
    x = _frames(200, seed=3, b=4)
    batch = model.streams(4)
    got = np.stack([batch.step(np.ascontiguousarray(x[:, t])) for t in range(x.shape[1])],
                   axis=1)
    for i in range(4):
        np.testing.assert_array_equal(got[i], model.stream().run(x[i]))


def test_rnnoise_onnx_file_answers_like_onnxruntime_per_batch_row(rnnoise_model):
    _, path, model = rnnoise_model
    x = _frames(60, seed=4, b=3)
    want = ort_run(onnx.load(path), {"features": x})
    got = run_like_onnx(model, {"features": x})
    for name in ("gains", "vad"):
        assert got[name].shape == want[name].shape
        assert np.abs(got[name] - want[name]).max() <= 1e-5


def test_rnnoise_from_torch_names_the_outputs():
    net = _rnnoise()
    model = from_torch(net, example_input=torch.from_numpy(_frames(20)),
                       output_names=["gains", "vad"])
    assert model.provenance["path"] == "onnx"
    assert model.outputs == (("gains", 22), ("vad", 1))
    x = _frames(100, seed=5)
    with torch.no_grad():
        gains, vad = (t[0].numpy() for t in net(torch.from_numpy(x)))
    parts = model.split(model.stream().run(x[0]))
    assert np.abs(parts["gains"] - gains).max() <= 1e-5
    assert np.abs(parts["vad"] - vad).max() <= 1e-5


class TwoInputs(torch.nn.Module):
    """Features and a per-frame condition; returns a masked spectrum, the mask and
    the final GRU state."""

    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(6 + 2, 8)
        self.mask = torch.nn.Linear(8, 6)

    def forward(self, spec, cond):
        y, h = self.gru(torch.cat([spec, cond], dim=-1))
        m = torch.sigmoid(self.mask(y))
        return spec * m - 0.5 * spec[..., :6], m, h


def test_module_with_two_inputs_and_a_tuple_return_matches_torch():
    torch.manual_seed(7)
    net = TwoInputs().eval()
    spec, cond = torch.randn(40, 1, 6), torch.randn(40, 1, 2)
    model = from_torch(net, example_input=(spec, cond))
    assert model.inputs == (("x0", 6), ("x1", 2))
    assert [n for n, _ in model.outputs] == ["y0", "y1"]  # y2, the GRU state, is state
    with torch.no_grad():
        want = [t.numpy() for t in net(spec, cond)]
    xs = np.concatenate([spec[:, 0].numpy(), cond[:, 0].numpy()], axis=-1)
    s = model.stream()
    parts = model.split(s.run(xs))
    assert np.abs(parts["y0"] - want[0][:, 0]).max() <= 1e-5
    assert np.abs(parts["y1"] - want[1][:, 0]).max() <= 1e-5
    assert np.abs(s.get_state().arrays[0] - want[2][0, 0]).max() <= 1e-5


def test_module_returning_its_input_too_gives_a_view_of_the_input():
    class PassThrough(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(3, 3)

        def forward(self, x):
            return self.gru(x)[0], x

    torch.manual_seed(8)
    net = PassThrough().eval()
    x = torch.randn(25, 1, 3)
    model = from_torch(net, example_input=x, output_names=["h", "x_again"])
    assert model.outputs == (("h", 3), ("x_again", 3))
    parts = model.split(model.stream().run(x[:, 0].numpy()))
    np.testing.assert_array_equal(parts["x_again"], x[:, 0].numpy())
    with torch.no_grad():
        assert np.abs(parts["h"] - net(x)[0][:, 0].numpy()).max() <= 1e-5
