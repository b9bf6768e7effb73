"""int8 accuracy of edgernn against LiteRT and ONNX Runtime dynamic-range int8, side by side.

    .venv/bin/python bench/quant_accuracy.py [--steps 2000] [--seeds 5]
        [--drift-steps 1000000] [--drift-nets S,M]

For the reference nets S, M, L of BENCH.md and two kinds of input (standard
normal; sines plus noise), each streamed one step at a time from zero state over
the same inputs (``--seeds`` sequences of ``--steps`` steps), in the edgernn
engine and in the peers' runtimes:

- edgernn ``int8`` (static), ``int8-weights`` with symmetric per-call inputs
  (``dynamic="symmetric"``) and ``int8-weights-asym`` (``dynamic="asymmetric"``,
  the default: LiteRT's and ONNX Runtime's input scheme), quantised by
  ``converters.quantize`` on calibration data of the same kind (other seeds);
- LiteRT dynamic-range int8 (``bench/models/*_drq.tflite``, made by
  ``make_litert_models.py``; a net whose weights LiteRT left float is marked);
- ONNX Runtime ``quantize_dynamic(per_channel=True, weight_type=QInt8)`` of the
  one-step ONNX export (x, h0[, c0] -> y, hn[, cn]); ops it left float are named.

Each: max abs error against the float model (edgernn float32, checked against
PyTorch) over all seeds, the median of the per-seed maxima (the max of one
2000-step run moves by several per cent between equivalent arithmetics: a
rounding flip of one input element propagates through the state), and the
RMS. Also the ``.ernn`` size of each int8 model against the float one (M, L,
real saved files) and a long-stream drift check of int8 S and M (error and
output level per window over ``--drift-steps`` steps). Writes
``bench/out/quant_accuracy.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from nets import build_torch, to_edgernn, torch_reference  # noqa: E402
from peers import _OneStep  # noqa: E402
from peers import litert as litert_stepper  # noqa: E402

import converters  # noqa: E402
import edgernn  # noqa: E402

OUT = HERE / "out"


def inputs(kind: str, T: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return rng.standard_normal((T, size)).astype(np.float32)
    t = np.arange(T)[:, None]
    f = rng.uniform(0.01, 0.2, size)
    ph = rng.uniform(0, 2 * np.pi, size)
    return (np.sin(f * t + ph) + 0.2 * rng.standard_normal((T, size))).astype(np.float32)


def ort_quantized_stepper(net, in_size):
    """Stepper of the ONNX Runtime ``quantize_dynamic`` model, and the ops it left float."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    layers, hid = net.rnn.num_layers, net.rnn.hidden_size
    lstm = isinstance(net.rnn, torch.nn.LSTM)
    h = torch.zeros(layers, hid)
    args = (torch.zeros(1, in_size), h, torch.zeros(layers, hid)) if lstm else \
        (torch.zeros(1, in_size), h)
    names = ["x", "h0", "c0"][: len(args)]
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "f.onnx", Path(d) / "q.onnx"
        buf = io.BytesIO()
        torch.onnx.export(_OneStep(net), args, buf, input_names=names, dynamo=False,
                          output_names=["y", "hn", "cn"][: len(args)])
        src.write_bytes(buf.getvalue())
        quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8)
        qm = onnx.load(str(dst))
        data = dst.read_bytes()
    ops = [n.op_type for n in qm.graph.node]
    float_ops = [o for o in ops if o in ("LSTM", "GRU", "RNN", "MatMul", "Gemm")]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    state = [a.numpy() for a in args[1:]]

    def step(xv):
        feed = {"x": xv.reshape(1, -1), **dict(zip(names[1:], state, strict=True))}
        out = sess.run(None, feed)
        state[:] = out[1:]
        return out[0][0]
    return step, sorted(set(float_ops)), sorted(set(ops) - {"Constant"})


def litert_left_float(path) -> bool:
    from converters.tflite.schema import read_tflite

    m = read_tflite(Path(path).read_bytes())
    return not any(t.type_code == 9 and t.data is not None
                   for sg in m.subgraphs for t in sg.tensors)


def stream(stepper, xs):
    return np.stack([np.asarray(stepper(x), np.float32).reshape(-1).copy() for x in xs])


def err(got, ref) -> dict:
    e = np.asarray(got, np.float64) - ref
    return {"max_abs": float(np.abs(e).max()), "rms": float(np.sqrt(np.mean(e * e)))}


def file_sizes(model, qmodels) -> dict:
    """Bytes of the float .ernn and of each int8 one, as saved."""
    with tempfile.TemporaryDirectory() as d:
        model.save(Path(d) / "f.ernn")
        out = {"float_bytes": (Path(d) / "f.ernn").stat().st_size}
        for key, q in qmodels.items():
            q.save(Path(d) / "q.ernn")
            n = (Path(d) / "q.ernn").stat().st_size
            out[key] = {"bytes": n, "ratio": round(n / out["float_bytes"], 4)}
    return out


