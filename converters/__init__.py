"""Converters: models from other frameworks into :class:`edgernn.Model`.

Workstation-side code. Each source format lives in its own subpackage and is
imported only when used, so ``import converters`` stays light:

=============  ===========================  ===================================
function       source                       needs
=============  ===========================  ===================================
from_onnx      ``.onnx`` file / ModelProto  ``onnx``
from_torch     a ``torch.nn.Module``        ``torch`` (the caller's own)
from_keras     ``.keras`` / ``.h5`` file    ``h5py`` (TensorFlow not required)
from_tflite    ``.tflite`` file             the LiteRT flatbuffer schema
quantize       an ``edgernn.Model``          numpy (tqdm for the progress bar)
=============  ===========================  ===================================
"""

from __future__ import annotations

from importlib import import_module


def from_onnx(model, **kwargs):
    """Convert an ONNX model (path or ``onnx.ModelProto``); see :mod:`converters.onnx`."""
    return import_module("converters.onnx").from_onnx(model, **kwargs)


def from_torch(module, **kwargs):
    """Convert a ``torch.nn.Module``; see :mod:`converters.torch`."""
    return import_module("converters.torch").from_torch(module, **kwargs)


def from_keras(path, **kwargs):
    """Convert a Keras ``.keras`` or ``.h5`` file; see :mod:`converters.keras`."""
    return import_module("converters.keras").from_keras(path, **kwargs)


def from_tflite(path, **kwargs):
    """Convert a ``.tflite`` flatbuffer; see :mod:`converters.tflite`."""
    return import_module("converters.tflite").from_tflite(path, **kwargs)


def quantize(model, calibration=None, **kwargs):
    """int8-quantise an ``edgernn.Model``; see :mod:`converters.quantize`.

    (Once the subpackage is imported, ``converters.quantize`` is the package,
    which is callable the same way.)"""
    return import_module("converters.quantize").quantize(model, calibration, **kwargs)


__all__ = ["from_onnx", "from_torch", "from_keras", "from_tflite", "quantize"]
