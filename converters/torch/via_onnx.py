"""The ONNX path of :func:`converters.torch.from_torch`.

The module is exported with ``torch.onnx.export(..., dynamo=False)`` (first
with every axis but the features dynamic, then with static shapes), converted
by :func:`converters.onnx.from_onnx`, and every output the module returns
(tensors of a tuple, flattened in order) is checked against the converted
model answering the same inputs through :func:`converters.onnx.run_like_onnx`.
Inputs are named ``x`` (``x0``, ``x1``, ... for several), outputs ``y``
(``y0``, ``y1``, ...) unless names are given; the model's inputs and outputs
carry those names (``model.inputs``, ``model.split``).
"""

from __future__ import annotations

import hashlib
import io
import warnings

import numpy as np

from edgernn.errors import ModelFormatError, UnsupportedOpError


def weights_sha256(module) -> str:
    """SHA-256 over the module's parameter and buffer names and bytes."""
    h = hashlib.sha256()
    for name, t in list(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def torch_outputs(module, xs) -> list:
    """The module's outputs on inputs ``xs`` (a tuple of tensors), in eval mode:
    float32 arrays, nested tuples and lists flattened in order."""
    import torch

    with torch.no_grad():
        was = module.training
        module.eval()
        try:
            out = module(*xs)
        finally:
            module.train(was)
    flat, todo = [], [out]
    while todo:
        o = todo.pop(0)
        if isinstance(o, (tuple, list)):
            todo[:0] = list(o)
        elif isinstance(o, torch.Tensor):
            flat.append(o.detach().cpu().numpy().astype(np.float32))
    return flat


def _names(given, n, stem, what):
    if given is None:
        return [stem] if n == 1 else [f"{stem}{i}" for i in range(n)]
    given = [str(g) for g in given]
    if len(given) != n or len(set(given)) != n:
        raise ModelFormatError(f"{what}: expected {n} distinct names, got {given}")
    return given


def via_onnx(module, xs, atol, reason, input_names=None, output_names=None):
    """Convert ``module`` through its ONNX export; returns (model, provenance update)."""
    import onnx
    import torch

    from converters.onnx import from_onnx, run_like_onnx

    want = torch_outputs(module, xs)
    if not want:
        raise UnsupportedOpError(f"{type(module).__name__}: forward() returns no tensor")
    in_names = _names(input_names, len(xs), "x", "input_names")
    out_names = _names(output_names, len(want), "y", "output_names")
    feeds = {n: x.detach().cpu().numpy() for n, x in zip(in_names, xs, strict=True)}
    last_exc = None
    for dynamic in (True, False):
        dyn = None
        if dynamic:
            dyn = {n: {k: f"d{k}" for k in range(x.dim() - (1 if x.is_floating_point() else 0))}
                   for n, x in zip(in_names, xs, strict=True)}
        f = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, tuple(xs), f, input_names=in_names,
                                  output_names=out_names, dynamic_axes=dyn, dynamo=False)
        except Exception as exc:
            raise UnsupportedOpError(f"{type(module).__name__}: torch.onnx.export failed "
                                     f"({type(exc).__name__}: {exc})") from exc
        proto = onnx.load_from_string(f.getvalue())
        try:
            model = from_onnx(proto)
        except UnsupportedOpError as exc:
            last_exc = exc
            continue
        got = run_like_onnx(model, feeds)
        for name, w in zip(out_names, want, strict=True):
            g = got.get(name)
            if g is None or g.shape != w.shape or not np.abs(g - w).max(initial=0) <= atol:
                err = "missing" if g is None else f"shape {g.shape} vs {w.shape}" \
                    if g.shape != w.shape else f"max abs difference {np.abs(g - w).max():.3g}"
                raise UnsupportedOpError(f"{type(module).__name__}: the converted ONNX export "
                                         f"disagrees with the module on example_input "
                                         f"(output {name!r}: {err})")
        prov = dict(model.provenance)
        prov["onnx_export_sha256"] = prov.pop("source_sha256")
        prov.pop("source_file")
        prov.update(source="torch", module=type(module).__name__, path="onnx",
                    native_refused=reason,
                    converter_module="converters.torch via converters.onnx",
                    source_file=None, source_sha256=weights_sha256(module))
        model.provenance = prov
        return model
    raise UnsupportedOpError(f"{type(module).__name__} is not a chain of supported modules "
                             f"({reason}), and its ONNX export is not supported either: "
                             f"{last_exc}") from last_exc


__all__ = ["via_onnx", "torch_outputs", "weights_sha256"]
