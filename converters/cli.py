"""``edgernn convert SRC -o OUT.ernn``: the converters behind the command line.

The source format comes from the extension (``.onnx``; ``.pt``/``.pth``
PyTorch; ``.keras``/``.h5`` Keras; ``.tflite``) or ``--from``. A PyTorch file
is TorchScript (``torch.jit.save``) or a whole pickled module
(``torch.save(module)``; unpickling runs code from the file: only convert files
you trust) and needs ``--example-shape``: the converter feeds a random input of
that shape to check the conversion (and to export modules that are not a chain
of supported ones). The ``.ernn`` file records the source's SHA-256.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from pathlib import Path

import numpy as np

import edgernn
from edgernn.errors import EdgeRNNError, ModelFormatError

FORMATS = {".onnx": "onnx", ".pt": "torch", ".pth": "torch", ".keras": "keras",
           ".h5": "keras", ".hdf5": "keras", ".tflite": "tflite"}


def add_arguments(parser) -> None:
    """Add the ``convert`` options to an ``argparse`` parser."""
    parser.add_argument("src", nargs="+", help="model file: .onnx, .pt/.pth, .keras/.h5 or "
                                               ".tflite (several: the stages of --audio)")
    parser.add_argument("--audio", metavar="PRESET",
                        help="wrap the converted model(s) in a published model's own audio "
                             "pipeline, one .ernn taking and giving samples "
                             "(converters.presets: dtln, nsnet2, silero-vad)")
    parser.add_argument("-o", "--output", help="the .ernn file to write (default: SRC with "
                                               "the .ernn extension)")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument("--sign-key", help="sign the model with this Ed25519 private key (PEM; "
                                           "edgernn keygen, the sign extra)")
    parser.add_argument("--from", dest="fmt", choices=sorted(set(FORMATS.values())),
                        help="source format (default: from the extension)")
    parser.add_argument("--example-shape",
                        help="PyTorch: shape of an example input, e.g. 1,50,8 (batch_first) "
                             "or 50,1,8")
    parser.add_argument("--state", action="append", metavar="IN=OUT", default=[],
                        help="ONNX, TFLite: graph input IN carries state that graph output "
                             "OUT gives back (DTLN: input_5=tf_op_layer_stack_5; its .tflite: "
                             "input_5=Identity_1); it becomes state inside the model. "
                             "Repeat for several pairs")
    parser.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...", default=[],
                        help="ONNX: the shape of graph input NAME where the file leaves it "
                             "dynamic (Silero VAD: input=1,576); TFLite: the model is called "
                             "once per step with NAME of this shape (the file's). Repeat for "
                             "several inputs")
    parser.add_argument("--constant", action="append", metavar="NAME=VALUE", default=[],
                        help="ONNX, TFLite: graph input NAME is this constant (a number, or "
                             "numbers separated by commas), folded into the model (Silero VAD: "
                             "sr=16000). Repeat for several inputs")
    parser.add_argument("--example-dtype", default="float32", choices=["float32", "int64"],
                        help="PyTorch: dtype of the example input (int64 for token ids)")
    q = parser.add_argument_group("int8 quantisation (converters.quantize)")
    q.add_argument("--quantize", metavar="MODE",
                   help="int8 (static), int8-weights (dynamic range), or per node (name "
                        "or index), e.g. 'default=int8,denoise_gru=float32'")
    q.add_argument("--calibration", metavar="DATA",
                   help="calibration sequences: .npy (T, I) or (N, T, I), or .npz")
    q.add_argument("--held-out", metavar="DATA",
                   help="held-out sequences for the error report (default: the last fifth "
                        "of the calibration data is carved off)")
    q.add_argument("--max-error", type=float, metavar="E",
                   help="keep the worst layers in float until the end-to-end max abs error "
                        "is at most E")
    q.add_argument("--ranges", default="auto", choices=["auto", "minmax", "percentile", "mse"],
                   help="activation range estimator for int8 (auto: chosen per tensor by "
                        "measured error)")
    q.add_argument("--dynamic", default="asymmetric", choices=["asymmetric", "symmetric"],
                   help="int8-weights: inputs quantised per call with a zero point "
                        "(asymmetric, as LiteRT and ONNX Runtime) or without (max|v| / 127)")
    q.add_argument("--int8-min-macs", type=int, default=None, metavar="N",
                   help="layers not named in --quantize that do fewer multiply-accumulates "
                        "per step stay float32, where int8 is slower (default 16384; 0 "
                        "quantises every layer)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")


def _dims(flag, text, like="input=1,576") -> tuple:
    """``"1,50,8"`` (or ``1x50x8``) -> (1, 50, 8); positive integers or a one-line error."""
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise EdgeRNNError(f"--{flag}: expected positive integers like {like}, got {text!r}")
    return shape


def _load_torch(path: Path, example_shape, example_dtype):
    import torch

    if not example_shape:
        raise EdgeRNNError(f"{path.name}: a PyTorch file needs --example-shape (the shape of "
                           f"one input the module takes, e.g. 1,50,8)")
    shape = _dims("example-shape", example_shape, "1,50,8")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception:
        try:
            module = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as exc:
            raise ModelFormatError(f"{path.name}: neither TorchScript nor a pickled module "
                                   f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelFormatError(f"{path.name}: holds a {type(module).__name__}, not a module "
                               f"(a state dict has no architecture: save the whole module "
                               f"or TorchScript)")
    gen = torch.Generator().manual_seed(0)
    if example_dtype == "int64":
        x = torch.randint(0, 2, shape, generator=gen)
    else:
        x = torch.randn(shape, generator=gen) * 0.5
    from converters.torch import from_torch

    try:
        return from_torch(module, example_input=x)
    except EdgeRNNError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:  # torch refusing the input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgeRNNError(f"{path.name}: the module does not accept an example input of shape "
                           f"{shape} (--example-shape {example_shape}): {first}") from None


def _named(flag, pairs, value, expect="NAME=VALUE (a graph input name)") -> dict:
    """``["NAME=TEXT", ...]`` -> {NAME: value(flag, TEXT)} (``--state``, ``--input-shape``,
    ``--constant``)."""
    out = {}
    for text in pairs or ():
        a, sep, b = text.partition("=")
        if not sep or not a.strip() or not b.strip():
            raise EdgeRNNError(f"--{flag}: expected {expect}, got {text!r}")
        out[a.strip()] = value(flag, b)
    return out


def _states(pairs) -> dict | None:
    """``["IN=OUT", ...]`` -> {IN: OUT} (None when empty)."""
    return _named("state", pairs, lambda _, b: b.strip(),
                  "INPUT=OUTPUT (graph value names)") or None


def _numbers(flag, text):
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise EdgeRNNError(f"--{flag}: expected a number or numbers separated by commas, "
                           f"got {text!r}") from None
    arr = np.array(vals)
    if np.all(arr == np.round(arr)) and not any(c in text for c in ".eEn"):
        arr = arr.astype(np.int64)  # (cast again to the input's type by from_onnx)
    return arr[0] if arr.size == 1 else arr


def _pick(given: dict, names) -> dict:
    """The entries of ``given`` that name one of ``names`` (all of them for None): of
    several files, each takes the options naming its own inputs."""
    return dict(given) if names is None else {i: v for i, v in given.items() if i in names}


def _state_inputs(path) -> set:
    """The graph input names of an ONNX or TFLite file (what ``--state`` may name)."""
    if FORMATS.get(Path(path).suffix.lower()) != "tflite":
        return _onnx_inputs(path)
    from converters.tflite import _io_name, read_tflite

    try:
        model = read_tflite(Path(path).read_bytes())
        return {_io_name(model, t) for t in model.subgraphs[0].inputs}
    except Exception:  # noqa: BLE001 -- the conversion itself reports an unreadable file
        return set()


def _onnx_inputs(path) -> set:
    """The graph input names of an ONNX file (empty for other formats)."""
    if FORMATS.get(Path(path).suffix.lower()) != "onnx":
        return set()
    import onnx

    try:
        return {i.name for i in onnx.load(str(path), load_external_data=False).graph.input}
    except Exception:  # noqa: BLE001 -- the conversion itself reports an unreadable file
        return set()


def convert(src, fmt=None, example_shape=None, example_dtype="float32",
            states=None, **onnx_options) -> edgernn.Model:
    """Convert a model file; the function behind ``edgernn convert``.

    Parameters
    ----------
    src : str or Path
    fmt : "onnx", "torch", "keras", "tflite" or None (from the extension)
    example_shape : str, e.g. "1,50,8" (PyTorch only)
    example_dtype : "float32" or "int64"
    states : dict of graph input -> graph output, optional (ONNX and TFLite; see
        ``from_onnx`` and ``from_tflite``, which also take ``input_shapes`` and
        ``constants`` through ``onnx_options``)

    Returns
    -------
    edgernn.Model with ``source_file`` and ``source_sha256`` in its provenance.
    """
    path = Path(src)
    if not path.is_file():
        raise EdgeRNNError(f"{str(path)!r}: " + ("is a directory; expected a model file"
                                                 if path.is_dir() else "no such file"))
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise EdgeRNNError(f"{path.name}: cannot tell the format from the extension "
                           f"{path.suffix!r}; use --from with one of "
                           f"{sorted(set(FORMATS.values()))}")
    import converters

    if states and fmt not in ("onnx", "tflite"):
        raise EdgeRNNError(f"--state applies to ONNX and TFLite models; {path.name} is {fmt}")
    if fmt == "torch":
        model = _load_torch(path, example_shape, example_dtype)
    elif fmt == "onnx":
        model = converters.from_onnx(path, states=states, **onnx_options)
    elif fmt == "tflite":
        model = converters.from_tflite(path, states=states, **onnx_options)
    else:
        model = getattr(converters, f"from_{fmt}")(path)
    prov = dict(model.provenance)
    prov.setdefault("source", fmt)
    prov["source_file"] = path.name
    prov["source_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    prov.setdefault("converter", f"edgernn {edgernn.__version__}")
    model.provenance = prov
    return model


def parse_mode(text: str):
    """``int8`` -> "int8"; ``default=int8,2=float32`` -> {"default": "int8", "2": "float32"}."""
    if "=" not in text:
        return text
    out = {}
    for part in text.split(","):
        key, sep, val = part.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise EdgeRNNError(f"--quantize: expected MODE or LAYER=MODE,... (e.g. "
                               f"'default=int8,2=float32'), got {text!r}")
        out[key.strip()] = val.strip()
    return out


def _quantize(model, args):
    from converters.quantize import quantize

    mode = parse_mode(args.quantize)
    static = mode == "int8" or (isinstance(mode, dict) and "int8" in mode.values())
    if not args.calibration and static:
        raise EdgeRNNError("--quantize int8 (static) needs --calibration DATA (.npy or .npz "
                           f"sequences of shape (T, {model.input_size})); int8-weights needs "
                           f"none")
    from converters.quantize.modes import MIN_MACS

    min_macs = MIN_MACS if args.int8_min_macs is None else args.int8_min_macs
    if min_macs < 0:
        raise EdgeRNNError(f"--int8-min-macs: expected a whole number >= 0, got {min_macs}")
    return quantize(model, args.calibration, mode=mode,
                    held_out=args.held_out, max_error=args.max_error, ranges=args.ranges,
                    progress=not args.no_progress, dynamic=args.dynamic, min_macs=min_macs)


def run(args) -> int:
    """Run ``edgernn convert`` with parsed ``args``; returns the exit status."""
    from edgernn.cli.util import output_path
    from edgernn.format.modelfile import save_model

    for flag in ("calibration", "held_out", "max_error", "int8_min_macs"):
        if getattr(args, flag, None) is not None and not getattr(args, "quantize", None):
            raise EdgeRNNError(f"--{flag.replace('_', '-')} needs --quantize MODE")
    srcs = list(args.src) if isinstance(args.src, (list, tuple)) else [args.src]
    if len(srcs) > 1 and not getattr(args, "audio", None):
        raise EdgeRNNError(f"{len(srcs)} model files: several files are the stages of an "
                           f"--audio preset (e.g. --audio dtln)")
    out = output_path(args.output or Path(srcs[0]).with_suffix(".ernn"),
                      [*srcs, args.sign_key, getattr(args, "calibration", None),
                       getattr(args, "held_out", None)], args.force)
    if args.sign_key:
        from edgernn.format.signing import private_key_fingerprint

        private_key_fingerprint(args.sign_key)  # a bad key fails before the conversion
    states, models = _states(getattr(args, "state", None)), []
    shapes = _named("input-shape", getattr(args, "input_shape", None), _dims)
    consts = _named("constant", getattr(args, "constant", None), _numbers)
    if (shapes or consts) and any((args.fmt or FORMATS.get(Path(s).suffix.lower()))
                                  not in ("onnx", "tflite") for s in srcs):
        raise EdgeRNNError("--input-shape and --constant apply to ONNX and TFLite models")
    preset = {}
    if getattr(args, "audio", None):
        from converters.presets import CONVERT

        preset = CONVERT.get(args.audio, {})
    seen = set()
    for src in srcs:
        names = _state_inputs(src) if len(srcs) > 1 or preset else set()
        seen |= names
        mine = names if len(srcs) > 1 else None   # one file: every name given is its own
        options = {k: _pick(d, names) for k, d in preset.items()}
        for key, given in (("input_shapes", shapes), ("constants", consts)):
            if given:
                options[key] = {**options.get(key, {}), **_pick(given, mine)}
        try:
            models.append(convert(src, args.fmt, args.example_shape, args.example_dtype,
                                  _pick(states or {}, mine) or None, **options))
        except EdgeRNNError as exc:
            if Path(src).name in str(exc):
                raise
            raise type(exc)(f"{src}: {exc}") from None
    if states and len(srcs) > 1 and set(states) - seen:
        raise EdgeRNNError(f"--state: {sorted(set(states) - seen)} are inputs of none of the "
                           f"files")
    model = models[0]
    if getattr(args, "audio", None):
        from converters.presets import build

        model = build(args.audio, models)
    if getattr(args, "quantize", None):
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = _quantize(model, args)
        for w in caught:
            print(f"  warning: {w.message}", file=sys.stderr)
    save_model(model, out, signing_key=args.sign_key)
    notes = []
    if not model.streamable:
        notes.append("whole sequences only (Bidirectional/Reverse): use run(), not step()")
    if model.initial_state is not None:
        notes.append(f"streams start from the source's non-zero initial state "
                     f"({', '.join(model.initial_state.names)}), also after reset()")
    if not model.return_sequences:
        notes.append("the source returns the last step: run() returns that one row "
                     "(step() gives a row per step)")
    if model.graph.updates:
        notes.append("state carried inside: " + ", ".join(s.name for s, _ in model.graph.updates))
    if len(model.inputs) > 1:
        notes.append("inputs, concatenated in this order: "
                     + ", ".join(f"{n}[{k}]" for n, k in model.inputs))
    if len(model.outputs) > 1:
        notes.append("outputs, concatenated in this order (model.split): "
                     + ", ".join(f"{n}[{k}]" for n, k in model.outputs))
    print(f"wrote {out}: {model!r}")
    for n in notes:
        print(f"  note: {n}")
    report = getattr(model, "quantization", None)
    if report:
        from edgernn.model.quant_report import format_report

        print(format_report(report))
    return 0


__all__ = ["add_arguments", "run", "convert", "parse_mode", "FORMATS"]