def drift(qmodel, model, steps, size, window=100_000, chunk=10_000):
    """The int8 and float streams side by side over ``steps`` steps of structured input,
    state carried. Per window: max abs and RMS error, output std of each, and the
    largest |state| (h, c) of each, sampled at every chunk's end. Verdicts: no drift
    (the last window's error is not above the first's), within the reported error
    (every window's RMS within 1.5x the held-out RMS of the report; the max is given
    as a ratio), no collapse (output std within 10% of float's), no saturation (the
    int8 stream's state never exceeds the float stream's by more than 5%)."""
    window = min(window, steps)
    qs, fs = qmodel.stream(), model.stream()
    rows, done, k = [], 0, 0

    def fresh():
        return {"max": 0.0, "se": 0.0, "n": 0, "q": [], "f": [], "sq": 0.0, "sf": 0.0}

    cur = fresh()
    while done < steps:
        n = min(chunk, steps - done)
        xs = inputs("structured", n, size, seed=10_000 + k)
        k += 1
        yq, yf = qs.run(xs), fs.run(xs)
        e = (yq - yf).astype(np.float64)
        cur["max"] = max(cur["max"], float(np.abs(e).max()))
        cur["se"] += float((e * e).sum())
        cur["n"] += e.size
        cur["q"].append(yq[::10])
        cur["f"].append(yf[::10])
        cur["sq"] = max(cur["sq"], max(float(np.abs(a).max()) for a in qs.get_state().arrays))
        cur["sf"] = max(cur["sf"], max(float(np.abs(a).max()) for a in fs.get_state().arrays))
        done += n
        if done % window == 0 or done == steps:
            q, f = np.concatenate(cur["q"]), np.concatenate(cur["f"])
            rows.append({"end_step": done, "max_abs": cur["max"],
                         "rms": float(np.sqrt(cur["se"] / cur["n"])),
                         "std_int8": float(q.std()), "std_float": float(f.std()),
                         "state_max_int8": cur["sq"], "state_max_float": cur["sf"]})
            cur = fresh()
    first, last = rows[0], rows[-1]
    rep = qmodel.quantization["end_to_end"]["held_out"]
    return {"steps": steps, "windows": rows, "reported_held_out": rep,
            "no_drift": last["max_abs"] <= 2 * first["max_abs"] and
            last["rms"] <= 1.2 * first["rms"],
            "within_reported_rms": all(r["rms"] <= 1.5 * rep["rms"] for r in rows),
            "max_over_reported_max": max(r["max_abs"] for r in rows) / rep["max_abs"],
            "no_collapse": all(0.9 < r["std_int8"] / r["std_float"] < 1.1 for r in rows),
            "no_saturation": all(r["state_max_int8"] <= 1.05 * r["state_max_float"]
                                 for r in rows)}


def combine(runs: list) -> dict:
    """Errors over several input seeds: the max over all of them, the median of the
    per-seed maxima, the RMS over all steps, and the per-seed maxima."""
    maxes = [r["max_abs"] for r in runs]
    return {"max_abs": max(maxes), "median_max_abs": float(np.median(maxes)),
            "rms": float(np.sqrt(np.mean([r["rms"] ** 2 for r in runs]))),
            "per_seed_max_abs": maxes}


