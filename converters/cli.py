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
import warnings
from pathlib import Path

import edgernn
from edgernn.errors import EdgeRNNError, ModelFormatError

FORMATS = {".onnx": "onnx", ".pt": "torch", ".pth": "torch", ".keras": "keras",
           ".h5": "keras", ".hdf5": "keras", ".tflite": "tflite"}


def add_arguments(parser) -> None:
    """Add the ``convert`` options to an ``argparse`` parser."""
    parser.add_argument("src", help="model file: .onnx, .pt/.pth, .keras/.h5 or .tflite")
    parser.add_argument("-o", "--output", help="the .ernn file to write (default: SRC with "
                                               "the .ernn extension)")
    parser.add_argument("--from", dest="fmt", choices=sorted(set(FORMATS.values())),
                        help="source format (default: from the extension)")
    parser.add_argument("--example-shape",
                        help="PyTorch: shape of an example input, e.g. 1,50,8 (batch_first) "
                             "or 50,1,8")
    parser.add_argument("--example-dtype", default="float32", choices=["float32", "int64"],
                        help="PyTorch: dtype of the example input (int64 for token ids)")


def _shape(text) -> tuple:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise EdgeRNNError(f"--example-shape: expected positive integers like 1,50,8, "
                           f"got {text!r}")
    return shape


def _load_torch(path: Path, example_shape, example_dtype):
    import torch

    if not example_shape:
        raise EdgeRNNError(f"{path.name}: a PyTorch file needs --example-shape (the shape of "
                           f"one input the module takes, e.g. 1,50,8)")
    shape = _shape(example_shape)
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

    return from_torch(module, example_input=x)


def convert(src, fmt=None, example_shape=None, example_dtype="float32") -> edgernn.Model:
    """Convert a model file; the function behind ``edgernn convert``.

    Parameters
    ----------
    src : str or Path
    fmt : "onnx", "torch", "keras", "tflite" or None (from the extension)
    example_shape : str, e.g. "1,50,8" (PyTorch only)
    example_dtype : "float32" or "int64"

    Returns
    -------
    edgernn.Model with ``source_file`` and ``source_sha256`` in its provenance.
    """
    path = Path(src)
    if not path.is_file():
        raise EdgeRNNError(f"{str(path)!r}: no such file")
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise EdgeRNNError(f"{path.name}: cannot tell the format from the extension "
                           f"{path.suffix!r}; use --from with one of "
                           f"{sorted(set(FORMATS.values()))}")
    import converters

    if fmt == "torch":
        model = _load_torch(path, example_shape, example_dtype)
    else:
        model = getattr(converters, f"from_{fmt}")(path)
    prov = dict(model.provenance)
    prov.setdefault("source", fmt)
    prov["source_file"] = path.name
    prov["source_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    prov.setdefault("converter", f"edgernn {edgernn.__version__}")
    model.provenance = prov
    return model


def run(args) -> int:
    """Run ``edgernn convert`` with parsed ``args``; returns the exit status."""
    out = Path(args.output) if args.output else Path(args.src).with_suffix(".ernn")
    model = convert(args.src, args.fmt, args.example_shape, args.example_dtype)
    model.save(out)
    notes = []
    if not model.streamable:
        notes.append("whole sequences only (Bidirectional/Reverse): use run(), not step()")
    if model.initial_state is not None:
        notes.append(f"streams start from the source's non-zero initial state "
                     f"({', '.join(model.initial_state.names)}), also after reset()")
    if not model.return_sequences:
        notes.append("the source returns the last step: run() returns that one row "
                     "(step() gives a row per step)")
    if len(model.inputs) > 1:
        notes.append("inputs, concatenated in this order: "
                     + ", ".join(f"{n}[{k}]" for n, k in model.inputs))
    if len(model.outputs) > 1:
        notes.append("outputs, concatenated in this order (model.split): "
                     + ", ".join(f"{n}[{k}]" for n, k in model.outputs))
    print(f"wrote {out}: {model!r}")
    for n in notes:
        print(f"  note: {n}")
    return 0


__all__ = ["add_arguments", "run", "convert", "FORMATS"]
