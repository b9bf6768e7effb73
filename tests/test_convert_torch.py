"""converters.torch: every supported module type against PyTorch itself; graphs
exported by ``torch.onnx.export`` (streaming forms included) against ONNX Runtime."""

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


def _t(a):
    return torch.as_tensor(np.asarray(a))


def _max_err(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias", [
    (1, False, False, True), (2, False, True, False), (2, True, True, True),
])
def test_recurrent_module_matches_torch(kind, num_layers, bidirectional, batch_first, bias):
    torch.manual_seed(0)
    kw = {"nonlinearity": "relu"} if kind == "RNN" and num_layers == 2 else {}
    mod = getattr(torch.nn, kind)(5, 6, num_layers=num_layers, bidirectional=bidirectional,
                                  batch_first=batch_first, bias=bias, **kw).eval()
    model = from_torch(mod)
    assert model.streamable == (not bidirectional)
    x = np.random.default_rng(1).standard_normal((2, 60, 5)).astype(np.float32) * 0.5
    with torch.no_grad():
        want = mod(_t(x if batch_first else x.swapaxes(0, 1)))[0].numpy()
    want = want if batch_first else want.swapaxes(0, 1)
    for b in range(2):
        assert _max_err(model.stream().run(x[b]), want[b]) <= 1e-5


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cell_module_steps_like_torch_fed_its_state(kind):
    torch.manual_seed(1)
    cell = getattr(torch.nn, kind)(4, 5).eval()
    model = from_torch(cell)
    stream = model.stream()
    state = None
    rng = np.random.default_rng(2)
    for _ in range(200):
        x = rng.standard_normal((1, 4)).astype(np.float32)
        with torch.no_grad():
            state = cell(_t(x), state)
        h = state[0] if isinstance(state, tuple) else state
        assert _max_err(stream.step(x[0]), h.numpy()[0]) <= 1e-5
    if kind == "LSTMCell":
        assert _max_err(stream.get_state().arrays[1], state[1].numpy()[0]) <= 1e-5


def test_sequential_of_linear_and_every_activation_matches_torch():
    torch.manual_seed(2)
    nn = torch.nn
    seq = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(),
                        nn.LeakyReLU(0.2), nn.ELU(0.7), nn.Hardsigmoid(), nn.Linear(8, 8),
                        nn.Softsign(), nn.Softplus(), nn.Dropout(0.5), nn.Identity(),
                        nn.Sigmoid(), nn.Linear(8, 3), nn.Softmax(dim=-1)).eval()
    model = from_torch(seq)
    x = np.random.default_rng(3).standard_normal((40, 6)).astype(np.float32) * 2
    with torch.no_grad():
        want = seq(_t(x)).numpy()
    assert _max_err(model.stream().run(x), want) <= 1e-5


