"""Streaming exports that carry their convolution caches by hand (issue 17, "other real
models"): per call one frame, ``cat = Concat(cache, x, time)``, a Conv without padding
over time, ``cache_out = Slice(cat, 1:)``, recurrent states in and out too
(``tests/conv_cache_models.py``: a GTCRN-style stream model, a causal TCN, a CRN).

Each is exported by torch (TorchScript and dynamo exporters), converted (Python API and
``edgernn convert``) and stepped over real speech features with ``model.stream().step``:
within 1e-5 of ONNX Runtime and of torch, both fed every cache and state back by hand;
``run`` equals the steps bit for bit; ``int8-weights`` converts and reports its error
(checked against the error measured here); two streams stepped together equal each
alone. Also: one frame taken channels-first (``[1, C, 1]``, ``[1, C, 1, F]``), caches
stacked into one output, GTCRN's packed cache written in place (both exporters), a
cache given back in another order. Patterns that cannot stream are refused naming the
node, the op and the reason (a cache of the wrong length, frames into another op, an
unpaired cache).
"""

import warnings

import numpy as np
import pytest

from edgernn.cli import main
from tests.helpers import need_module
from tests.real_models import log_power_frames, speech_16k

torch = need_module("torch", "torch (the dev extra)")
need_module("onnx", "onnx (the convert extra)")
ort = need_module("onnxruntime", "onnxruntime (the dev extra)")
import edgernn  # noqa: E402
from converters import quantize  # noqa: E402
from converters.onnx import from_onnx, run_like_onnx  # noqa: E402
from edgernn.errors import UnsupportedOpError  # noqa: E402
from tests.conv_cache_models import CRNStream, GTCRNInPlace, GTCRNStream, StreamTCN  # noqa: E402
from tests.test_convert_torch_streaming_models import trained_looking  # noqa: E402

nn, F = torch.nn, torch.nn.functional
STEPS = 240
#: model -> (features per step, state input names, their outputs)
CASES = {
    "tcn": (StreamTCN, 16, ["cache1", "cache2", "cache3"],
            ["cache1_out", "cache2_out", "cache3_out"]),
    "gtcrn": (GTCRNStream, 33, ["conv_cache", "h"], ["conv_cache_out", "h_out"]),
    "crn": (CRNStream, 33, ["cache1", "cache2", "h", "c"],
            ["cache1_out", "cache2_out", "h_out", "c_out"]),
}


def features(bins: int) -> np.ndarray:
    """Log-power spectra of real speech, 64-point frames hopped by 32 (33 bins; the first
    ``bins``), about unit scale: [STEPS, bins]."""
    x = speech_16k()
    f = log_power_frames(x[8000:], np.hanning(64).astype(np.float32), 32, 64)[:STEPS]
    assert f.shape[0] == STEPS
    return ((f[:, :bins] + 4.0) / 3.0).astype(np.float32)


def export(name, path, dynamo=False):
    cls, bins, ins, outs = CASES[name]
    torch.manual_seed(3)
    net = trained_looking(cls())
    args = (torch.zeros(1, 1, bins), *net.caches())
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, args, str(path), input_names=["x", *ins],
                          output_names=["y", *outs], dynamo=dynamo,
                          **({} if dynamo else {"opset_version": 17}))
    return net, args


def by_hand(run, first, xs) -> np.ndarray:
    """Step ``run(x, *states) -> (y, *states)`` over ``xs``, feeding the states back."""
    states, ys = list(first), []
    for x in xs:
        y, *states = run(x.reshape(1, 1, -1), *states)
        ys.append(np.asarray(y).reshape(-1))
    return np.stack(ys)


