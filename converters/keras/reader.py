"""Read a Keras model file without TensorFlow: the layer configs and weights.

Two containers are read with ``h5py`` and ``json`` only:

``.keras`` (Keras 3)
    a zip holding ``config.json`` and ``model.weights.h5``; a layer's variables
    are under ``layers/<key>/vars/<k>`` (cells under ``cell/``, Bidirectional
    halves under ``forward_layer/`` and ``backward_layer/``), and ``<key>`` is
    found through the ``name`` attribute of its ``vars`` group.
``.h5`` (Keras 2, or Keras 3's legacy H5 saving)
    the root attribute ``model_config`` (JSON) and the group ``model_weights``
    whose ``<layer name>`` group lists its arrays in ``weight_names``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgernn.errors import ModelFormatError, UnsupportedOpError


@dataclass
class KerasLayer:
    """One layer as stored: class name, config and weights in Keras' order.

    ``weights`` is the list Keras' ``layer.get_weights()`` returns, e.g. for an
    LSTM ``[kernel float32[I, 4H], recurrent_kernel float32[H, 4H], bias float32[4H]]``.
    """

    class_name: str
    config: dict
    weights: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.get("name", "?")


@dataclass
class KerasFile:
    """The linear stack of layers of a model file, and where it came from."""

    layers: list
    keras_version: str
    fmt: str
    sha256: str


_CHILD_ORDER = ("cell", "forward_layer", "backward_layer", "layer")


def read_keras(path) -> KerasFile:
    """Read ``path`` (``.keras`` zip or ``.h5``); raises ModelFormatError if unreadable."""
    import h5py

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"cannot read Keras file {str(path)!r}: {exc}") from exc
    sha = hashlib.sha256(data).hexdigest()
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            if "config.json" not in names or "model.weights.h5" not in names:
                raise ModelFormatError(f"{path.name}: a .keras zip needs config.json and "
                                       f"model.weights.h5, found {sorted(names)}")
            config = json.loads(z.read("config.json"))
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
            with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
                groups = _keras3_groups(f)
                layers = [_with_weights3(cfg, groups) for cfg in _layer_configs(config, path)]
        return KerasFile(layers, str(meta.get("keras_version", "3")), "keras", sha)
    try:
        f = h5py.File(io.BytesIO(data), "r")
    except OSError as exc:
        raise ModelFormatError(f"{path.name}: neither a .keras zip nor an HDF5 file") from exc
    with f:
        if "model_config" not in f.attrs:
            raise ModelFormatError(f"{path.name}: HDF5 file without a 'model_config' "
                                   f"attribute (weights-only files cannot be converted)")
        config = json.loads(_str(f.attrs["model_config"]))
        version = _str(f.attrs.get("keras_version", "2"))
        mw = f["model_weights"] if "model_weights" in f else f
        layers = []
        for cfg in _layer_configs(config, path):
            layer = KerasLayer(cfg["class_name"], cfg.get("config", {}))
            if layer.name in mw:
                g = mw[layer.name]
                layer.weights = [np.asarray(g[_str(n)], np.float32)
                                 for n in g.attrs.get("weight_names", [])]
            layers.append(layer)
    return KerasFile(layers, version, "h5", sha)


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _layer_configs(config: dict, path: Path) -> list:
    """The layer configs of a Sequential model or a chain-shaped functional one."""
    cls = config.get("class_name")
    inner = config.get("config", {})
    if cls == "Sequential":
        return list(inner.get("layers", []))
    if cls in ("Functional", "Model"):
        layers = list(inner.get("layers", []))
        prev = None
        for cfg in layers:
            srcs = _inbound_names(cfg.get("inbound_nodes", []))
            if prev is not None and srcs != [prev]:
                raise UnsupportedOpError(
                    f"layer {cfg.get('name')!r} ({cfg.get('class_name')}) takes inputs "
                    f"{srcs}; only chains of layers (each fed by the one before) are supported")
            prev = cfg.get("config", {}).get("name", cfg.get("name"))
        return layers
    raise UnsupportedOpError(f"{path.name}: model class {cls!r} is not supported; expected "
                             f"'Sequential' or a chain-shaped 'Functional' model")


def _inbound_names(nodes) -> list:
    """Names of the layers feeding a functional layer (Keras 2 and 3 node formats)."""
    out = []
    for node in nodes:
        if isinstance(node, dict):  # Keras 3
            for arg in node.get("args", []):
                for t in (arg if isinstance(arg, list) else [arg]):
                    if isinstance(t, dict) and "keras_history" in t.get("config", {}):
                        out.append(t["config"]["keras_history"][0])
        else:  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            out.extend(t[0] for t in node)
    return out


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
    layer = KerasLayer(cfg["class_name"], cfg.get("config", {}))
    if layer.name in groups:
        layer.weights = _collect(groups[layer.name])
    return layer
