"""Read a Keras model file without TensorFlow: the layer configs, weights and graph.

Two containers are read with ``h5py`` and ``json`` only:

``.keras`` (Keras 3)
    a zip holding ``config.json`` and ``model.weights.h5``; a layer's variables
    are under ``layers/<key>/vars/<k>`` (cells under ``cell/``, Bidirectional
    halves under ``forward_layer/`` and ``backward_layer/``), and ``<key>`` is
    found through the ``name`` attribute of its ``vars`` group.
``.h5`` (Keras 2, or Keras 3's legacy H5 saving)
    the root attribute ``model_config`` (JSON) and the group ``model_weights``
    whose ``<layer name>`` group lists its arrays in ``weight_names``.

A functional model's graph comes from each layer's ``inbound_nodes``: Keras 3
writes ``{"args": [...], "kwargs": {...}}`` per call with tensors as
``{"keras_history": [layer, node, tensor]}`` (and plain numbers for constants
of ops such as ``x * 2.0``), Keras 2 writes ``[[layer, node, tensor, kwargs],
...]`` per call.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgernn.errors import ModelFormatError, UnsupportedOpError

from ..common.guard import naming


@dataclass(frozen=True)
class Ref:
    """The output ``tensor`` of call ``node`` of layer ``layer``."""

    layer: str
    node: int = 0
    tensor: int = 0


@dataclass
class Call:
    """One call of a layer in a functional model: ``args`` are :class:`Ref` or
    numbers, in order; ``extra`` lists tensors passed by keyword (e.g. an
    ``initial_state``), which edgernn cannot take."""

    args: list
    extra: list = field(default_factory=list)


@dataclass
class KerasLayer:
    """One layer as stored: class name, config and weights in Keras' order.

    ``weights`` is the list Keras' ``layer.get_weights()`` returns, e.g. for an
    LSTM ``[kernel float32[I, 4H], recurrent_kernel float32[H, 4H], bias float32[4H]]``.
    ``calls`` are its calls in a functional model; ``module`` is Keras 3's
    (``keras.src.ops.numpy`` for ops such as ``x + y``, which are not layers).
    """

    class_name: str
    config: dict
    weights: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    module: str = ""

    @property
    def name(self) -> str:
        return self.config.get("name", "?")


@dataclass
class KerasFile:
    """The layers of a model file, and where it came from.

    ``functional``: the layers form a graph from ``inputs`` to ``outputs``
    (lists of :class:`Ref`); otherwise they are a Sequential stack.
    """

    layers: list
    keras_version: str
    fmt: str
    sha256: str
    functional: bool = False
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)


_CHILD_ORDER = ("cell", "forward_layer", "backward_layer", "layer")


#: at most this many bytes of JSON config (a model of thousands of layers is ~1 MB)
MAX_CONFIG_BYTES = 16 << 20
#: seconds the HDF5 library may take to read a file (a corrupt file can make it loop)
HDF5_SECONDS = 60.0


def read_keras(path) -> KerasFile:
    """Read ``path`` (``.keras`` zip or ``.h5``); raises ModelFormatError if unreadable.

    A malformed container (a corrupt zip entry or HDF5 object, a config that is
    not JSON, nested too deep or of the wrong shape) is a ModelFormatError
    naming the file and the part that failed; see :func:`_json`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"cannot read Keras file {str(path)!r}: {exc}") from exc
    return _in_child(_guarded_read, (path, data), path.name)


def _guarded_read(path: Path, data: bytes) -> KerasFile:
    try:
        with naming(path.name):
            return _read(path, data)
    except ModelFormatError as exc:
        if str(exc).startswith(path.name):
            raise
        raise ModelFormatError(f"{path.name}: {exc}") from None
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, RuntimeError) as exc:
        raise ModelFormatError(f"{path.name}: unreadable ({type(exc).__name__}: "
                               f"{str(exc)[:200]})") from None