def oracles(path, net, args, xs):
    sess = ort.InferenceSession(str(path))
    names = [i.name for i in sess.get_inputs()]
    want = by_hand(lambda *a: sess.run(None, dict(zip(names, a, strict=True))),
                   [a.numpy() for a in args[1:]], xs)
    with torch.no_grad():
        ref = by_hand(lambda x, *s: [t.numpy() for t in net(torch.from_numpy(x), *(
            torch.from_numpy(v) for v in s))], [a.numpy() for a in args[1:]], xs)
    return want, ref


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", list(CASES))
def test_cache_export_streams_like_onnxruntime_and_torch(tmp_path, name, dynamo):
    path = tmp_path / f"{name}.onnx"
    net, args = export(name, path, dynamo)
    model = from_onnx(path)
    xs = features(CASES[name][1])
    s = model.stream()
    got = np.stack([s.step(x).copy() for x in xs])
    want, ref = oracles(path, net, args, xs)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(model.stream().run(xs), got)
    batch = model.streams(2)    # two streams stepped together: each as alone, bit for bit
    both = np.stack([batch.step(np.stack([a, b])).copy()
                     for a, b in zip(xs, xs[::-1], strict=True)])
    np.testing.assert_array_equal(both[:, 0], got)
    np.testing.assert_array_equal(both[:, 1], model.stream().run(xs[::-1].copy()))
    # the caches are state named after their graph inputs, one per frame
    names = model.stream().get_state().names
    for inp in CASES[name][2]:
        if inp.startswith("cache") or inp == "conv_cache":
            assert any(n.startswith(f"{inp}[") for n in names), names
    if not dynamo:   # the command line gives the same model
        out = tmp_path / f"{name}.ernn"
        assert main(["convert", str(path), "-o", str(out)]) == 0
        np.testing.assert_array_equal(edgernn.load(out).stream().run(xs), got)


@pytest.mark.parametrize("name", list(CASES))
def test_run_like_onnx_reads_and_gives_back_the_caches(tmp_path, name, rng):
    """A feed with non-zero caches and states: every output, caches included, as ONNX
    Runtime gives it (the frames are read from and written to their places)."""
    path = tmp_path / f"{name}.onnx"
    _, args = export(name, path)
    model = from_onnx(path)
    sess = ort.InferenceSession(str(path))
    feeds = {i.name: rng.normal(0, 1, a.shape).astype(np.float32)
             for i, a in zip(sess.get_inputs(), args, strict=True)}
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))
    got = run_like_onnx(model, feeds)
    assert set(got) == set(want)
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, atol=1e-5, rtol=0, err_msg=k)


@pytest.mark.parametrize("name", list(CASES))
def test_int8_weights_converts_and_reports_its_error(tmp_path, name):
    path = tmp_path / f"{name}.onnx"
    export(name, path)
    model = from_onnx(path)
    xs = features(CASES[name][1])
    calib, held = xs[:120], xs[120:]
    q = quantize(model, calibration=[calib], held_out=[held], mode="int8-weights",
                 progress=False, min_macs=0)
    rep = q.quantization["end_to_end"]["held_out"]
    err = np.abs(q.stream().run(held) - model.stream().run(held))
    print(f"{name} int8-weights on held-out speech: max {rep['max_abs']:.3g}, "
          f"SNR {rep['snr_db']} dB")
    assert 0 < err.max() < 0.05     # masks in [0, 1]: a few hundredths at most
    np.testing.assert_allclose(rep["max_abs"], err.max(), rtol=2e-3)
    qs = q.stream()
    np.testing.assert_array_equal(np.stack([qs.step(x).copy() for x in held]),
                                  q.stream().run(held))


class Cached(nn.Module):
    """One cached Conv1d (k=3, dilation d) over ``[1, C, 1]`` frames; ``keep`` frames of
    ``cat`` given back (``keep=None``: the last ``size``), through ``op`` first."""

    def __init__(self, size=2, d=1, keep=None, op=None):
        super().__init__()
        self.size, self.keep, self.op = size, keep, op
        self.conv = nn.Conv1d(4, 4, 3, dilation=d)

    def forward(self, x, cache):
        cat = torch.cat([cache, x.transpose(1, 2)], dim=2)
        if self.op == "mul":
            cat = cat * 2.0
        kept = cat[:, :, 1:] if self.keep is None else cat[:, :, self.keep]
        return self.conv(cat).transpose(1, 2), kept


def export_cached(path, net, out="cache_out"):
    args = (torch.zeros(1, 1, 4), torch.zeros(1, 4, net.size))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, args, str(path), input_names=["x", "cache"],
                          output_names=["y", out], opset_version=17, dynamo=False)
    return path


