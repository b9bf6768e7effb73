"""Parity of the engine with PyTorch and with the float64 numpy oracle (tests/naive.py)."""

import numpy as np
import pytest
import torch

import edgernn
from tests import naive

T_STEPS = 1000
TOL = 1e-5


def _torch_stack(kind, sizes, seed, nonlinearity="tanh"):
    """A torch recurrent stack with a Linear head, and the same model in edgernn."""
    torch.manual_seed(seed)
    mods, layers = [], []
    for i_size, h_size in zip(sizes[:-2], sizes[1:-1], strict=True):
        if kind == "RNN":
            m = torch.nn.RNN(i_size, h_size, nonlinearity=nonlinearity)
        else:
            m = getattr(torch.nn, kind)(i_size, h_size)
        if nonlinearity == "relu":  # keep a relu RNN bounded over 1000 steps
            with torch.no_grad():
                m.weight_hh_l0.mul_(0.5)
        mods.append(m)
        sd = {k: v.detach().numpy() for k, v in m.state_dict().items()}
        args = (sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"], sd["bias_hh_l0"])
        if kind == "RNN":
            layers.append(edgernn.RNN(*args, nonlinearity=nonlinearity))
        else:
            layers.append(getattr(edgernn, kind)(*args))
    head = torch.nn.Linear(sizes[-2], sizes[-1])
    layers.append(edgernn.Dense(head.weight.detach().numpy(), head.bias.detach().numpy()))
    return mods, head, edgernn.Model(layers)


CASES = [
    ("RNN", [3, 8, 2], "tanh"),
    ("RNN", [16, 64, 32, 4], "relu"),
    ("LSTM", [1, 1, 1], "tanh"),
    ("LSTM", [16, 32, 4], "tanh"),
    ("LSTM", [64, 256, 256, 64], "tanh"),
    ("LSTM", [7, 33, 17, 9, 5], "tanh"),
    ("GRU", [42, 96, 22], "tanh"),
    ("GRU", [5, 129, 3], "tanh"),
    ("GRU", [20, 31, 64, 256, 8], "tanh"),
]


@pytest.mark.parametrize("kind,sizes,nl", CASES, ids=[f"{c[0]}-{c[2]}-{'x'.join(map(str, c[1]))}"
                                                      for c in CASES])
def test_stack_matches_torch_and_oracle(kind, sizes, nl):
    mods, head, model = _torch_stack(kind, sizes, seed=sum(sizes), nonlinearity=nl)
    xs = np.random.default_rng(len(sizes)).standard_normal((T_STEPS, sizes[0])).astype(np.float32)
    with torch.no_grad():
        cur = torch.from_numpy(xs)
        for m in mods:
            cur = m(cur)[0]
        ref = head(cur).numpy()
    ys = model.stream().run(xs)
    assert ys.shape == (T_STEPS, sizes[-1])
    np.testing.assert_allclose(ys, ref, atol=TOL, rtol=0)
    np.testing.assert_allclose(ys, naive.run(model, xs), atol=TOL, rtol=0)


def _rand(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


ONNX_STYLE = [
    ("lstm_peephole", lambda r, I, H: edgernn.LSTM(_rand(r, 4 * H, I), _rand(r, 4 * H, H),
                                                   _rand(r, 4 * H), None,
                                                   peephole=_rand(r, 3, H))),
    ("lstm_clip", lambda r, I, H: edgernn.LSTM(_rand(r, 4 * H, I, scale=1), _rand(r, 4 * H, H),
                                               clip=0.7, cell_clip=1.5)),
    ("lstm_input_forget", lambda r, I, H: edgernn.LSTM(_rand(r, 4 * H, I), _rand(r, 4 * H, H),
                                                       _rand(r, 4 * H), _rand(r, 4 * H),
                                                       input_forget=True)),
    ("lstm_activations", lambda r, I, H: edgernn.LSTM(
        _rand(r, 4 * H, I), _rand(r, 4 * H, H),
        activations=(edgernn.Activation("hard_sigmoid"), "softsign",
                     edgernn.Activation("scaled_tanh", 0.8, 1.2)))),
    ("gru_before_reset", lambda r, I, H: edgernn.GRU(_rand(r, 3 * H, I), _rand(r, 3 * H, H),
                                                     _rand(r, 3 * H), _rand(r, 3 * H),
                                                     linear_before_reset=False)),
    ("gru_clip_acts", lambda r, I, H: edgernn.GRU(_rand(r, 3 * H, I, scale=1),
                                                  _rand(r, 3 * H, H), clip=0.5,
                                                  activations=("hard_sigmoid", "elu"))),
    ("rnn_leaky", lambda r, I, H: edgernn.RNN(_rand(r, H, I), _rand(r, H, H, scale=0.1),
                                              nonlinearity=edgernn.Activation("leaky_relu", 0.1),
                                              clip=2.0)),
]


@pytest.mark.parametrize("name,make", ONNX_STYLE, ids=[c[0] for c in ONNX_STYLE])
@pytest.mark.parametrize("math", ["fast", "exact"])
def test_options_match_oracle(name, make, math):
    rng = np.random.default_rng(7)
    layer = make(rng, 6, 24)
    model = edgernn.Model([layer, edgernn.Dense(_rand(rng, 5, 24), activation="tanh")])
    xs = _rand(rng, T_STEPS, 6, scale=1.0)
    np.testing.assert_allclose(model.stream(math=math).run(xs), naive.run(model, xs),
                               atol=TOL, rtol=0)


ACTS = ["linear", "relu", "tanh", "sigmoid", "softmax", "leaky_relu", "elu", "hard_sigmoid",
        "softsign", "softplus", "affine", "thresholded_relu", "scaled_tanh", "log_softmax",
        "l2_normalize"]


@pytest.mark.parametrize("name", ACTS)
def test_dense_activation_matches_oracle(name):
    rng = np.random.default_rng(3)
    act = edgernn.Activation(name, 0.3, 0.4) if name in ("affine", "scaled_tanh") else name
    act = edgernn.Activation(name, 1e-12) if name == "l2_normalize" else act
    model = edgernn.Model([edgernn.Dense(_rand(rng, 9, 4, scale=2), _rand(rng, 9), act),
                           edgernn.Activation("tanh") if name == "linear" else
                           edgernn.Activation("linear")])
    xs = _rand(rng, 200, 4, scale=3)
    # rtol: log_softmax reaches -40, where one float32 ulp is 4e-6
    np.testing.assert_allclose(model.stream().run(xs), naive.run(model, xs), atol=TOL, rtol=1e-6)


def test_embedding_model_matches_torch():
    torch.manual_seed(0)
    emb, gru, lin = torch.nn.Embedding(50, 8), torch.nn.GRU(8, 16), torch.nn.Linear(16, 50)
    g = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    model = edgernn.Model([
        edgernn.Embedding(emb.weight.detach().numpy()),
        edgernn.GRU(g["weight_ih_l0"], g["weight_hh_l0"], g["bias_ih_l0"], g["bias_hh_l0"]),
        edgernn.Dense(lin.weight.detach().numpy(), lin.bias.detach().numpy())])
    ids = np.random.default_rng(0).integers(0, 50, 300)
    with torch.no_grad():
        ref = lin(gru(emb(torch.from_numpy(ids)))[0]).numpy()
    s = model.stream()
    np.testing.assert_allclose(s.run(ids), ref, atol=TOL, rtol=0)
    s.reset()
    steps = np.stack([s.step(np.array([t])) for t in ids])
    np.testing.assert_array_equal(steps, model.stream().run(ids))


def test_bidirectional_matches_torch():
    torch.manual_seed(5)
    bi = torch.nn.LSTM(6, 12, bidirectional=True)
    sd = {k: v.detach().numpy() for k, v in bi.state_dict().items()}
    f = edgernn.LSTM(sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"], sd["bias_hh_l0"])
    b = edgernn.LSTM(sd["weight_ih_l0_reverse"], sd["weight_hh_l0_reverse"],
                     sd["bias_ih_l0_reverse"], sd["bias_hh_l0_reverse"])
    head = np.random.default_rng(1).standard_normal((3, 24)).astype(np.float32)
    model = edgernn.Model([edgernn.Bidirectional(f, b), edgernn.Dense(head)])
    xs = np.random.default_rng(2).standard_normal((400, 6)).astype(np.float32)
    with torch.no_grad():
        ref = bi(torch.from_numpy(xs))[0].numpy() @ head.T
    np.testing.assert_allclose(model.stream().run(xs), ref, atol=TOL, rtol=0)
    for mode in ("sum", "mul", "ave"):
        m = edgernn.Model([edgernn.Bidirectional(f, b, mode, return_sequences=False)])
        np.testing.assert_allclose(m.stream().run(xs), naive.run(m, xs), atol=TOL, rtol=0)
    with pytest.raises(edgernn.StreamError, match="Bidirectional"):
        model.stream().step(xs[0])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_exact_math_reaches_the_fused_recurrent_ops(kind):
    """math="exact" runs libm's sigmoid/tanh in plain LSTM/GRU too (their fused kernel
    computes the rational ones inline): the same bits as the general kernel, which an
    inert clip selects, and not the fast path's."""
    import dataclasses

    from tests.helpers import stack_model

    rng = np.random.default_rng(11)
    model = stack_model(rng, kind, n_in=8, hidden=32)
    cell, head = model.layers
    general = edgernn.Model([dataclasses.replace(cell, clip=1e6), head])
    xs = _rand(rng, 400, 8, scale=2.0)
    exact = model.stream(math="exact").run(xs)
    np.testing.assert_array_equal(exact, general.stream(math="exact").run(xs))
    assert not np.array_equal(exact, model.stream().run(xs))
    np.testing.assert_allclose(exact, naive.run(model, xs), atol=TOL, rtol=0)
