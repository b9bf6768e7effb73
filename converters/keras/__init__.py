"""Keras models (``.keras`` Keras 3 zips, ``.h5`` Keras 2 files) -> :class:`edgernn.Model`.

Reads the stored config and weights with ``h5py``; TensorFlow is not needed.
Supported layers are those of :data:`LAYERS`. A Sequential model becomes a
stack; a functional model a graph (:mod:`converters.keras.functional`): merge
layers ``Concatenate``, ``Add``, ``Subtract``, ``Multiply``, ``Average``
(and the ``keras.ops`` a model stores for ``x + y``, ``x * 2.0``), several
inputs (the model takes them concatenated, ``model.inputs``) and several
outputs (``model.outputs``, ``model.split``), nodes and state named after the
Keras layers. Recurrent layers may be stateful or not (an edgernn stream
always carries its state; ``reset()`` it where Keras would start afresh). A
recurrent layer with ``return_sequences=False`` gives the last step only, so
only per-step layers (Dense, activations, normalisation, dropout, merges of
such tensors) may follow it; when every output is such a tensor the model has
``return_sequences=False``: ``Stream.run`` returns that one row, Keras'
output (``step`` still gives a row per step). ``go_backwards=True`` outside a
Bidirectional is refused: Keras returns that layer's outputs in reversed time
order, which no edgernn layer does.

>>> from converters import from_keras
>>> model = from_keras("model.keras")               # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import edgernn
from edgernn.errors import ModelFormatError, UnsupportedOpError

from ..common.guard import naming
from .activation import (
    convert_activation,
    convert_relu,
    convert_softmax,
    convert_unit_normalization,
)
from .bidirectional import convert_bidirectional
from .common import ConvertContext
from .dense import convert_dense
from .embedding import convert_embedding
from .functional import build
from .gru import convert_gru
from .identity import convert_identity
from .lstm import convert_lstm
from .merge import MERGE
from .reader import read_keras
from .rnn import convert_simple_rnn
from .time_distributed import convert_time_distributed

_PER_STEP_CLASSES = ("Dense", "Activation", "ReLU", "LeakyReLU", "Softmax", "Dropout",
                     "SpatialDropout1D", "GaussianNoise", "GaussianDropout",
                     "UnitNormalization")
_PER_STEP = {*_PER_STEP_CLASSES, "TimeDistributed"}
#: Keras class name -> converter ``(KerasLayer, ConvertContext) -> [edgernn layer, ...]``
LAYERS = {
    "InputLayer": convert_identity,
    "Dropout": convert_identity,
    "SpatialDropout1D": convert_identity,
    "GaussianNoise": convert_identity,
    "GaussianDropout": convert_identity,
    "Dense": convert_dense,
    "Activation": convert_activation,
    "ReLU": convert_relu,
    "LeakyReLU": convert_relu,
    "Softmax": convert_softmax,
    "UnitNormalization": convert_unit_normalization,
    "Embedding": convert_embedding,
    "SimpleRNN": convert_simple_rnn,
    "LSTM": convert_lstm,
    "GRU": convert_gru,
    "Bidirectional": convert_bidirectional,
}
LAYERS["TimeDistributed"] = lambda layer, ctx: convert_time_distributed(
    layer, ctx, {k: LAYERS[k] for k in _PER_STEP_CLASSES})
LAYERS.update(MERGE)

_RECURRENT = {"SimpleRNN", "LSTM", "GRU", "Bidirectional"}

__all__ = ["from_keras", "LAYERS"]


def from_keras(path) -> edgernn.Model:
    """Convert a Keras model file.

    Parameters
    ----------
    path : str or Path
        A ``.keras`` file (Keras 3) or an ``.h5`` file holding a whole model
        (config and weights; Keras 2 or Keras 3 legacy H5).

    Returns
    -------
    edgernn.Model
        Float32; ``return_sequences`` is False when the output is the last
        step only (also noted in ``provenance["output"]``, with the source
        file's SHA-256 and the Keras version).

    Raises
    ------
    UnsupportedOpError
        For a layer class or option edgernn cannot run (names layer and class).
    ModelFormatError
        For an unreadable file or weights that do not match the config.
    """
    kf = read_keras(path)
    with naming(Path(path).name):
        return _convert(kf, path)


def _convert(kf, path) -> edgernn.Model:
    try:
        major = int(str(kf.keras_version).split(".")[0])
    except ValueError:
        major = 3 if kf.fmt == "keras" else 2
    ctx = ConvertContext(keras_major=major, fmt=kf.fmt)
    provenance = {"source": "keras", "file": Path(path).name, "sha256": kf.sha256,
                  "format": kf.fmt, "keras_version": kf.keras_version,
                  "converter": "converters.keras", "edgernn_version": edgernn.__version__}
    if kf.functional:
        inputs, outputs, last = build(kf, ctx, LAYERS, _RECURRENT, _PER_STEP | set(MERGE))
        every = not all(last)
        provenance["output"] = "every_step" if every else "last_step"
        if every and any(last):
            provenance["last_step_outputs"] = [t.name for t, la in zip(outputs, last,
                                                                          strict=True) if la]
        return edgernn.Model(inputs=inputs, outputs=outputs, provenance=provenance,
                             return_sequences=every)
    out, last_step_from = [], None
    for layer in kf.layers:
        conv = LAYERS.get(layer.class_name)
        if conv is None or layer.class_name in MERGE:
            raise UnsupportedOpError(f"layer {layer.name!r} of class {layer.class_name!r} is "
                                     f"not supported in a Sequential model; supported classes: "
                                     f"{sorted(set(LAYERS) - set(MERGE))}")
        if last_step_from is not None and layer.class_name not in _PER_STEP:
            raise UnsupportedOpError(
                f"layer {layer.name!r} ({layer.class_name}) follows {last_step_from!r}, which "
                f"has return_sequences=False; only per-step layers {sorted(_PER_STEP)} may "
                f"follow such a layer")
        try:
            with naming(f"layer {layer.name!r} ({layer.class_name})"):
                out.extend(conv(layer, ctx))
        except ValueError as exc:
            if isinstance(exc, ModelFormatError):
                raise
            raise ModelFormatError(f"layer {layer.name!r} ({layer.class_name}): {exc}") from exc
        inner = layer.config.get("layer", {}).get("config", {}) if layer.class_name == \
            "Bidirectional" else layer.config
        if layer.class_name in _RECURRENT and not inner.get("return_sequences", False):
            last_step_from = layer.name
    provenance["output"] = "last_step" if last_step_from else "every_step"
    return edgernn.Model(out, provenance=provenance, return_sequences=last_step_from is None)