def _in_child(fn, args, name: str):
    """``fn(*args)`` in a forked process, given :data:`HDF5_SECONDS`.

    libhdf5 can loop forever or crash on a corrupt file, in native code no
    Python timer interrupts; a child process can be killed. Its result or its
    exception comes back pickled. Where ``fork`` is missing it runs here.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return fn(*args)
    mp = multiprocessing.get_context("fork")
    recv, send = mp.Pipe(duplex=False)
    child = mp.Process(target=_child, args=(send, fn, args), daemon=True)
    child.start()
    send.close()
    try:
        if not recv.poll(HDF5_SECONDS):
            raise ModelFormatError(f"{name}: reading it took more than {HDF5_SECONDS:g} s "
                                   f"(the HDF5 library loops on some corrupt files); refused")
        try:
            ok, value = recv.recv()
        except (EOFError, OSError):
            child.join()
            raise ModelFormatError(f"{name}: the HDF5 library crashed reading it (exit "
                                   f"status {child.exitcode}); the file is corrupt") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        recv.close()
    if ok:
        return value
    raise value


def _child(send, fn, args) -> None:
    try:
        result = (True, fn(*args))
    except Exception as exc:  # noqa: BLE001 - sent back and re-raised in the parent
        result = (False, exc if isinstance(exc, ModelFormatError | UnsupportedOpError)
                  else ModelFormatError(f"{type(exc).__name__}: {str(exc)[:200]}"))
    send.send(result)
    send.close()


def _json(raw, what: str) -> dict:
    """A JSON object from ``raw`` (bytes or str): bounded in size and depth."""
    if isinstance(raw, bytes) and len(raw) > MAX_CONFIG_BYTES or \
            isinstance(raw, str) and len(raw) > MAX_CONFIG_BYTES:
        raise ModelFormatError(f"{what}: {len(raw)} bytes of JSON, more than the "
                               f"{MAX_CONFIG_BYTES} allowed")
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{what}: not a JSON config ({type(exc).__name__}: "
                               f"{str(exc)[:120]})") from None
    if not isinstance(obj, dict):
        raise ModelFormatError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _read(path: Path, data: bytes) -> KerasFile:
    import h5py

    sha = hashlib.sha256(data).hexdigest()
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            if "config.json" not in names or "model.weights.h5" not in names:
                raise ModelFormatError(f"{path.name}: a .keras zip needs config.json and "
                                       f"model.weights.h5, found {sorted(names)}")
            config = _json(z.read("config.json"), f"{path.name}: config.json")
            meta = (_json(z.read("metadata.json"), f"{path.name}: metadata.json")
                    if "metadata.json" in names else {})
            cfgs, functional, ins, outs = _model_config(config, path)
            with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
                groups = _keras3_groups(f)
                layers = [_with_weights3(cfg, groups) for cfg in cfgs]
        return KerasFile(layers, str(meta.get("keras_version", "3")), "keras", sha,
                         functional, ins, outs)
    try:
        f = h5py.File(io.BytesIO(data), "r")
    except OSError as exc:
        raise ModelFormatError(f"{path.name}: neither a .keras zip nor an HDF5 file") from exc
    with f:
        if "model_config" not in f.attrs:
            raise ModelFormatError(f"{path.name}: HDF5 file without a 'model_config' "
                                   f"attribute (weights-only files cannot be converted)")
        config = _json(_str(f.attrs["model_config"]), f"{path.name}: model_config")
        version = _str(f.attrs.get("keras_version", "2"))
        mw = f["model_weights"] if "model_weights" in f else f
        layers = []
        cfgs, functional, ins, outs = _model_config(config, path)
        for cfg in cfgs:
            layer = _layer(cfg)
            if layer.name in mw:
                with naming(f"{path.name}: weights of layer {layer.name!r}"):
                    g = mw[layer.name]
                    names = [_str(n) for n in g.attrs.get("weight_names", [])]
                    missing = [n for n in names if n not in g]
                    if missing:
                        raise ModelFormatError(f"{path.name}: layer {layer.name!r} lists the "
                                               f"weight {missing[0]!r}, which the file does "
                                               f"not hold")
                    layer.weights = [np.asarray(g[n], np.float32) for n in names]
            layers.append(layer)
    return KerasFile(layers, version, "h5", sha, functional, ins, outs)


def _layer(cfg: dict) -> KerasLayer:
    if not isinstance(cfg, dict) or not isinstance(cfg.get("class_name"), str) or \
            not isinstance(cfg.get("config", {}), dict):
        raise ModelFormatError(f"a layer config must be an object with a 'class_name' string "
                               f"and a 'config' object, got {str(cfg)[:80]}")
    layer = KerasLayer(cfg["class_name"], dict(cfg.get("config", {})), calls=_calls(cfg),
                       module=str(cfg.get("module") or ""))
    layer.config.setdefault("name", cfg.get("name", "?"))
    return layer


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _model_config(config: dict, path: Path) -> tuple:
    """(layer configs, functional, input refs, output refs) of a Sequential or
    functional model config."""
    cls = config.get("class_name")
    inner = config.get("config", {})
    if not isinstance(inner, dict) or not isinstance(inner.get("layers", []), list):
        raise ModelFormatError(f"{path.name}: the model config needs a 'config' object with a "
                               f"'layers' list")
    if cls == "Sequential":
        return list(inner.get("layers", [])), False, [], []
    if cls in ("Functional", "Model"):
        return (list(inner.get("layers", [])), True, _refs(inner.get("input_layers", [])),
                _refs(inner.get("output_layers", [])))
    raise UnsupportedOpError(f"{path.name}: model class {cls!r} is not supported; expected "
                             f"'Sequential' or a functional model ('Functional')")


def _refs(v) -> list:
    """``[name, node, tensor]`` or a list of them (input_layers, output_layers)."""
    if isinstance(v, list) and len(v) == 3 and isinstance(v[0], str):
        return [Ref(v[0], int(v[1]), int(v[2]))]
    return [Ref(r[0], int(r[1]), int(r[2])) for r in v]


def _args(v, out: list) -> None:
    """Flatten Keras 3 call arguments into Refs and numbers (None dropped)."""
    if isinstance(v, dict) and "keras_history" in v.get("config", {}):
        h = v["config"]["keras_history"]
        out.append(Ref(h[0], int(h[1]), int(h[2])))
    elif isinstance(v, (list, tuple)):
        for a in v:
            _args(a, out)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        out.append(float(v))
    elif v is not None:
        out.append(v)


def _calls(cfg: dict) -> list:
    """The calls of a functional layer (Keras 2 and 3 node formats)."""
    calls = []
    for node in cfg.get("inbound_nodes", []):
        if isinstance(node, dict):  # Keras 3
            args: list = []
            _args(node.get("args", []), args)
            extra: list = []
            _args([v for k, v in node.get("kwargs", {}).items() if k not in ("training",)],
                  extra)
            calls.append(Call(args, [e for e in extra if isinstance(e, Ref)]))
        else:  # Keras 2: [[name, node_index, tensor_index, kwargs], ...] (or one such)
            node = [node] if node and isinstance(node[0], str) else node
            args = [Ref(t[0], int(t[1]), int(t[2])) for t in node]
            extra = []
            for t in node:
                if len(t) > 3 and isinstance(t[3], dict):
                    _refs2(list(t[3].values()), extra)
            calls.append(Call(args, extra))
    return calls


def _refs2(v, out: list) -> None:
    """Keras 2 tensor references ``[name, node, tensor]`` inside call kwargs."""
    if isinstance(v, list) and len(v) == 3 and isinstance(v[0], str) and \
            isinstance(v[1], int) and isinstance(v[2], int):
        out.append(Ref(v[0], v[1], v[2]))
    elif isinstance(v, list):
        for x in v:
            _refs2(x, out)


def _keras3_groups(f) -> dict:
    """Map layer name -> its h5 group, from the ``name`` attribute of ``vars``."""
    out = {}
    top = f.get("layers")
    if top is None:
        return out
    for key in top:
        g = top[key]
        if "vars" in g and "name" in g["vars"].attrs:
            out[_str(g["vars"].attrs["name"])] = g
    return out


def _collect(g) -> list:
    arrays = []
    if "vars" in g:
        v = g["vars"]
        arrays += [np.asarray(v[k], np.float32) for k in sorted(v, key=int)]
    for child in _CHILD_ORDER:
        if child in g:
            arrays += _collect(g[child])
    return arrays


def _with_weights3(cfg: dict, groups: dict) -> KerasLayer:
    layer = _layer(cfg)
    if layer.name in groups:
        layer.weights = _collect(groups[layer.name])
    return layer