def test_cache_of_the_wrong_length_is_refused_naming_the_conv(tmp_path):
    path = export_cached(tmp_path / "long.onnx", Cached(size=3))
    with pytest.raises(UnsupportedOpError, match=r"Conv node .*gives 2 frames; a streaming "
                                                 r"step gives one .*hold \(kernel - 1\) x "
                                                 r"dilation = 2 frames"):
        from_onnx(path)


def test_frames_into_another_op_are_refused_naming_it(tmp_path):
    path = export_cached(tmp_path / "mul.onnx", Cached(op="mul"))
    with pytest.raises(UnsupportedOpError, match=r"Mul node .*3 frames of a convolution "
                                                 r"cache joined with the step's data by "
                                                 r"Concat node"):
        from_onnx(path)


def test_an_unpaired_cache_output_is_refused_then_converts_when_paired(tmp_path, rng,
                                                                        capsys):
    path = export_cached(tmp_path / "unpaired.onnx", Cached(d=2, size=4), out="newcache")
    with pytest.raises(UnsupportedOpError, match=r"Concat node .*only along the feature "
                                                 r"axis .*if graph input 'cache' is a "
                                                 r"convolution cache passed in by hand, pair "
                                                 r"it with the output giving it back"):
        from_onnx(path)
    out = tmp_path / "paired.ernn"
    assert main(["convert", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--state cache=<output>" in err[0] and not out.exists(), err
    assert main(["convert", str(path), "--state", "cache=newcache", "-o", str(out)]) == 0
    model = from_onnx(path, states={"cache": "newcache"})
    assert edgernn.load(out).stream().get_state().names == model.stream().get_state().names
    xs = rng.normal(0, 1, (50, 4)).astype(np.float32)
    sess = ort.InferenceSession(str(path))
    want = by_hand(lambda x, c: sess.run(None, {"x": x, "cache": c}),
                   [np.zeros((1, 4, 4), np.float32)], xs)
    np.testing.assert_allclose(model.stream().run(xs), want, atol=1e-5, rtol=0)


def test_a_cache_given_back_in_any_order_is_what_the_graph_computes(tmp_path, rng):
    """The state is the graph's own cache: a model that keeps frames 2, 0 (not a delay
    line) still equals ONNX Runtime fed back."""
    path = export_cached(tmp_path / "odd.onnx", Cached(keep=[2, 0]))
    model = from_onnx(path)
    xs = rng.normal(0, 1, (40, 4)).astype(np.float32)
    sess = ort.InferenceSession(str(path))
    want = by_hand(lambda x, c: sess.run(None, {"x": x, "cache": c}),
                   [np.zeros((1, 4, 2), np.float32)], xs)
    np.testing.assert_allclose(model.stream().run(xs), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_gtcrn_layout_written_in_place(tmp_path, rng, dynamo):
    """GTCRN's own packed cache written in place: torch's default exporter writes it with
    ScatterND (slices, time moved first) and ScatterElements (rows), TorchScript with
    Expand/Reshape to its own shape and ScatterND of every value: both equal ONNX
    Runtime fed back, and run_like_onnx from a non-zero cache."""
    path = tmp_path / "inplace.onnx"
    shapes = ((1, 4, 1, 5), (2, 1, 4, 6, 5))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(GTCRNInPlace(), tuple(torch.zeros(*s) for s in shapes), str(path),
                          input_names=["x", "conv_cache"],
                          output_names=["y", "conv_cache_out"], dynamo=dynamo,
                          **({} if dynamo else {"opset_version": 17}))
    model = from_onnx(path)
    assert len(model.stream().get_state().names) == 12      # 2 x 6 frames of (C, F)
    xs = rng.normal(0, 1, (40,) + shapes[0]).astype(np.float32)
    sess = ort.InferenceSession(str(path))
    want = by_hand(lambda x, c: sess.run(None, {"x": x.reshape(shapes[0]), "conv_cache": c}),
                   [np.zeros(shapes[1], np.float32)], xs)
    np.testing.assert_allclose(model.stream().run(xs.reshape(40, -1)), want, atol=1e-5,
                               rtol=0)
    feeds = {"x": xs[0], "conv_cache": rng.normal(0, 1, shapes[1]).astype(np.float32)}
    ref = dict(zip(["y", "conv_cache_out"], sess.run(None, feeds), strict=True))
    for k, v in run_like_onnx(model, feeds).items():
        np.testing.assert_allclose(v, ref[k], atol=1e-5, rtol=0, err_msg=k)


class FrameIn(nn.Module):
    """One frame per call taken channels-first, ``[1, C, 1]`` (1-D) or ``[1, C, 1, F]``
    (2-D), as stream exports take it; ``stack``: two caches packed ``[2, 1, C, 2]``."""

    def __init__(self, two_d=False, stack=False):
        super().__init__()
        self.two_d, self.stack = two_d, stack
        self.conv = nn.Conv2d(3, 4, (2, 3), padding=(0, 1)) if two_d else \
            nn.Conv1d(6, 6, 3, dilation=2 - stack)
        self.conv2 = nn.Conv1d(6, 6, 3, groups=3)

    def forward(self, x, cache):
        if not self.stack:
            cat = torch.cat([cache, x], 2)
            return torch.tanh(self.conv(cat)), cat[:, :, 1:]
        outs = []
        for conv, c in ((self.conv, cache[0]), (self.conv2, cache[1])):
            cat = torch.cat([c, x], 2)
            x = torch.tanh(conv(cat))
            outs.append(cat[:, :, 1:])
        return x, torch.stack(outs)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("kind,x_shape,cache_shape", [
    ("1d", (1, 6, 1), (1, 6, 4)), ("2d", (1, 3, 1, 7), (1, 3, 1, 7)),
    ("stacked", (1, 6, 1), (2, 1, 6, 2))])
def test_channels_first_frames_and_packed_caches(tmp_path, rng, kind, x_shape, cache_shape,
                                                 dynamo):
    net = FrameIn(two_d=kind == "2d", stack=kind == "stacked").eval()
    path = tmp_path / f"{kind}.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(*x_shape), torch.zeros(*cache_shape)), str(path),
                          input_names=["x", "cache"], output_names=["y", "cache_out"],
                          dynamo=dynamo, **({} if dynamo else {"opset_version": 17}))
    model = from_onnx(path)
    assert model.input_size == int(np.prod(x_shape))   # the step holds (C, F)
    sess = ort.InferenceSession(str(path))
    xs = rng.normal(0, 1, (40,) + x_shape).astype(np.float32)
    want = by_hand(lambda x, c: sess.run(None, {"x": x.reshape(x_shape), "cache": c}),
                   [np.zeros(cache_shape, np.float32)], xs)
    got = model.stream().run(xs.reshape(40, -1))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    feeds = {"x": xs[0], "cache": rng.normal(0, 1, cache_shape).astype(np.float32)}
    ref = dict(zip(["y", "cache_out"], sess.run(None, feeds), strict=True))
    for k, v in run_like_onnx(model, feeds).items():
        np.testing.assert_allclose(v, ref[k], atol=1e-5, rtol=0, err_msg=k)


def test_a_cache_of_runtime_length_needs_its_shape(tmp_path, rng):
    path = tmp_path / "dynamic.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Cached(), (torch.zeros(1, 1, 4), torch.zeros(1, 4, 2)), str(path),
                          input_names=["x", "cache"], output_names=["y", "cache_out"],
                          opset_version=17, dynamo=False,
                          dynamic_axes={"cache": {2: "n"}, "cache_out": {2: "n"}})
    with pytest.raises(UnsupportedOpError, match=r"Concat node .*'cache' has a runtime "
                                                 r"length along its time axis 2; give it "
                                                 r"with input_shapes="):
        from_onnx(path)
    model = from_onnx(path, input_shapes={"cache": (1, 4, 2)})
    xs = rng.normal(0, 1, (30, 4)).astype(np.float32)
    sess = ort.InferenceSession(str(path))
    want = by_hand(lambda x, c: sess.run(None, {"x": x, "cache": c}),
                   [np.zeros((1, 4, 2), np.float32)], xs)
    np.testing.assert_allclose(model.stream().run(xs), want, atol=1e-5, rtol=0)
