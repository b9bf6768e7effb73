"""Keras activations (names and layers) -> :class:`edgernn.Activation`."""

from __future__ import annotations

import edgernn
from edgernn.errors import UnsupportedOpError

#: Keras name -> (edgernn name, alpha, beta); hard_sigmoid and leaky_relu
#: differ between Keras 2 and 3 and are handled in :func:`activation`.
_SIMPLE = {
    "linear": "linear", "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid",
    "softmax": "softmax", "softsign": "softsign", "softplus": "softplus", "elu": "elu",
    "log_softmax": "log_softmax",
}


def activation(spec, ctx, where: str) -> edgernn.Activation:
    """The edgernn activation for a Keras activation config value.

    Parameters
    ----------
    spec : str, dict or None
        ``"tanh"``, or Keras 3's serialised form ``{"class_name": ..., "config": ...}``.
    ctx : ConvertContext
        ``ctx.keras_major`` picks the version-dependent constants.
    where : str
        ``"layer 'lstm' (LSTM) attribute 'activation'"``, for error messages.
    """
    name = spec
    if isinstance(spec, dict):
        name = spec.get("config", {}).get("name") or spec.get("class_name")
    if name is None:
        name = "linear"
    name = str(name)
    if name in _SIMPLE:
        return edgernn.Activation(_SIMPLE[name])
    if name == "hard_sigmoid":
        return edgernn.Activation("hard_sigmoid", alpha=0.2 if ctx.keras_major < 3 else 1 / 6,
                                  beta=0.5)
    if name == "leaky_relu" and ctx.keras_major >= 3:
        return edgernn.Activation("leaky_relu", alpha=0.2)
    raise UnsupportedOpError(f"{where}: activation {name!r} is not supported; supported: "
                             f"{sorted([*_SIMPLE, 'hard_sigmoid', 'leaky_relu (Keras 3)'])}")


def convert_activation(layer, ctx):
    """``keras.layers.Activation(name)``."""
    where = f"layer {layer.name!r} (Activation) attribute 'activation'"
    return [activation(layer.config.get("activation"), ctx, where)]


def convert_softmax(layer, ctx):
    """``keras.layers.Softmax`` over the last axis."""
    axis = layer.config.get("axis", -1)
    if axis not in (-1, [-1], 2, [2]):
        raise UnsupportedOpError(f"layer {layer.name!r} (Softmax): axis {axis!r} is not "
                                 f"supported; only the feature axis (-1)")
    return [edgernn.Activation("softmax")]


def convert_unit_normalization(layer, ctx):
    """``keras.layers.UnitNormalization`` over the last axis: Keras 3 divides by
    ``max(||x||, 1e-12)`` (``alpha=1e-24``), Keras 2 uses ``tf.math.l2_normalize``
    (``rsqrt(max(sum x**2, 1e-12))``: ``alpha=1e-12``)."""
    axis = layer.config.get("axis", -1)
    if axis not in (-1, [-1], 2, [2]):
        raise UnsupportedOpError(f"layer {layer.name!r} (UnitNormalization): axis {axis!r} "
                                 f"is not supported; only the feature axis (-1)")
    return [edgernn.Activation("l2_normalize", alpha=1e-24 if ctx.keras_major >= 3 else 1e-12)]


def convert_relu(layer, ctx):
    """``keras.layers.ReLU`` without ``max_value`` or ``threshold``; ``LeakyReLU``."""
    cfg = layer.config
    if cfg.get("max_value") is not None or float(cfg.get("threshold", 0.0) or 0.0) != 0.0:
        raise UnsupportedOpError(f"layer {layer.name!r} ({layer.class_name}): max_value and "
                                 f"threshold are not supported, got max_value="
                                 f"{cfg.get('max_value')!r}, threshold={cfg.get('threshold')!r}")
    slope = cfg.get("negative_slope", cfg.get("alpha"))
    if layer.class_name == "LeakyReLU":
        slope = 0.3 if slope is None else slope
    if slope:
        return [edgernn.Activation("leaky_relu", alpha=float(slope))]
    return [edgernn.Activation("relu")]
