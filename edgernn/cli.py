"""The ``edgernn`` command line.

    edgernn inspect MODEL                  layers table and provenance
    edgernn run MODEL --input xs.npy --output ys.npy
    edgernn bench MODEL [--steps N] [--json out.json]
    edgernn warmup                         compile the engine into Numba's disk cache
    edgernn convert SRC -o OUT.ernn        (needs edgernn[convert])
    edgernn bridge --port URL --model M    (needs edgernn[bridge])

User errors print one line to stderr and exit with status 2; no traceback.
``convert`` and ``bridge`` live in their own packages and are imported only
when chosen, so the runtime never imports converters or pyserial.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import import_module

import numpy as np

from . import __version__
from .errors import EdgeRNNError

#: subcommands provided by other packages: name -> (module, help)
EXTERNAL = {
    "convert": ("converters.cli", "convert an ONNX/PyTorch/Keras/TFLite model to .ernn"),
    "bridge": ("firmware_bridge.cli", "serve a model to a serial sensor link"),
    "denoise": ("edgernn.audio.cli", "denoise a sound file or a live device (edgernn[audio])"),
}


def _load(path):
    from .fileformat import load

    return load(path)


def cmd_inspect(args) -> int:
    from .fileformat import read_manifest

    model = _load(args.model)
    man = read_manifest(args.model)
    print(f"{args.model}: edgernn format {man['format_version']}, "
          f"written by {man['producer'].get('name')} {man['producer'].get('version')}")
    print(model.describe())
    prov = man.get("provenance") or {}
    if prov:
        print("provenance:")
        for k in sorted(prov):
            print(f"  {k}: {prov[k]}")
    else:
        print("provenance: (none recorded)")
    return 0


def cmd_run(args) -> int:
    model = _load(args.model)
    try:
        xs = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EdgeRNNError(f"cannot read {args.input}: {exc}") from None
    if not model.num_tokens:
        if xs.dtype.kind != "f" or xs.ndim != 2 or xs.shape[1] != model.input_size:
            raise EdgeRNNError(f"{args.input}: expected a float array of shape "
                               f"(T, {model.input_size}), got {xs.dtype} {xs.shape}")
        xs = xs.astype(np.float32)
    ys = model.stream(math=args.math).run(xs)
    np.save(args.output, ys)
    print(f"wrote {args.output}: {ys.shape[0]} steps x {ys.shape[1]} outputs")
    return 0


def cmd_bench(args) -> int:
    from . import benchmark

    model = _load(args.model)
    if not model.streamable:
        raise EdgeRNNError("bench times step(); this model has a Bidirectional layer")
    rng = np.random.default_rng(0)
    if model.num_tokens:
        xs = [np.array([t]) for t in rng.integers(0, model.num_tokens, 256)]
        seq = np.stack(xs).ravel()
    else:
        seq = rng.standard_normal((2048, model.input_size)).astype(np.float32)
        xs = list(seq)
    stream = model.stream()
    res = {"model": str(args.model), "steps": args.steps}
    res["step"] = benchmark.step_stats(stream, xs, args.steps)
    res["run_per_step_us"] = benchmark.run_per_step_us(model.stream(), seq)
    res["allocations"] = benchmark.allocations_per_step(model.stream(), xs[0])
    if not args.no_cold:
        res["cold_start"] = benchmark.cold_start_pair(args.model)
    s = res["step"]
    print(f"step   p50 {s['p50_us']:.2f} us  p99 {s['p99_us']:.2f} us  "
          f"p99.9 {s['p99.9_us']:.2f} us  (p99.9/p50 {s['p99.9_us'] / s['p50_us']:.2f}, "
          f"{s['n']} steps)")
    print(f"run    {res['run_per_step_us']:.2f} us per step")
    a = res["allocations"]
    print(f"alloc  {a['net_blocks_per_step']:.4f} blocks / {a['net_bytes_per_step']:.2f} bytes "
          f"per step net (step with out=)")
    if "cold_start" in res:
        c = res["cold_start"]
        print(f"start  import+load+first step: {c['warm_cache_s']:.3f} s with warm Numba cache, "
              f"{c['cold_cache_s']:.1f} s with an empty one")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


def cmd_warmup(args) -> int:
    import time

    from . import engine

    t0 = time.perf_counter()
    for name in engine.ENTRY_POINTS:
        engine.native(name)
    print(f"engine ready in {time.perf_counter() - t0:.1f} s (loaded from or written to "
          f"Numba's cache: the next process starts without compiling)")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgernn", description="Recurrent nets, one step at a time.")
    p.add_argument("--version", action="version", version=f"edgernn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    q = sub.add_parser("inspect", help="show a model's layers and provenance")
    q.add_argument("model")
    q.set_defaults(func=cmd_inspect)
    q = sub.add_parser("run", help="run a model over a .npy sequence")
    q.add_argument("model")
    q.add_argument("--input", required=True, help="xs.npy: float (T, input_size) or int (T,)")
    q.add_argument("--output", required=True, help="ys.npy to write")
    q.add_argument("--math", choices=["fast", "exact"], default="fast")
    q.set_defaults(func=cmd_run)
    q = sub.add_parser("bench", help="per-step latency, allocations, cold start")
    q.add_argument("model")
    q.add_argument("--steps", type=int, default=100_000)
    q.add_argument("--json", help="also write the figures as JSON here")
    q.add_argument("--no-cold", action="store_true", help="skip the cold-start subprocesses")
    q.set_defaults(func=cmd_bench)
    q = sub.add_parser("warmup", help="compile the engine once into the on-disk cache")
    q.set_defaults(func=cmd_warmup)
    for name, (_, help_) in EXTERNAL.items():
        sub.add_parser(name, help=help_, add_help=False)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in EXTERNAL:
            module_name, help_ = EXTERNAL[argv[0]]
            try:
                module = import_module(module_name)
            except ImportError as exc:
                extra = "convert" if argv[0] == "convert" else "bridge"
                raise EdgeRNNError(f"'edgernn {argv[0]}' needs the {extra} extra "
                                   f"(pip install 'edgernn[{extra}]'): {exc}") from None
            p = argparse.ArgumentParser(prog=f"edgernn {argv[0]}", description=help_)
            module.add_arguments(p)
            return int(module.run(p.parse_args(argv[1:])) or 0)
        parser = _parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (EdgeRNNError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"edgernn: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