class EmbedLSTM(torch.nn.Module):
    """A custom module whose children form a chain."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(12, 4)
        self.rnn = torch.nn.LSTM(4, 6, batch_first=True)
        self.fc = torch.nn.Linear(6, 12)

    def forward(self, tok):
        y, _ = self.rnn(self.emb(tok))
        return self.fc(y)


def test_custom_chain_module_without_example_warns_and_matches_torch(tmp_path):
    torch.manual_seed(3)
    mod = EmbedLSTM().eval()
    with pytest.warns(UserWarning, match="children in order"):
        model = from_torch(mod)
    assert [type(la).__name__ for la in model.layers] == ["Embedding", "LSTM", "Dense"]
    tok = np.random.default_rng(4).integers(0, 12, (1, 80))
    with torch.no_grad():
        want = mod(_t(tok)).numpy()[0]
    model.save(tmp_path / "m.ernn")
    loaded = edgernn.load(tmp_path / "m.ernn")
    s = loaded.stream()
    ys = np.stack([s.step(int(t)) for t in tok[0]])
    assert _max_err(ys, want) <= 1e-5
    assert loaded.provenance["source"] == "torch"


class LastStepHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(3, 5, batch_first=True, num_layers=2)
        self.fc = torch.nn.Linear(5, 2)

    def forward(self, x):
        y, _ = self.rnn(x)
        return torch.relu(self.fc(y[:, -1]))


def test_custom_forward_with_example_input_goes_through_onnx_and_matches_torch(tmp_path):
    torch.manual_seed(4)
    mod = LastStepHead().eval()
    x = np.random.default_rng(5).standard_normal((3, 30, 3)).astype(np.float32)
    model = from_torch(mod, example_input=_t(x))
    assert model.provenance["path"] == "onnx"
    assert model.return_sequences is False
    with torch.no_grad():
        want = mod(_t(x)).numpy()
    model.save(tmp_path / "h.ernn")
    loaded = edgernn.load(tmp_path / "h.ernn")
    assert loaded.return_sequences is False
    for b in range(3):
        ys = loaded.stream().run(x[b])
        assert ys.shape == (1, 2)
        assert _max_err(ys[0], want[b]) <= 1e-5


def test_recurrent_dropout_is_ignored_with_a_warning():
    mod = torch.nn.GRU(3, 4, num_layers=2, dropout=0.3)
    with pytest.warns(UserWarning, match="dropout=0.3"):
        model = from_torch(mod)
    assert len(model.layers) == 2


def test_lstm_projection_is_refused_naming_the_module():
    net = torch.nn.Sequential(torch.nn.LSTM(3, 8, proj_size=4))
    with pytest.raises(edgernn.UnsupportedOpError, match="'0'.*proj_size=4"):
        from_torch(net)


def test_unsupported_module_without_example_input_is_a_clear_error():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GELU())
    with pytest.raises(edgernn.UnsupportedOpError, match="'1' \\(GELU\\).*example_input"):
        from_torch(net)


class Residual(torch.nn.Module):
    def __init__(self, act=None):
        super().__init__()
        self.rnn = torch.nn.GRU(3, 3)
        self.fc = torch.nn.Linear(3, 2)
        self.act = act

    def forward(self, x):
        y, _ = self.rnn(x)
        y = y + x
        return self.fc(y if self.act is None else self.act(y))


def test_residual_module_converts_through_onnx_and_matches_torch():
    torch.manual_seed(3)
    net = Residual().eval()
    x = torch.randn(30, 1, 3)
    model = from_torch(net, example_input=x)
    assert model.provenance["path"] == "onnx"
    assert [type(op).__name__ for op in model.layers] == ["GRU", "Add", "Dense"]
    with torch.no_grad():
        want = net(x)[:, 0].numpy()
    assert _max_err(model.stream().run(x[:, 0].numpy()), want) <= 1e-5


def test_non_chain_module_with_example_input_is_refused_naming_the_onnx_node():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(edgernn.UnsupportedOpError, match="Cos node"):
            from_torch(Residual(torch.cos), example_input=torch.randn(7, 1, 3))


def test_torchscript_module_converts_through_onnx():
    torch.manual_seed(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mod = torch.jit.script(LastStepHead().eval())
    x = torch.randn(2, 9, 3)
    model = from_torch(mod, example_input=x)
    with torch.no_grad():
        want = mod(x).numpy()
    for b in range(2):
        assert _max_err(model.stream().run(x[b].numpy())[-1], want[b]) <= 1e-5
    with pytest.raises(edgernn.UnsupportedOpError, match="example_input"):
        from_torch(mod)


def test_cli_convert_pickled_and_torchscript_modules(tmp_path, capsys):
    from edgernn.cli import main

    torch.manual_seed(6)
    mod = LastStepHead().eval()
    torch.save(mod, tmp_path / "net.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(mod), tmp_path / "net_ts.pt")
    x = torch.randn(1, 25, 3)
    with torch.no_grad():
        want = mod(x).numpy()[0]
    for name in ("net.pt", "net_ts.pt"):
        assert main(["convert", str(tmp_path / name), "--example-shape", "2,10,3",
                     "-o", str(tmp_path / f"{name}.ernn")]) == 0
        loaded = edgernn.load(tmp_path / f"{name}.ernn")
        assert loaded.provenance["source"] == "torch"
        assert _max_err(loaded.stream().run(x[0].numpy())[-1], want) <= 1e-5
    assert main(["convert", str(tmp_path / "net.pt")]) == 2
    assert "--example-shape" in capsys.readouterr().err


# --- graphs exported by torch.onnx.export -----------------------------------------

def _export(module, args, names, outs, dynamic=None):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, f, input_names=names, output_names=outs,
                          dynamic_axes=dynamic, dynamo=False)
    return onnx.load_from_string(f.getvalue())


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_streaming_export_steps_like_onnxruntime_fed_its_state(cell):
    torch.manual_seed(0)
    lstm = cell == "LSTM"

    class OneStep(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, cell)(3, 4, num_layers=2, batch_first=True)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x, h, *c):
            y, st = self.rnn(x, (h, c[0]) if lstm else h)
            return (self.fc(y),) + (st if lstm else (st,))

    zeros = torch.zeros(2, 1, 4)
    names, outs = ["x", "h0"] + ["c0"] * lstm, ["y", "hn"] + ["cn"] * lstm
    m = _export(OneStep(), (torch.randn(1, 1, 3), zeros) + (zeros,) * lstm, names, outs)
    model = from_onnx(m)
    stream = model.stream()
    state = {n: np.zeros((2, 1, 4), np.float32) for n in names[1:]}
    rng = np.random.default_rng(3)
    for _ in range(300):
        x = rng.standard_normal((1, 1, 3)).astype(np.float32)
        want = ort_run(m, {"x": x, **state})
        state = {n: want[o] for n, o in zip(names[1:], outs[1:], strict=True)}
        y = stream.step(x[0, 0])
        assert np.abs(y - want["y"][0, 0]).max() <= 1e-5
    st = dict(zip(stream.get_state().names, stream.get_state().arrays, strict=True))
    for k in range(2):
        assert np.abs(st[f"{k}.h"] - state["h0"][k, 0]).max() <= 1e-5
    # run_like_onnx answers the one-step feed dict as ONNX Runtime does
    got = run_like_onnx(model, {"x": x, **state})
    want = ort_run(m, {"x": x, **state})
    for name in outs:
        assert np.abs(got[name] - want[name]).max() <= 1e-5, name


def test_torch_export_bidirectional_gru_last_step_softmax_matches_onnxruntime():
    torch.manual_seed(1)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True)
            self.fc = torch.nn.Linear(8, 5)

        def forward(self, x):
            y, _ = self.rnn(x)
            return torch.softmax(self.fc(y[:, -1]), -1)

    m = _export(Net(), (torch.randn(2, 5, 3),), ["x"], ["p"], {"x": {0: "b", 1: "t"}})
    model = from_onnx(m)
    assert model.return_sequences is False
    assert model.stream().run(np.zeros((7, 3), np.float32)).shape == (1, 5)
    x = np.random.default_rng(4).standard_normal((3, 40, 3)).astype(np.float32)
    assert np.abs(run_like_onnx(model, {"x": x})["p"] - ort_run(m, {"x": x})["p"]).max() <= 1e-5


def test_torch_export_embedding_lstm_final_state_head_matches_onnxruntime(tmp_path):
    torch.manual_seed(2)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 3)
            self.rnn = torch.nn.LSTM(3, 4)
            self.fc = torch.nn.Linear(4, 10)

        def forward(self, tok):
            _, (h, _) = self.rnn(self.emb(tok))
            return torch.relu(self.fc(h[-1]))

    m = _export(Net(), (torch.randint(0, 10, (6, 2)),), ["tok"], ["out"],
                {"tok": {0: "t", 1: "b"}})
    model = from_onnx(m)
    assert [type(la).__name__ for la in model.layers] == ["Embedding", "LSTM", "Dense"]
    tok = np.random.default_rng(5).integers(0, 10, (30, 2))
    want = ort_run(m, {"tok": tok})["out"]
    assert np.abs(run_like_onnx(model, {"tok": tok})["out"] - want).max() <= 1e-5
    model.save(tmp_path / "m.ernn")
    loaded = edgernn.load(tmp_path / "m.ernn")
    assert np.abs(run_like_onnx(loaded, {"tok": tok})["out"] - want).max() <= 1e-5
    assert loaded.stream().run(tok[:, 1])[-1] == pytest.approx(want[1], abs=1e-5)


@pytest.mark.parametrize("opset", [11, 17])
def test_torch_export_older_opsets_match_onnxruntime(opset):
    torch.manual_seed(9)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
            self.fc = torch.nn.Linear(8, 2)

        def forward(self, x):
            return torch.softmax(self.fc(self.rnn(x)[0]), dim=-1)

    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Net().eval(), (torch.randn(5, 2, 3),), f, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "t", 1: "b"}},
                          opset_version=opset, dynamo=False)
    m = onnx.load_from_string(f.getvalue())
    model = from_onnx(m)
    x = np.random.default_rng(25).standard_normal((20, 3, 3)).astype(np.float32)
    assert np.abs(run_like_onnx(model, {"x": x})["y"] - ort_run(m, {"x": x})["y"]).max() <= 1e-5


class _Variants(torch.nn.Module):
    """Exporter patterns: last step of an unbatched input, h_n heads, rows merged."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.rnn = torch.nn.LSTM(3, 4, num_layers=2, batch_first=kind != "unbatched")
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        y, (h, c) = self.rnn(x)
        if self.kind == "unbatched":
            return self.fc(y[-1])
        if self.kind == "h_n":
            return torch.sigmoid(self.fc(h[-1]))
        return self.fc(y.reshape(-1, 4))


