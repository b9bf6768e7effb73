"""Checks shared by the Keras layer converters."""

from __future__ import annotations

from dataclasses import dataclass

from edgernn.errors import ModelFormatError, UnsupportedOpError


@dataclass
class ConvertContext:
    """What a layer converter may need beyond its own layer."""

    keras_major: int
    fmt: str


def expect_weights(layer, n: int) -> list:
    """The layer's ``n`` arrays, or a ModelFormatError saying what was found."""
    if len(layer.weights) != n:
        raise ModelFormatError(f"layer {layer.name!r} ({layer.class_name}): expected {n} "
                               f"weight arrays, found {len(layer.weights)} "
                               f"{[w.shape for w in layer.weights]}")
    return layer.weights


def check_recurrent_config(layer, in_bidirectional: bool = False) -> None:
    """Reject recurrent-layer options edgernn cannot run."""
    cfg = layer.config
    bad = {"return_state": bool(cfg.get("return_state")),
           "time_major": bool(cfg.get("time_major")),
           "go_backwards": bool(cfg.get("go_backwards")) and not in_bidirectional}
    for attr, is_bad in bad.items():
        if is_bad:
            raise UnsupportedOpError(f"layer {layer.name!r} ({layer.class_name}): {attr}=True "
                                     f"is not supported; supported: {attr}=False")
