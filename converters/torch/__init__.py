"""PyTorch modules -> :class:`edgernn.Model`.

Native path: a supported module (:data:`converters.torch.modules.MODULES`:
nn.RNN/LSTM/GRU, their cells, Linear, Embedding, activation and dropout
modules), an ``nn.Sequential`` of them, or a module whose children form such a
chain, in registration order, converts weight by weight. A container whose
``forward`` PyTorch cannot show us is *assumed* to apply its children in order:
pass ``example_input`` and the result is checked against the module itself
(falling back to the ONNX path on disagreement); without one a warning says so.

ONNX path: any other module (or a TorchScript module) with ``example_input``
goes through ``torch.onnx.export(..., dynamo=False)`` and
:func:`converters.onnx.from_onnx`, and is checked against the module too.

The stream takes one timestep ``float32[input_size]`` per ``step`` whatever
``batch_first`` was; a model whose source returns only the last step (e.g.
``fc(y[:, -1])``) has ``return_sequences=False``: ``Stream.run`` returns that
one row (``step`` still gives a row per step, the last being PyTorch's output).

>>> model = from_torch(torch.nn.LSTM(8, 16))                    # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import warnings

import numpy as np

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

from .modules import MODULES

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


def from_torch(module, example_input=None, *, atol: float = 1e-4) -> edgernn.Model:
    """Convert a ``torch.nn.Module``.

    Parameters
    ----------
    module : torch.nn.Module (or a TorchScript module; needs ``example_input``)
    example_input : torch.Tensor or array, optional
        One input batch as the module takes it (e.g. ``[B, T, F]`` with
        ``batch_first=True``). Used to check the conversion against the module,
        and needed for modules that are not a chain of supported ones.
    atol : float
        Largest absolute difference accepted by that check.

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
    x = None
    if example_input is not None:
        x = example_input if isinstance(example_input, torch.Tensor) else \
            torch.as_tensor(np.asarray(example_input))
    if isinstance(module, torch.jit.ScriptModule):
        if x is None:
            raise UnsupportedOpError("a TorchScript module converts through torch.onnx.export "
                                     "and needs example_input=")
        return _via_onnx(module, x, atol, "TorchScript")
    found: list = []
    try:
        model = edgernn.Model(_chain(module, "", found),
                              provenance=_prov(module, "native", found))
    except UnsupportedOpError as exc:
        if x is None:
            raise UnsupportedOpError(f"{exc}; or pass example_input= to convert "
                                     f"{type(module).__name__} through torch.onnx.export") \
                from exc
        return _via_onnx(module, x, atol, str(exc))
    container = _kind(module) is None and not isinstance(module, torch.nn.Sequential)
    if x is None:
        if container:
            warnings.warn(f"{type(module).__name__}: assuming forward() applies its children "
                          f"in order; pass example_input to convert what forward() does",
                          stacklevel=2)
        return model
    if container:
        # forward() may do more than chain its children: its ONNX export is exact
        try:
            return _via_onnx(module, x, atol, "custom forward()")
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
            "source_file": None, "source_sha256": _weights_sha256(module),
            "batch_first": bf}


def _weights_sha256(module) -> str:
    """SHA-256 over the module's parameter and buffer names and bytes."""
    h = hashlib.sha256()
    for name, t in list(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _torch_out(module, x) -> np.ndarray:
    import torch

    with torch.no_grad():
        was = module.training
        module.eval()
        try:
            out = module(x)
        finally:
            module.train(was)
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out.detach().cpu().numpy().astype(np.float32)


def _check(model, module, x, found):
    """Max abs difference between the model and the module on ``x`` (None: shapes
    could not be matched)."""
    want = _torch_out(module, x)
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


def _via_onnx(module, x, atol, reason) -> edgernn.Model:
    import onnx
    import torch

    from converters.onnx import from_onnx, run_like_onnx

    last_exc = None
    rank = x.dim() if x.is_floating_point() else x.dim() + 1
    for dynamic in (True, False):
        dyn = {"x": {k: f"d{k}" for k in range(rank - 1)}} if dynamic else None
        f = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (x,), f, input_names=["x"], output_names=["y"],
                                  dynamic_axes=dyn, dynamo=False)
        except Exception as exc:
            raise UnsupportedOpError(f"{type(module).__name__}: torch.onnx.export failed "
                                     f"({type(exc).__name__}: {exc})") from exc
        proto = onnx.load_from_string(f.getvalue())
        try:
            model = from_onnx(proto)
        except UnsupportedOpError as exc:
            last_exc = exc
            continue
        got = run_like_onnx(model, {"x": x.detach().cpu().numpy()})["y"]
        want = _torch_out(module, x)
        if got.shape != want.shape or np.abs(got - want).max() > atol:
            raise UnsupportedOpError(f"{type(module).__name__}: the converted ONNX export "
                                     f"disagrees with the module on example_input")
        prov = dict(model.provenance)
        prov["onnx_export_sha256"] = prov.pop("source_sha256")
        prov.pop("source_file")
        prov.update(source="torch", module=type(module).__name__,
                    path="onnx", native_refused=reason,
                    converter_module="converters.torch via converters.onnx",
                    source_file=None, source_sha256=_weights_sha256(module))
        model.provenance = prov
        return model
    raise UnsupportedOpError(f"{type(module).__name__} is not a chain of supported modules "
                             f"({reason}), and its ONNX export is not supported either: "
                             f"{last_exc}") from last_exc
