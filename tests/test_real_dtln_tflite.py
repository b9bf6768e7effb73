"""DTLN (breizhn/DTLN, MIT; ../shared/models/dtln): its published LiteRT stages (float and
dynamic-range int8) convert with ``from_tflite(states=)`` and stream step by step with
their state inside edgernn, against LiteRT with the state fed back by hand as the
authors' real-time loop does, on real recorded speech."""

import platform

import numpy as np
import pytest

from tests import litert_oracle, naive
from tests.helpers import need_module
from tests.real_models import dtln_magnitudes, model_file, speech_16k

BLOCKS = 2000
STATES = {1: {"input_3": "Identity_1"}, 2: {"input_5": "Identity_1"}}
#: LiteRT's arithmetic here is the one tests.litert_oracle emulates (x86-64, no FMA)
EMULATED_HERE = platform.machine() in ("x86_64", "AMD64")


def _litert_stage(path, inputs, builtin=False):
    """LiteRT, one thread, the state fed back by hand; ``builtin``: TFLite's own kernels
    (no XNNPack delegate), whose hybrid int8 arithmetic is the file's reference."""
    litert = need_module("ai_edge_litert.interpreter", "ai-edge-litert (the dev extra)")
    kw = {}
    if builtin:
        kw["experimental_op_resolver_type"] = \
            litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = litert.Interpreter(model_path=str(path), num_threads=1, **kw)
    it.allocate_tensors()
    ins = {len(d["shape"]): d["index"] for d in it.get_input_details()}   # pick by rank
    outs = {len(d["shape"]): d["index"] for d in it.get_output_details()}
    state = np.zeros((1, 2, 128, 2), np.float32)
    ys, states = [], []
    for x in inputs:
        it.set_tensor(ins[3], x[None, None].astype(np.float32))
        it.set_tensor(ins[4], state)
        it.invoke()
        ys.append(it.get_tensor(outs[3])[0, 0].copy())
        state = it.get_tensor(outs[4]).copy()
        states.append(state)
    return np.stack(ys), states


def _blocks(mags, phases, masks):
    """The authors' loop between the stages: ``irfft(mag * mask * e^{i phase})``."""
    return np.stack([np.fft.irfft(m * k * np.exp(1j * p)) for m, k, p in
                     zip(mags, masks, phases, strict=True)]).astype(np.float32)


@pytest.fixture(scope="module")
def speech():
    return dtln_magnitudes(speech_16k(BLOCKS * 128 / 16000 + 1), BLOCKS)


def test_a_state_input_without_states_names_the_pair_to_give():
    from converters import from_tflite
    from edgernn.errors import UnsupportedOpError

    with pytest.raises(UnsupportedOpError, match=r"input_3.*states=\{'input_3': 'Identity_1'\}"):
        from_tflite(model_file("dtln", "model_1.tflite"))
    with pytest.raises(UnsupportedOpError, match="'Identity' is \\[1, 1, 257\\]"):
        from_tflite(model_file("dtln", "model_1.tflite"), states={"input_3": "Identity"})
    with pytest.raises(UnsupportedOpError, match="'input_9' is not a graph input"):
        from_tflite(model_file("dtln", "model_1.tflite"), states={"input_9": "Identity_1"})


def test_float_stages_stream_like_litert_with_the_state_inside(speech):
    from converters import from_tflite

    mags, phases = speech
    p1, p2 = model_file("dtln", "model_1.tflite"), model_file("dtln", "model_2.tflite")
    m1 = from_tflite(p1, states=STATES[1])
    assert {t.name for t in m1.graph.nodes if type(t.op).__name__ == "State"} == {
        "input_3[0,0,:,0]", "input_3[0,0,:,1]", "input_3[0,1,:,0]", "input_3[0,1,:,1]"}
    masks, states = _litert_stage(p1, mags)
    got = m1.stream(math="exact").run(mags)
    np.testing.assert_allclose(got, masks, atol=1e-5, rtol=0)
    s = m1.stream(math="exact")
    np.testing.assert_array_equal(np.stack([s.step(m).copy() for m in mags[:100]]), got[:100])
    # the state inside is LiteRT's fed-back tensor, place by place: [0, layer, :, h|c]
    st = s.get_state()
    assert len(st.names) == 4
    for name, value in zip(st.names, st.arrays, strict=True):
        layer, hc = int(name.split(",")[1]), int(name.split(",")[3][0])
        np.testing.assert_allclose(value, states[99][0, layer, :, hc], rtol=1e-5, atol=1e-4)

    blocks = _blocks(mags, phases, masks)
    m2 = from_tflite(p2, states=STATES[2])
    kinds = {type(op).__name__ for op in m2.layers}
    assert {"State", "Reduce", "Unary", "Dense"} <= kinds and "LSTM" not in kinds
    want2, _ = _litert_stage(p2, blocks)
    got2 = m2.stream(math="exact").run(blocks)
    np.testing.assert_allclose(got2, want2, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got2[:200], naive.run(m2, blocks[:200]), atol=1e-5, rtol=0)


