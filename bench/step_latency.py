"""Per-step latency of edgernn against ONNX Runtime, LiteRT and torch, side by side.

    .venv/bin/python bench/step_latency.py [--steps 100000] [--peer-steps 20000]

For the reference nets S, M, L of BENCH.md (one stream, state carried from step
to step, standard-normal float32 inputs): ``Stream.step`` p50/p99/p99.9 from
Python, ``Stream.run`` per step, allocations per step, cold start with and
without the Numba cache; the same weights streamed one step per call through
ONNX Runtime (one thread, state fed back), LiteRT f32 and dynamic-range int8
(one thread, ``bench/models/*.tflite``, skipped with a reason when absent) and
torch eager. Every peer's streamed outputs are checked against PyTorch first.
``run`` per step of single GRU/LSTM layers is compared with the RTNeural
figures of BENCH.md. Writes ``bench/out/step_latency.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from nets import build_torch, to_edgernn, torch_reference  # noqa: E402

import edgernn  # noqa: E402
from edgernn import benchmark  # noqa: E402

OUT = HERE / "out"
RTNEURAL_NS = {("GRU", 16, 32): 146, ("GRU", 42, 96): 1294, ("GRU", 64, 256): 7453,
               ("LSTM", 16, 32): 162, ("LSTM", 42, 96): 1672, ("LSTM", 64, 256): 10125}
CHECK_STEPS = 200


class _OneStep(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.lstm = net, isinstance(net.rnn, torch.nn.LSTM)

    def forward(self, x, h, c=None):
        state = (h, c) if self.lstm else h
        y, st = self.net(x, state)
        return (y, *st) if self.lstm else (y, st)


def ort_stepper(net, in_size):
    import onnxruntime as ort

    layers, hid = net.rnn.num_layers, net.rnn.hidden_size
    lstm = isinstance(net.rnn, torch.nn.LSTM)
    x = torch.zeros(1, in_size)
    h = torch.zeros(layers, hid)
    args = (x, h, torch.zeros(layers, hid)) if lstm else (x, h)
    names = ["x", "h0", "c0"][: len(args)]
    buf = io.BytesIO()
    torch.onnx.export(_OneStep(net), args, buf, input_names=names, dynamo=False,
                      output_names=["y", "hn", "cn"][: len(args)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    state = [a.numpy() for a in args[1:]]
    feed = {}

    def step(xv):
        feed["x"] = xv.reshape(1, -1)
        for n, s in zip(names[1:], state, strict=True):
            feed[n] = s
        out = sess.run(None, feed)
        state[:] = out[1:]
        return out[0][0]
    return step


def litert_stepper(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def step(xv):
        it.set_tensor(i, xv.reshape(1, 1, -1))
        it.invoke()
        return it.get_tensor(o)[0]
    return step


def torch_stepper(net):
    state = [None]

    def step(xv):
        with torch.no_grad():
            y, state[0] = net(torch.from_numpy(xv).reshape(1, -1), state[0])
        return y[0].numpy()
    return step


def check(stepper, xs, ref):
    got = np.stack([np.asarray(stepper(x)).copy() for x in xs[:CHECK_STEPS]])
    return float(np.abs(got - ref[:CHECK_STEPS]).max())


def bench_net(name, args, model_dir):
    net = build_torch(name).eval()
    model = to_edgernn(net)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4096, model.input_size)).astype(np.float32)
    ref = torch_reference(net, xs)
    res = {"net": name, "macs_per_step": sum(layer.macs() for layer in model.layers), "peers": {}}
    s = model.stream()
    res["edgernn_max_abs_diff_vs_torch"] = float(np.abs(s.run(xs) - ref).max())
    res["edgernn_step"] = benchmark.step_stats(model.stream(), list(xs), args.steps)
    res["edgernn_run_per_step_us"] = benchmark.run_per_step_us(model.stream(), xs)
    res["edgernn_allocations"] = benchmark.allocations_per_step(model.stream(), xs[0])
    peers = {"onnxruntime": lambda: ort_stepper(net, model.input_size),
             "torch_eager": lambda: torch_stepper(net)}
    for kind in ("f32", "drq"):
        p = model_dir / f"{name}_{kind}.tflite"
        if p.exists():
            peers[f"litert_{kind}"] = lambda p=p: litert_stepper(p)
        else:
            res["peers"][f"litert_{kind}"] = {"skipped": f"{p} not found"}
    for peer, make in peers.items():
        try:
            err = check(make(), xs, ref)
            stats = benchmark.percentiles(benchmark.time_steps(
                make(), list(xs), args.peer_steps if peer != "torch_eager" else 5000))
            res["peers"][peer] = {"max_abs_diff_vs_torch": err, "step": stats}
        except Exception as exc:  # a peer failing is reported, not fatal
            res["peers"][peer] = {"skipped": f"{type(exc).__name__}: {exc}"}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}.ernn"
        model.save(path)
        res["cold_start"] = benchmark.cold_start_pair(path)
    return res


def bench_rtneural():
    rows = []
    rng = np.random.default_rng(0)
    for (kind, i, h), ns in RTNEURAL_NS.items():
        g = 4 if kind == "LSTM" else 3
        layer = getattr(edgernn, kind)((rng.standard_normal((g * h, i)) / np.sqrt(h)).astype(
            np.float32), (rng.standard_normal((g * h, h)) / np.sqrt(h)).astype(np.float32),
            np.zeros(g * h, np.float32), np.zeros(g * h, np.float32))
        xs = rng.standard_normal((4096, i)).astype(np.float32)
        us = benchmark.run_per_step_us(edgernn.Model([layer]).stream(), xs)
        rows.append({"layer": f"{kind} {i}->{h}", "edgernn_run_ns": us * 1e3,
                     "rtneural_ns": ns, "ratio": us * 1e3 / ns})
    return rows


def report(results, rt):
    print(f"\n{'net':<4}{'runtime':<16}{'p50 us':>9}{'p99 us':>9}{'p99.9 us':>10}"
          f"{'max|diff|':>11}{'edgernn/peer':>14}")
    for r in results:
        e = r["edgernn_step"]
        print(f"{r['net']:<4}{'edgernn step':<16}{e['p50_us']:>9.2f}{e['p99_us']:>9.2f}"
              f"{e['p99.9_us']:>10.2f}{r['edgernn_max_abs_diff_vs_torch']:>11.1e}")
        for peer, p in r["peers"].items():
            if "skipped" in p:
                print(f"{'':<4}{peer:<16} skipped: {p['skipped']}")
                continue
            st = p["step"]
            print(f"{'':<4}{peer:<16}{st['p50_us']:>9.2f}{st['p99_us']:>9.2f}"
                  f"{st['p99.9_us']:>10.2f}{p['max_abs_diff_vs_torch']:>11.1e}"
                  f"{e['p50_us'] / st['p50_us']:>14.2f}")
        a, c = r["edgernn_allocations"], r["cold_start"]
        print(f"{'':<4}run {r['edgernn_run_per_step_us']:.2f} us/step; p99.9/p50 "
              f"{e['p99.9_us'] / e['p50_us']:.2f}; {a['net_blocks_per_step']:.4f} blocks/step net; "
              f"start {c['warm_cache_s']:.2f} s warm cache, {c['cold_cache_s']:.1f} s cold")
    print(f"\n{'layer':<16}{'edgernn run ns':>16}{'RTNeural ns':>13}{'ratio':>8}  (target <= 1.2)")
    for row in rt:
        print(f"{row['layer']:<16}{row['edgernn_run_ns']:>16.0f}{row['rtneural_ns']:>13}"
              f"{row['ratio']:>8.2f}")


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.6))
    for ax, r in zip(np.atleast_1d(axes), results, strict=True):
        names = ["edgernn"] + [k for k, v in r["peers"].items() if "step" in v]
        vals = [r["edgernn_step"]] + [r["peers"][k]["step"] for k in names[1:]]
        x = np.arange(len(names))
        ax.bar(x - 0.2, [v["p50_us"] for v in vals], 0.4, label="p50")
        ax.bar(x + 0.2, [v["p99.9_us"] for v in vals], 0.4, label="p99.9")
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_title(f"net {r['net']}: step latency (us)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--peer-steps", type=int, default=20_000)
    ap.add_argument("--nets", default="S,M,L")
    ap.add_argument("--models", type=Path, default=HERE / "models")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = [bench_net(n, args, args.models) for n in args.nets.split(",")]
    rt = bench_rtneural()
    report(results, rt)
    OUT.mkdir(exist_ok=True)
    meta = {"machine": platform.machine(), "processor": platform.processor(),
            "python": platform.python_version(), "numpy": np.__version__,
            "cpus": os.cpu_count(), "edgernn": edgernn.__version__}
    (OUT / "step_latency.json").write_text(json.dumps(
        {"meta": meta, "nets": results, "rtneural": rt}, indent=1))
    plot(results, OUT / "step_latency.png")
    print(f"\nwrote {OUT / 'step_latency.json'} and {OUT / 'step_latency.png'}")


if __name__ == "__main__":
    main()
