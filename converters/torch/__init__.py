"""PyTorch modules -> :class:`edgernn.Model`.

Native path: a supported module (:data:`converters.torch.modules.MODULES`:
nn.RNN/LSTM/GRU, their cells, Linear, Embedding, activation and dropout
modules), an ``nn.Sequential`` of them, or a module whose children form such a
chain, in registration order, converts weight by weight. A container whose
``forward`` PyTorch cannot show us is *assumed* to apply its children in order:
pass ``example_input`` and the result is checked against the module itself
(falling back to the ONNX path on disagreement); without one a warning says so.

ONNX path: any other module (a ``forward`` that concatenates, adds, slices,
returns several tensors ...; a TorchScript module; a module taking several
inputs, given as a tuple ``example_input``) goes through
``torch.onnx.export(..., dynamo=False)`` and :func:`converters.onnx.from_onnx`
(see :mod:`converters.torch.via_onnx`), and every tensor it returns is checked
against the module.

The stream takes one timestep ``float32[input_size]`` per ``step`` whatever
``batch_first`` was; a model whose source returns only the last step (e.g.
``fc(y[:, -1])``) has ``return_sequences=False``: ``Stream.run`` returns that
one row (``step`` still gives a row per step, the last being PyTorch's output).

>>> model = from_torch(torch.nn.LSTM(8, 16))                    # doctest: +SKIP
"""

from __future__ import annotations

import warnings

import numpy as np

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

from .modules import MODULES
from .via_onnx import torch_outputs, via_onnx, weights_sha256

__all__ = ["from_torch", "MODULES"]

_RECURRENT = ("LSTM", "GRU", "RNN")
_CELLS = ("LSTMCell", "GRUCell", "RNNCell")


def _kind(mod) -> str | None:
    cls = type(mod)
    return cls.__name__ if cls.__name__ in MODULES and cls.__module__.startswith("torch.nn") \
        else None


def _chain(mod, name: str, found: list) -> list:
    """Layers of ``mod``; ``found`` collects the supported modules met, in order."""
    kind = _kind(mod)
    if kind is not None:
        found.append(mod)
        return MODULES[kind](name or kind, mod)
    children = list(mod.named_children())
    own = [n for n, _ in mod.named_parameters(recurse=False)] + \
        [n for n, _ in mod.named_buffers(recurse=False)]
    if not children or own:
        why = f"has its own parameters {own}" if own else "is not a supported module"
        raise UnsupportedOpError(f"module {name or '<root>'!r} ({type(mod).__name__}) {why}; "
                                 f"supported modules: {', '.join(sorted(MODULES))}, and "
                                 f"nn.Sequential or modules whose children form a chain")
    out = []
    for child_name, child in children:
        out.extend(_chain(child, f"{name}.{child_name}" if name else child_name, found))
    return out


