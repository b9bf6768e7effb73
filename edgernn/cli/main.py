"""The ``edgernn`` command line.

    edgernn inspect MODEL [--json]         layers table, provenance, manifest hash, signature
    edgernn run MODEL --input xs.npy --output ys.npy [--force]
    edgernn bench MODEL [--steps N] [--json out.json]
    edgernn warmup                         compile the engine into Numba's disk cache
    edgernn convert SRC -o OUT.ernn        (needs edgernn[convert])
    edgernn bridge --port URL --model M    (needs edgernn[bridge])
    edgernn keygen NAME                    NAME.key + NAME.pub (needs edgernn[sign])
    edgernn sign MODEL --key K -o OUT      a signed copy (needs edgernn[sign])

``inspect``, ``run`` and ``bridge`` take ``--public-key K.pub`` to require a
model signed with that key. User errors print one line to stderr and exit with
status 2; no traceback (an unknown flag also prints the usage). ``run``,
``convert`` and ``sign`` never write over their inputs, replace an existing
output only with ``--force``, and write atomically. ``convert`` and ``bridge``
live in their own packages and are imported only when chosen, so the runtime
never imports converters or pyserial.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import import_module

import numpy as np

from ..errors import EdgeRNNError
from ..version import __version__
from .util import Parser, int_range, os_error_line

#: subcommands provided by other packages: name -> (module, help)
EXTERNAL = {
    "convert": ("converters.cli", "convert an ONNX/PyTorch/Keras/TFLite model to .ernn"),
    "bridge": ("firmware_bridge.cli", "serve a model to a serial sensor link"),
    "sign": ("edgernn.cli.sign", "sign a model file with an Ed25519 key (edgernn[sign])"),
    "keygen": ("edgernn.cli.keygen", "make an Ed25519 key pair for signing models"),
    "serve": ("edgernn_serve.cli", "run the on-device daemon from a TOML config (edgernn[daemon])"),
    "denoise": ("edgernn.audio.cli", "denoise a sound file or a live device (edgernn[audio])"),
    "vad": ("edgernn.audio.vad", "speech segments of a sound file (edgernn[audio])"),
}
_EXTRA = {"convert": "convert", "bridge": "bridge", "sign": "sign", "keygen": "sign",
          "serve": "daemon", "denoise": "audio", "vad": "audio"}


def _load(path, public_key=None):
    from ..model import load

    return load(path, require_signature=public_key is not None, public_key=public_key)


def _inspect_info(args, model) -> dict:
    man = model.manifest
    producer = man.get("producer")
    signature = None if model.signature is None else {
        "key_sha256": model.signature["key_sha256"], "verified": model.signed_by is not None}
    return {
        "path": str(args.model), "format": man.get("format"),
        "format_version": man.get("format_version"),
        "producer": producer if isinstance(producer, dict) else {},
        "manifest_sha256": model.manifest_sha256,
        "manifest_hash_stored": model.manifest_hash_stored, "signature": signature,
        "input_size": model.input_size, "output_size": model.output_size,
        "num_tokens": model.num_tokens, "streamable": model.streamable,
        "return_sequences": model.return_sequences, "layers": model.summary_rows(),
        "provenance": model.provenance, "quantization": man.get("quantization"),
    }


def cmd_inspect(args) -> int:
    model = _load(args.model, args.public_key)
    info = _inspect_info(args, model)
    if args.json:
        print(json.dumps(info, indent=1, sort_keys=True, default=str))
        return 0
    prod = info["producer"]
    print(f"{args.model}: edgernn format {info['format_version']}, written by "
          f"{prod.get('name', '(unknown)')} {prod.get('version', '')}".rstrip())
    sig = info["signature"]
    print(f"manifest sha256 {info['manifest_sha256']}"
          f"{'' if info['manifest_hash_stored'] else ' (no hash stored: format 1.0)'}; "
          + ("unsigned" if sig is None else f"signed by key {sig['key_sha256'][:16]}... "
             + ("(verified)" if sig["verified"] else "(not checked: give --public-key)")))
    print(model.describe())
    if info["quantization"]:
        from ..model.quant_report import format_report

        print(format_report(info["quantization"]))
    prov = info["provenance"]
    print("provenance:" if prov else "provenance: (none recorded)")
    for k in sorted(prov):
        print(f"  {k}: {prov[k]}")
    return 0


def _read_input(path, model) -> np.ndarray:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic[:2] != b"PK" and magic != b"\x93NUMPY":
        raise EdgeRNNError(f"{path}: not a .npy file (it starts with {magic!r}, not the .npy "
                           f"magic)")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)  # sizes checked, nothing read
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise EdgeRNNError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive
        names = list(arr.files)
        arr.close()
        raise EdgeRNNError(f"{path}: an .npz archive holding {names[:5]}; expected one .npy "
                           f"array (np.save)")
    if model.num_tokens:
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise EdgeRNNError(f"{path}: expected int token ids of shape (T,), got {arr.dtype} "
                               f"{arr.shape}")
    elif arr.dtype.kind != "f" or arr.ndim != 2 or arr.shape[1] != model.input_size:
        raise EdgeRNNError(f"{path}: expected a float array of shape (T, {model.input_size}), "
                           f"got {arr.dtype} {arr.shape}")
    if arr.shape[0] == 0:
        raise EdgeRNNError(f"{path}: holds no steps (shape {arr.shape}); nothing to run")
    return np.array(arr, dtype=np.int64 if model.num_tokens else np.float32)


def _nonfinite_rows(a: np.ndarray) -> int:
    a = np.asarray(a)
    return 0 if a.dtype.kind != "f" else int((~np.isfinite(a.reshape(len(a), -1))).any(1).sum())


def cmd_run(args) -> int:
    from .util import output_path, write_npy

    out = output_path(args.output, [args.model, args.input], args.force, suffix=".npy")
    model = _load(args.model, args.public_key)
    xs = _read_input(args.input, model)
    stream = model.stream(math=args.math)
    ys = stream.run(xs)
    write_npy(out, ys)
    print(f"wrote {out}: {ys.shape[0]} steps x {ys.shape[1]} outputs")
    for what, arr in (("input", xs), ("output", ys)):
        bad = _nonfinite_rows(arr)
        if bad:
            print(f"edgernn run: warning: {bad} of {len(arr)} {what} rows hold NaN or Inf",
                  file=sys.stderr)
    if stream.nonfinite_steps:
        n = stream.nonfinite_steps
        print(f"edgernn run: warning: {n} step{'s' if n != 1 else ''} gave a non-finite "
              f"state (reset to zero)", file=sys.stderr)
    return 0


def cmd_bench(args) -> int:
    from . import benchmark
    from .util import report_path, write_json

    report_path(args.json)
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
    s = res["step"]
    print(f"step   p50 {s['p50_us']:.2f} us  p99 {s['p99_us']:.2f} us  "
          f"p99.9 {s['p99.9_us']:.2f} us  (p99.9/p50 {s['p99.9_us'] / s['p50_us']:.2f}, "
          f"{s['n']} steps)")
    print(f"run    {res['run_per_step_us']:.2f} us per step")
    a = res["allocations"]
    print(f"alloc  {a['net_blocks_per_step']:.4f} blocks / {a['net_bytes_per_step']:.2f} bytes "
          f"per step net (step with out=)", flush=True)
    if not args.no_cold:
        def progress(msg):
            print(f"start  {msg}", file=sys.stderr, flush=True)

        res["cold_start"] = c = benchmark.cold_start_pair(args.model, progress=progress)
        print(f"start  import+load+first step: {c['warm_cache_s']:.3f} s with warm Numba cache, "
              f"{c['cold_cache_s']:.1f} s with an empty one")
    if args.json:
        write_json(args.json, res)
    return 0


def cmd_warmup(args) -> int:
    import time

    from ..engine import precompile
    from ..kernels import cache

    t0 = time.perf_counter()
    precompile.ensure(precompile.every_kernel())  # in parallel where the cache is cold
    from ..audio import Denoiser  # its front end's kernels, with the bundled model's

    Denoiser().process(np.zeros(4000, np.float32))
    where = cache.cache_dir()
    print(f"engine ready in {time.perf_counter() - t0:.1f} s (cached in {where}: the next "
          f"process starts without compiling)" if where else
          f"engine ready in {time.perf_counter() - t0:.1f} s (no writable cache directory: "
          f"set EDGERNN_CACHE_DIR to keep it)")
    return 0


_PUBKEY_HELP = "require a signature that verifies with this Ed25519 public key (PEM file)"


def _parser() -> Parser:
    p = Parser(prog="edgernn", description="Recurrent nets, one step at a time.")
    p.add_argument("--version", action="version", version=f"edgernn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    q = sub.add_parser("inspect", help="show a model's layers and provenance")
    q.add_argument("model")
    q.add_argument("--json", action="store_true", help="print everything as one JSON object")
    q.add_argument("--public-key", help=_PUBKEY_HELP)
    q.set_defaults(func=cmd_inspect)
    q = sub.add_parser("run", help="run a model over a .npy sequence")
    q.add_argument("model")
    q.add_argument("--input", required=True, help="xs.npy: float (T, input_size) or int (T,)")
    q.add_argument("--output", required=True, help="ys.npy to write (.npy is added if missing)")
    q.add_argument("--force", action="store_true", help="replace an existing output file")
    q.add_argument("--public-key", help=_PUBKEY_HELP)
    q.add_argument("--math", choices=["fast", "exact"], default="fast")
    q.set_defaults(func=cmd_run)
    q = sub.add_parser("bench", help="per-step latency, allocations, cold start")
    q.add_argument("model")
    q.add_argument("--steps", type=int_range(1, 10**8), default=100_000)
    q.add_argument("--json", help="also write the figures as JSON here")
    q.add_argument("--no-cold", action="store_true", help="skip the cold-start subprocesses")
    q.set_defaults(func=cmd_bench)
    q = sub.add_parser("warmup", help="compile the engine once into the on-disk cache")
    q.set_defaults(func=cmd_warmup)
    for name, (_, help_) in EXTERNAL.items():
        sub.add_parser(name, help=help_, add_help=False)
    return p


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises nothing more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in EXTERNAL:
            module_name, help_ = EXTERNAL[argv[0]]
            try:
                module = import_module(module_name)
            except ImportError as exc:
                extra = _EXTRA[argv[0]]
                raise EdgeRNNError(f"'edgernn {argv[0]}' needs the {extra} extra "
                                   f"(pip install 'edgernn[{extra}]'): {exc}") from None
            p = Parser(prog=f"edgernn {argv[0]}", description=help_)
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
    except BrokenPipeError:  # the reader went away (`edgernn inspect m.ernn | head -1`):
        _quiet_stdout()      # stop quietly, as a Unix tool killed by SIGPIPE does
        return 141
    except EdgeRNNError as exc:
        print(f"edgernn: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"edgernn: error: {os_error_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
