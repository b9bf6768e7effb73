"""Checks shared by the Keras layer converters."""

from __future__ import annotations

from dataclasses import dataclass

from edgernn.errors import ModelFormatError, UnsupportedOpError


@dataclass(frozen=True)
class TensorInfo:
    """A tensor a functional layer is called on: per-step ``size`` and Keras ``rank``
    (3 for ``[batch, time, features]``, 2 after ``return_sequences=False``)."""

    size: int
    rank: int


@dataclass
class ConvertContext:
    """What a layer converter may need beyond its own layer.

    ``call``: in a functional model, the arguments of the call being converted
    (:class:`TensorInfo` for tensors, floats for constants such as ``x * 2.0``);
    None in a Sequential stack.
    """

    keras_major: int
    fmt: str
    call: list | None = None


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
    if cfg.get("go_backwards") and not in_bidirectional:
        raise UnsupportedOpError(
            f"layer {layer.name!r} ({layer.class_name}): go_backwards=True is not supported: "
            f"Keras returns the outputs of the reversed run in reversed time order "
            f"(return_sequences=True) or its output after time step 0 "
            f"(return_sequences=False), while edgernn.Reverse gives them in time order and a "
            f"many-to-one model outputs its last row; wrap the layer in Bidirectional, or "
            f"feed the sequence reversed to a go_backwards=False layer")
    bad = {"return_state": bool(cfg.get("return_state")),
           "time_major": bool(cfg.get("time_major"))}
    for attr, is_bad in bad.items():
        if is_bad:
            raise UnsupportedOpError(f"layer {layer.name!r} ({layer.class_name}): {attr}=True "
                                     f"is not supported; supported: {attr}=False")