@pytest.mark.parametrize("kind", ["unbatched", "h_n", "rows"])
def test_torch_export_patterns_match_onnxruntime(kind):
    torch.manual_seed(10)
    shape = (6, 3) if kind == "unbatched" else (2, 6, 3)
    dyn = {0: "t"} if kind == "unbatched" else {0: "b", 1: "t"}
    m = _export(_Variants(kind), (torch.randn(*shape),), ["x"], ["y"], {"x": dyn})
    model = from_onnx(m)
    x = np.random.default_rng(11).standard_normal(
        (15, 3) if kind == "unbatched" else (3, 15, 3)).astype(np.float32)
    want = ort_run(m, {"x": x})["y"]
    got = run_like_onnx(model, {"x": x})["y"]
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bidirectional_final_states_head_matches_torch_and_onnxruntime(kind):
    torch.manual_seed(12)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(3, 4, num_layers=2, batch_first=True,
                                               bidirectional=True)
            self.fc = torch.nn.Linear(8, 2)

        def forward(self, x):
            _, h = self.rnn(x)
            h = h[0] if isinstance(h, tuple) else h
            return self.fc(torch.cat([h[-2], h[-1]], dim=1))

    net = Net().eval()
    x = np.random.default_rng(13).standard_normal((3, 20, 3)).astype(np.float32)
    m = _export(net, (_t(x),), ["x"], ["y"], {"x": {0: "b", 1: "t"}})
    model = from_onnx(m)
    assert not model.layers[1].return_sequences
    got = run_like_onnx(model, {"x": x})["y"]
    assert np.abs(got - ort_run(m, {"x": x})["y"]).max() <= 1e-5
    with torch.no_grad():
        want = net(_t(x)).numpy()
    assert np.abs(got - want).max() <= 1e-5
    assert _max_err(from_torch(net, example_input=_t(x)).stream().run(x[1]), want[1:2]) <= 1e-5


def test_sequential_embedding_head_checked_with_token_example():
    torch.manual_seed(14)
    net = torch.nn.Sequential(torch.nn.Embedding(7, 3), torch.nn.Linear(3, 4),
                              torch.nn.Tanh()).eval()
    tok = torch.randint(0, 7, (2, 5))
    model = from_torch(net, example_input=tok)
    with torch.no_grad():
        want = net(tok).numpy()
    assert _max_err(model.stream().run(tok[1].numpy()), want[1]) <= 1e-5
    cell = torch.nn.GRUCell(3, 4)
    assert from_torch(cell, example_input=torch.randn(5, 3)).provenance["path"] == "native"


def test_cli_refuses_a_state_dict(tmp_path, capsys):
    from edgernn.cli import main

    torch.save(torch.nn.LSTM(3, 4).state_dict(), tmp_path / "sd.pt")
    assert main(["convert", str(tmp_path / "sd.pt"), "--example-shape", "5,1,3"]) == 2
    assert "state dict" in capsys.readouterr().err