def from_torch(module, example_input=None, *, atol: float = 1e-4, input_names=None,
               output_names=None) -> edgernn.Model:
    """Convert a ``torch.nn.Module``.

    Parameters
    ----------
    module : torch.nn.Module (or a TorchScript module; needs ``example_input``)
    example_input : torch.Tensor or array, or a tuple of them, optional
        One input batch as the module takes it (e.g. ``[B, T, F]`` with
        ``batch_first=True``); a tuple for a ``forward`` taking several inputs
        (the model takes them concatenated, see ``model.inputs``). Used to check
        the conversion against the module, and needed for modules that are not a
        chain of supported ones.
    atol : float
        Largest absolute difference accepted by that check.
    input_names, output_names : sequence of str, optional
        Names of the inputs and of the returned tensors on the ONNX path
        (default ``x`` or ``x0, x1, ...``, ``y`` or ``y0, y1, ...``); the model's
        outputs carry them (``model.split(ys)["gains"]``).

    Returns
    -------
    edgernn.Model
        float32; ``provenance["path"]`` is ``"native"`` or ``"onnx"``.

    Raises
    ------
    UnsupportedOpError
        A module edgernn cannot run (names it), or a non-chain module without
        ``example_input``.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise ModelFormatError(f"from_torch expects a torch.nn.Module, got "
                               f"{type(module).__name__}")
    xs = None
    if example_input is not None:
        items = example_input if isinstance(example_input, tuple) else (example_input,)
        xs = tuple(i if isinstance(i, torch.Tensor) else torch.as_tensor(np.asarray(i))
                   for i in items)
    names = {"input_names": input_names, "output_names": output_names}
    x = None if xs is None else xs[0]
    if isinstance(module, torch.jit.ScriptModule) or (xs is not None and len(xs) > 1):
        if x is None:
            raise UnsupportedOpError("a TorchScript module converts through torch.onnx.export "
                                     "and needs example_input=")
        why = "TorchScript" if isinstance(module, torch.jit.ScriptModule) else \
            f"forward() takes {len(xs)} inputs"
        return via_onnx(module, xs, atol, why, **names)
    found: list = []
    container = _kind(module) is None and not isinstance(module, torch.nn.Sequential)
    try:
        try:
            model = edgernn.Model(_chain(module, "", found),
                                  provenance=_prov(module, "native", found))
        except ModelFormatError as exc:
            if not container:
                raise
            raise UnsupportedOpError(f"the children of {type(module).__name__} do not form "
                                     f"a chain ({exc})") from exc
    except UnsupportedOpError as exc:
        if x is None:
            raise UnsupportedOpError(f"{exc}; or pass example_input= to convert "
                                     f"{type(module).__name__} through torch.onnx.export") \
                from exc
        return via_onnx(module, xs, atol, str(exc), **names)
    if x is None:
        if container:
            warnings.warn(f"{type(module).__name__}: assuming forward() applies its children "
                          f"in order; pass example_input to convert what forward() does",
                          stacklevel=2)
        return model
    if container:
        # forward() may do more than chain its children: its ONNX export is exact
        try:
            return via_onnx(module, xs, atol, "custom forward()", **names)
        except UnsupportedOpError as exc:
            onnx_error = str(exc)
    else:
        onnx_error = None
    err = _check(model, module, x, found)
    if err is None or err > atol:
        raise UnsupportedOpError(f"{type(module).__name__}: the converted chain of children "
                                 f"differs from the module on example_input (max abs "
                                 f"difference {err}); ONNX path: {onnx_error}")
    return model


def _prov(module, path, found) -> dict:
    bf = next((m.batch_first for m in found if type(m).__name__ in _RECURRENT), None)
    return {"source": "torch", "module": type(module).__name__, "path": path,
            "converter": f"edgernn {edgernn.__version__}", "converter_module": "converters.torch",
            "source_file": None, "source_sha256": weights_sha256(module),
            "batch_first": bf}


def _check(model, module, x, found):
    """Max abs difference between the model and the module on ``x`` (None: shapes
    could not be matched)."""
    want = torch_outputs(module, (x,))[0]
    xs = x.detach().cpu().numpy()
    if not model.num_tokens:
        xs = xs.astype(np.float32)
    first = type(found[0]).__name__ if found else ""
    rec = next((m for m in found if type(m).__name__ in _RECURRENT), None)
    if first in _CELLS or rec is None:
        # rows are independent: one step from a zero state each
        lead = xs.shape if model.num_tokens else xs.shape[:-1]
        rows = xs.reshape((-1,) + xs.shape[len(lead):])
        ys = np.stack([model.stream().run(np.ascontiguousarray(r[None]))[0] for r in rows])
        ys = ys.reshape(lead + (model.output_size,))
        return float(np.abs(ys - want).max()) if ys.shape == want.shape else None
    if xs.ndim == (2 if model.num_tokens else 3):
        seqs = xs if rec.batch_first else np.swapaxes(xs, 0, 1)
    else:
        seqs = xs[None]
    ys = np.stack([model.stream().run(np.ascontiguousarray(s)) for s in seqs])
    b = ys.shape[0]
    cands = [ys if rec.batch_first or xs.ndim != ys.ndim else np.swapaxes(ys, 0, 1),
             ys[:, -1], ys[0] if b == 1 else None, ys[0, -1] if b == 1 else None]
    for c in cands:
        if c is not None and c.shape == want.shape:
            return float(np.abs(c - want).max())
    return None