def test_the_cli_converts_a_tflite_stage_with_its_state(tmp_path, capsys):
    import edgernn
    from converters import from_tflite
    from edgernn.cli import main

    p2 = model_file("dtln", "model_2.tflite")
    assert main(["convert", str(p2), "-o", str(tmp_path / "s2.ernn"), "--state",
                 "input_5=Identity_1"]) == 0
    assert "state carried inside" in capsys.readouterr().out
    assert main(["convert", str(p2), "-o", str(tmp_path / "x.ernn")]) == 2
    assert "--state input_5=Identity_1" in capsys.readouterr().err
    xs = np.random.default_rng(0).normal(0, 0.1, (50, 512)).astype(np.float32)
    want = from_tflite(p2, states=STATES[2]).stream().run(xs)
    np.testing.assert_array_equal(edgernn.load(tmp_path / "s2.ernn").stream().run(xs), want)
    q1 = model_file("dtln", "model_quant_1.tflite")   # int8 weights and state survive the file
    assert main(["convert", str(q1), "-o", str(tmp_path / "q1.ernn"), "--state",
                 "input_3=Identity_1"]) == 0
    assert "int8-weights" in capsys.readouterr().out
    mags = np.abs(np.random.default_rng(1).normal(0, 1, (50, 257))).astype(np.float32)
    want = from_tflite(q1, states=STATES[1]).stream().run(mags)
    np.testing.assert_array_equal(edgernn.load(tmp_path / "q1.ernn").stream().run(mags), want)


def _forced(model, path, xs):
    """Each block from LiteRT's own fed-back state (``set_state``), so a difference does
    not carry over: per block, the largest |edgernn - LiteRT| of the output, and of the
    new state relative to its largest |value| (at least 1: |c| reaches ~100, where
    float32's resolution is 8e-6)."""
    from edgernn import StreamState

    want, states = _litert_stage(path, xs, builtin=True)
    s = model.stream(math="exact")
    names = s.get_state().names
    where = [(int(n.split(",")[1]), int(n.split(",")[3][0])) for n in names]  # layer, h|c
    prev = np.zeros((1, 2, 128, 2), np.float32)
    dy, ds = [], []
    for k, x in enumerate(xs):
        s.set_state(StreamState(names, tuple(prev[0, la, :, hc].copy() for la, hc in where)))
        dy.append(np.abs(s.step(x) - want[k]).max())
        st = s.get_state()
        ds.append(max(np.abs(a - states[k][0, la, :, hc]).max()
                      for a, (la, hc) in zip(st.arrays, where, strict=True))
                  / max(1.0, np.abs(states[k]).max()))
        prev = states[k]
    return want, np.array(dy), np.array(ds)


def _overlap_add(blocks):
    """The authors' output buffer: each 512-sample block added 128 samples later."""
    buf, out = np.zeros(512, np.float32), []
    for b in blocks:
        buf = np.concatenate([buf[128:], np.zeros(128, np.float32)]) + b
        out.append(buf[:128])
    return np.concatenate(out)


def _oracle_stage(path, inputs):
    """:class:`tests.litert_oracle.Interpreter` on a stage, the state fed back by hand as
    :func:`_litert_stage` does: the outputs, stacked."""
    it = litert_oracle.Interpreter(path.read_bytes())
    state = np.zeros((1, 2, 128, 2), np.float32)
    ys = []
    for x in inputs:
        y, state = it(x[None, None], state)
        ys.append(y[0, 0])
    return np.stack(ys)