def bench_net(name, args):
    net = build_torch(name).eval()
    model = to_edgernn(net)
    I = model.input_size
    res = {"net": name, "inputs": {}}
    litert_path = args.models / f"{name}_drq.tflite"
    left = litert_left_float(litert_path) if litert_path.exists() else None
    _, ort_float_ops, ort_ops = ort_quantized_stepper(net, I)
    res["litert_left_float"] = left
    res["onnxruntime_ops"], res["onnxruntime_float_ops"] = ort_ops, ort_float_ops
    qmodels = {}
    for kind in ("gaussian", "structured"):
        calib = np.stack([inputs(kind, args.calib_steps, I, seed=100 + s) for s in range(8)])
        row, runs = {}, {}
        for mode, dyn in (("int8", "symmetric"), ("int8-weights", "symmetric"),
                          ("int8-weights", "asymmetric")):
            t0 = time.perf_counter()
            q = converters.quantize(model, calib, mode=mode, progress=False, dynamic=dyn)
            key = mode + ("-asym" if dyn == "asymmetric" else "")
            qmodels[(kind, key)] = q
            row[f"edgernn_{key}"] = {"quantise_s": round(time.perf_counter() - t0, 2),
                                     "reported_held_out": q.quantization["end_to_end"]
                                     ["held_out"]}
        torch_diff = 0.0
        for seed in range(1, args.seeds + 1):
            xs = inputs(kind, args.steps, I, seed=seed)
            ref = model.stream().run(xs).astype(np.float64)
            torch_diff = max(torch_diff, float(np.abs(torch_reference(net, xs) - ref).max()))
            got = {f"edgernn_{key}": qmodels[(kind, key)].stream().run(xs)
                   for key in ("int8", "int8-weights", "int8-weights-asym")}
            if left is not None:
                got["litert_drq"] = stream(litert_stepper(litert_path), xs)
            got["onnxruntime_dynamic"] = stream(ort_quantized_stepper(net, I)[0], xs)
            for peer, ys in got.items():
                runs.setdefault(peer, []).append(err(ys, ref))
        for peer, rs in runs.items():
            row.setdefault(peer, {}).update(combine(rs))
        row["float_vs_torch_max_abs"] = torch_diff
        if left is not None:
            row["litert_drq"]["left_float"] = left
        row["onnxruntime_dynamic"]["left_float_ops"] = ort_float_ops
        res["inputs"][kind] = row
        print(f"{name} {kind:<10}" + "".join(
            f"  {k.replace('edgernn_', '')}: {v['max_abs']:.2e} ({v['median_max_abs']:.2e})"
            for k, v in row.items() if isinstance(v, dict) and "max_abs" in v))
    if name in ("M", "L"):
        res["size"] = file_sizes(model, {k: qmodels[("structured", k)] for k in
                                         ("int8", "int8-weights", "int8-weights-asym")})
        print(f"{name} int8/float .ernn size: " + ", ".join(
            f"{k} {v['ratio']:.3f}" for k, v in res["size"].items() if isinstance(v, dict)))
    if name in args.drift_nets.split(",") and args.drift_steps:
        t0 = time.perf_counter()
        res["drift"] = drift(qmodels[("structured", "int8")], model, args.drift_steps, I)
        res["drift"]["seconds"] = round(time.perf_counter() - t0, 1)
        d = res["drift"]
        w0, w1 = d["windows"][0], d["windows"][-1]
        print(f"{name} drift over {d['steps']} steps: max {w0['max_abs']:.2e} -> "
              f"{w1['max_abs']:.2e}, rms {w0['rms']:.2e} -> {w1['rms']:.2e} (reported "
              f"held-out rms {d['reported_held_out']['rms']:.2e}); no drift {d['no_drift']}, "
              f"within reported rms {d['within_reported_rms']}, max/reported max "
              f"{d['max_over_reported_max']:.2f}, no collapse {d['no_collapse']}, "
              f"no saturation {d['no_saturation']}")
    return res


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = ("gaussian", "structured")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    peers = ["edgernn_int8", "edgernn_int8-weights", "edgernn_int8-weights-asym", "litert_drq",
             "onnxruntime_dynamic"]
    for ax, kind in zip(axes, kinds, strict=True):
        x = np.arange(len(results))
        for j, p in enumerate(peers):
            vals, marks = [], []
            for r in results:
                v = r["inputs"][kind].get(p)
                vals.append(v["max_abs"] if v else np.nan)
                lf = v and (v.get("left_float") or (p == "onnxruntime_dynamic" and any(
                    o in ("LSTM", "GRU") for o in v.get("left_float_ops", []))))
                marks.append("float" if lf else "")
            bars = ax.bar(x + (j - 2) * 0.16, vals, 0.16, label=p)
            for b, m in zip(bars, marks, strict=True):
                if m:
                    ax.annotate(m, (b.get_x() + b.get_width() / 2, b.get_height()),
                                ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_xticks(x, [r["net"] for r in results])
        ax.set_yscale("log")
        ax.set_title(f"{kind} input: max abs error vs float")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="steps per input seed")
    ap.add_argument("--seeds", type=int, default=5, help="input sequences per net and kind")
    ap.add_argument("--calib-steps", type=int, default=500)
    ap.add_argument("--drift-steps", type=int, default=1_000_000)
    ap.add_argument("--drift-nets", default="S,M")
    ap.add_argument("--nets", default="S,M,L")
    ap.add_argument("--models", type=Path, default=HERE / "models")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = [bench_net(n, args) for n in args.nets.split(",")]
    OUT.mkdir(exist_ok=True)
    meta = {"machine": platform.machine(), "python": platform.python_version(),
            "edgernn": edgernn.__version__,
            "args": {k: str(v) for k, v in vars(args).items()}}
    (OUT / "quant_accuracy.json").write_text(json.dumps({"meta": meta, "nets": results},
                                                        indent=1))
    plot(results, OUT / "quant_accuracy.png")
    print(f"wrote {OUT / 'quant_accuracy.json'} and {OUT / 'quant_accuracy.png'}")


if __name__ == "__main__":
    main()
