"""The ops that see a tensor as (channels, length) or (rows, cols) -- Conv1d,
CausalConv1d, LayerNorm, Reduce, Pad -- and Div, against plain-numpy oracles
written from their equations, and against torch where torch has the op."""

import numpy as np
import pytest

import edgernn
from edgernn.errors import ModelFormatError
from tests.helpers import need_module, weights

F32 = np.float32


def _run(op, xs, n_in):
    x = edgernn.Input(n_in)
    m = edgernn.Model(inputs=x, outputs=op(x))
    ys = m.stream().run(xs)
    s = m.stream()
    np.testing.assert_array_equal(np.stack([s.step(v).copy() for v in xs]), ys)  # step == run
    b = m.streams(2)
    got = np.stack([b.step(np.stack([v, v]))[1].copy() for v in xs])
    np.testing.assert_array_equal(got, ys)                                         # batch
    return ys


def conv1d_oracle(x, w, b, stride, dilation, groups, pad):
    """``y[o, l] = b[o] + sum_c sum_j w[o, c, j] x[g(o) * C/G + c, l*s + j*d - pb]``."""
    ci_total, _ = x.shape
    co, cig, k = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), pad))
    lout = (xp.shape[1] - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((co, lout))
    for o in range(co):
        g = o // (co // groups)
        for l in range(lout):
            taps = xp[g * cig:(g + 1) * cig, l * stride + dilation * np.arange(k)]
            y[o, l] = (w[o] * taps).sum() + (0 if b is None else b[o])
    return y


@pytest.mark.parametrize("ci, co, k, stride, dilation, groups, pad, length", [
    (1, 6, 16, 8, 1, 1, (0, 0), 40),      # an STFT-like framing conv (Silero's, smaller)
    (5, 4, 3, 1, 1, 1, (1, 1), 4),        # Silero's encoder shape
    (4, 4, 3, 2, 1, 1, (1, 1), 4),
    (6, 4, 3, 1, 2, 2, (2, 1), 9),        # dilation and groups
    (8, 3, 1, 1, 1, 1, (0, 0), 1),        # DTLN's 1x1 conv on one frame
    (3, 40, 100, 7, 1, 1, (2, 0), 120),   # a full 32-row panel and a tail; 300 columns
    (4, 68, 3, 1, 1, 2, (1, 1), 5),       # 34 rows a group (not a multiple of 8)
])
def test_conv1d_matches_its_equations(rng, ci, co, k, stride, dilation, groups, pad, length):
    w, b = weights(rng, co, ci // groups, k), weights(rng, co)
    op = edgernn.Conv1d(w, b, length=length, stride=stride, dilation=dilation, groups=groups,
                        padding=pad)
    xs = rng.normal(0, 1, (6, ci * length)).astype(F32)
    ys = _run(op, xs, ci * length)
    want = np.stack([conv1d_oracle(x.reshape(ci, length), w, b, stride, dilation, groups,
                                   pad).ravel() for x in xs])
    tol = 2e-6 * max(1.0, np.sqrt(ci // groups * k / 30))   # float32 sums of that many terms
    np.testing.assert_allclose(ys, want, atol=tol, rtol=1e-6)


@pytest.mark.parametrize("k, dilation, groups", [(3, 1, 1), (3, 2, 1), (2, 1, 2), (1, 1, 1)])
def test_causal_conv1d_over_time_matches_its_equations(rng, k, dilation, groups):
    ci, co = 4, 6
    w, b = weights(rng, co, ci // groups, k), weights(rng, co)
    op = edgernn.CausalConv1d(w, b, dilation=dilation, groups=groups, activation="tanh")
    xs = rng.normal(0, 1, (40, ci)).astype(F32)
    ys = _run(op, xs, ci)
    padded = np.concatenate([np.zeros(((k - 1) * dilation, ci)), xs])   # zeros before t = 0
    want = np.tanh(conv1d_oracle(padded.T, w, b, 1, dilation, groups, (0, 0)).T)
    np.testing.assert_allclose(ys, want, atol=2e-6)


def test_causal_conv1d_keeps_its_history_as_state_and_matches_torch(rng):
    torch = need_module("torch", "torch (the dev extra)")
    conv = torch.nn.Conv1d(65, 128, 3)          # RNNoise 0.2's conv1, made causal
    op = edgernn.CausalConv1d(conv.weight.detach().numpy(), conv.bias.detach().numpy(),
                              activation="tanh")
    m = edgernn.Model([op])
    xs = rng.normal(0, 1, (100, 65)).astype(F32)
    with torch.no_grad():
        ref = torch.tanh(conv(torch.nn.functional.pad(torch.from_numpy(xs.T)[None], (2, 0))))
    np.testing.assert_allclose(m.stream().run(xs), ref[0].T.numpy(), atol=2e-6)
    s = m.stream()
    s.run(xs[:10])
    hist = s.get_state()
    assert hist.names == ("0.history",)
    np.testing.assert_array_equal(hist.arrays[0], xs[8:10].ravel())  # the last 2 inputs
    s.reset()
    np.testing.assert_array_equal(s.run(xs), m.stream().run(xs))


@pytest.mark.parametrize("n, eps, affine", [(8, 1e-5, True), (256, 1e-7, True), (5, 0.0, False)])
def test_layer_norm_matches_its_equations(rng, n, eps, affine):
    rows = 3
    g, b = (weights(rng, n), weights(rng, n)) if affine else (None, None)
    op = edgernn.LayerNorm(n, g, b, eps=eps)
    xs = rng.normal(2, 3, (5, rows * n)).astype(F32)
    ys = _run(op, xs, rows * n)
    x = xs.reshape(5, rows, n).astype(np.float64)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    want = (x - mean) / np.sqrt(var + eps)
    if affine:
        want = want * g + b
    np.testing.assert_allclose(ys, want.reshape(5, -1), atol=1e-5)


def test_layer_norm_matches_torch(rng):
    torch = need_module("torch", "torch (the dev extra)")
    ln = torch.nn.LayerNorm(16)
    with torch.no_grad():
        ln.weight.copy_(torch.from_numpy(weights(rng, 16)))
        ln.bias.copy_(torch.from_numpy(weights(rng, 16)))
    op = edgernn.LayerNorm(16, ln.weight.detach().numpy(), ln.bias.detach().numpy(), eps=1e-5)
    xs = rng.normal(0, 2, (20, 16)).astype(F32)
    with torch.no_grad():
        want = ln(torch.from_numpy(xs)).numpy()
    np.testing.assert_allclose(_run(op, xs, 16), want, atol=3e-6)


@pytest.mark.parametrize("func", ["mean", "sum", "max", "min", "l2", "sum_square"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_reduce_matches_numpy(rng, func, axis):
    rows, cols = 3, 7
    xs = rng.normal(0, 1, (4, rows * cols)).astype(F32)
    ys = _run(edgernn.Reduce(func, cols, axis), xs, rows * cols)
    x = xs.reshape(4, rows, cols).astype(np.float64)
    ax = 2 if axis == -1 else 1
    want = {"mean": lambda: x.mean(ax), "sum": lambda: x.sum(ax), "max": lambda: x.max(ax),
            "min": lambda: x.min(ax), "l2": lambda: np.sqrt((x * x).sum(ax)),
            "sum_square": lambda: (x * x).sum(ax)}[func]()
    np.testing.assert_allclose(ys, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("before, after", [(3, 2), (-2, -1), (-1, 2), (2, -3)])
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_matches_numpy(rng, mode, before, after):
    """Padding, and negative padding (a crop, as ONNX's negative pads) on either side."""
    rows, cols = 2, 6
    xs = rng.normal(0, 1, (4, rows * cols)).astype(F32)
    op = edgernn.Pad(cols, before, after, mode, 1.5 if mode == "constant" else 0.0)
    ys = _run(op, xs, rows * cols)
    kw = {"constant_values": 1.5} if mode == "constant" else {}
    x3 = xs.reshape(4, rows, cols)[:, :, max(0, -before):cols - max(0, -after)]
    want = np.pad(x3, ((0, 0), (0, 0), (max(0, before), max(0, after))), mode=mode, **kw)
    np.testing.assert_array_equal(ys, want.reshape(4, -1))


def test_div_by_a_tensor_and_by_a_constant(rng):
    a, b = edgernn.Input(4, name="a"), edgernn.Input(4, name="b")
    m = edgernn.Model(inputs=[a, b], outputs=[edgernn.div(a, b), edgernn.div(a, 4.0)])
    xs = rng.normal(0, 1, (10, 8)).astype(F32)
    ys = m.stream().run(xs)
    np.testing.assert_array_equal(ys[:, :4], xs[:, :4] / xs[:, 4:])
    np.testing.assert_array_equal(ys[:, 4:], xs[:, :4] / F32(4))


def test_shaped_ops_round_trip_through_a_file(tmp_path, rng):
    x = edgernn.Input(2 * 10)
    p = edgernn.Pad(10, 2, 2, "reflect")(x)
    c = edgernn.Conv1d(weights(rng, 3, 2, 3), weights(rng, 3), length=14, stride=2,
                       activation="relu")(p)
    n = edgernn.LayerNorm(c.size // 3, weights(rng, c.size // 3), None, eps=1e-7)(c)
    r = edgernn.Reduce("mean", c.size // 3)(n)
    t = edgernn.CausalConv1d(weights(rng, 2, 3, 2), None, dilation=2)(r)
    m = edgernn.Model(inputs=x, outputs=[t, n])
    edgernn.save(m, tmp_path / "s.ernn")
    xs = rng.normal(0, 1, (12, 20)).astype(F32)
    np.testing.assert_array_equal(edgernn.load(tmp_path / "s.ernn").stream().run(xs),
                                  m.stream().run(xs))


@pytest.mark.parametrize("make, match", [
    (lambda: edgernn.Conv1d(np.ones((2, 1, 5), F32), length=3), "shorter than the kernel"),
    (lambda: edgernn.Conv1d(np.ones((3, 1, 1), F32), groups=2), "not a multiple of groups"),
    (lambda: edgernn.Pad(4, 4, 0, "reflect"), "shorter than the axis"),
    (lambda: edgernn.Pad(6, 3, -3, "reflect"), r"shorter than the axis \(3 of 6 kept\)"),
    (lambda: edgernn.Reduce("median", 3), "Reduce.func: expected one of"),
    (lambda: edgernn.LayerNorm(0), "positive integer"),
    (lambda: edgernn.Pad(4, -5, 0), r"Pad.before: expected an integer >= -4"),
    (lambda: edgernn.Pad(4, -2, -2), r"Pad: -2, -2 leave nothing of an axis of 4"),
    (lambda: edgernn.State(True), "State.size: expected a positive integer"),
    (lambda: edgernn.Conv1d(np.ones((2, 1, 1), F32), length=3, stride=0), "Conv1d.stride"),
    (lambda: edgernn.CausalConv1d(np.ones((2, 2), F32)), "expected a non-empty 3-D"),
    (lambda: edgernn.LayerNorm(4)(edgernn.Input(6)), "not a multiple"),
])
def test_bad_configs_are_refused_naming_the_field(make, match):
    with pytest.raises(ModelFormatError, match=match):
        make()


def test_numpy_integer_sizes_are_stored_as_python_ints():
    """(what the manifest's JSON needs)"""
    ops = [edgernn.Reduce("sum", np.int64(3)), edgernn.Pad(np.int64(4), np.int32(1), 0),
           edgernn.State(np.int64(5)), edgernn.LayerNorm(np.int64(4))]
    for op, name in zip(ops, ("cols", "before", "size", "normalized_size"), strict=True):
        assert type(getattr(op, name)) is int, (op, name)


@pytest.mark.parametrize("n", [4, 8, 64, 512, 6, 10, 24, 320, 400, 480, 960])
def test_rfft_and_irfft_match_numpy(rng, n):
    """Powers of two (radix 2 in place) and sizes whose half has factors 3 and 5
    (Stockham, radices 4, 2, 3, 5: NSNet2's 320, 25 ms at 16 kHz, 10 ms at 48 kHz)."""
    from tests import naive

    x = edgernn.Input(n)
    spec = edgernn.RFFT(n)(x)
    back = edgernn.IRFFT(n)(spec)
    m = edgernn.Model(inputs=x, outputs=[spec, back])
    xs = rng.normal(0, 1, (6, n)).astype(F32)
    ys = _run(lambda t: edgernn.concat([(f := edgernn.RFFT(n)(t)), edgernn.IRFFT(n)(f)]),
              xs, n)   # step == run, batch
    ref = np.fft.rfft(xs.astype(np.float64))
    b = n // 2 + 1
    tol = 2e-6 * np.sqrt(n)
    np.testing.assert_allclose(ys[:, :b], ref.real, atol=tol)
    np.testing.assert_allclose(ys[:, b:2 * b], ref.imag, atol=tol)
    np.testing.assert_allclose(ys[:, 2 * b:], xs, atol=1e-6)   # the inverse undoes it
    np.testing.assert_allclose(m.stream().run(xs), naive.run(m, xs), atol=tol)
    for bad in (n + 1, 2 * 7 * n, 2 * 11):
        with pytest.raises(ModelFormatError, match=f"no prime factor above 5.*got {bad}"):
            edgernn.RFFT(bad)