def test_int8_stages_compute_as_litert_free_running(speech):
    """model_quant_*: int8 weights with LiteRT's own per-tensor scales, inputs quantised
    per call, converted with ``arithmetic="litert"`` (the default for such files): the
    activations, the mean, the input quantisation and the bias add as LiteRT's builtin
    kernels compute them on x86-64 (:mod:`converters.tflite.litert_math`).

    On every CPU, free-running over 2000 blocks, each stage and the whole pipeline equal
    :mod:`tests.litert_oracle` (that arithmetic in numpy) bit for bit. On x86-64, LiteRT
    computes it too: from LiteRT's own state every block equals LiteRT's bit for bit
    (states too, but for subnormal values, which edgernn flushes to zero), and the
    oracle equals LiteRT free-running. Elsewhere LiteRT is another arithmetic (aarch64:
    fused multiply-adds in its activations and its FC's bias): a last-bit difference
    moves a quantised input one step and, free-running, the state with it. Measured
    under QEMU (cortex-a72, LiteRT 2.3's aarch64 wheel) against x86-64: from LiteRT's
    own state 1.5e-3 at worst (one block of 2000; 1.2e-7 on stage 2), free-running
    5.2e-2 on the mask, 4.4e-3 on stage 2, 7.4e-3 on the pipeline's samples: as far
    apart as edgernn's own arithmetic is from LiteRT on x86-64 (4.1e-2 on the mask)."""
    from converters import from_tflite

    mags, phases = speech
    q1, q2 = model_file("dtln", "model_quant_1.tflite"), model_file("dtln", "model_quant_2.tflite")
    m1 = from_tflite(q1, states=STATES[1])
    m2 = from_tflite(q2, states=STATES[2])
    for m, n in ((m1, 5), (m2, 7)):
        assert m.provenance["arithmetic"] == "litert"
        layers = m.quantization["layers"]
        assert sum(e["precision"] == "int8-weights" for e in layers) == n
        assert not any(e["dynamic_zero_point"] for e in layers if "dynamic_zero_point" in e)
        acts = {t.op.name for t in m.graph.nodes if type(t.op).__name__ == "Activation"}
        assert acts == {"sigmoid_litert", "tanh_litert"}
    # free-running, the state inside, against the oracle: bit for bit on every CPU
    o_masks = _oracle_stage(q1, mags)
    o_blocks = _blocks(mags, phases, o_masks)
    o_y2 = _oracle_stage(q2, o_blocks)
    got1 = m1.stream(math="exact").run(mags)
    np.testing.assert_array_equal(got1, o_masks)
    s = m1.stream(math="exact")
    np.testing.assert_array_equal(np.stack([s.step(m).copy() for m in mags[:100]]), got1[:100])
    np.testing.assert_array_equal(m2.stream().run(o_blocks), o_y2)
    # the whole pipeline: edgernn's masks make edgernn's blocks for its stage 2
    got_out = _overlap_add(m2.stream().run(_blocks(mags, phases, got1)))
    o_out = _overlap_add(o_y2)
    assert o_out.std() > 1e-3
    np.testing.assert_array_equal(got_out, o_out)
    # against LiteRT itself: from its own state at each block, then free-running
    masks, dy, ds = _forced(m1, q1, mags)
    blocks = _blocks(mags, phases, masks)
    want2, dy2, ds2 = _forced(m2, q2, blocks)
    want_out = _overlap_add(want2)
    if EMULATED_HERE:
        assert dy.max() == 0 and ds.max() < 1e-30
        assert dy2.max() == 0 and ds2.max() < 1e-30
        # the oracle cannot drift: it is LiteRT's x86-64 arithmetic, free-running too
        np.testing.assert_array_equal(o_masks, masks)
        np.testing.assert_array_equal(o_y2, want2)
        np.testing.assert_array_equal(got_out, want_out)
    else:   # another arithmetic (docstring): tolerances above the measured figures
        assert max(dy.max(), ds.max(), dy2.max(), ds2.max()) <= 5e-3
        assert np.abs(got1 - masks).max() <= 0.1
        assert np.abs(m2.stream().run(blocks) - want2).max() <= 2e-2
        assert np.abs(got_out - want_out).max() <= 2e-2
    # the oracle has teeth: edgernn's own arithmetic leaves it
    own = from_tflite(q1, states=STATES[1], arithmetic="edgernn")
    assert "arithmetic" not in own.provenance
    assert np.abs(own.stream(math="exact").run(mags) - o_masks).max() > 2e-3
