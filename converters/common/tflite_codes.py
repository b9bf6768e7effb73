"""TFLite enum codes the converters read, written once.

``ActivationFunctionType`` of LiteRT's ``schema.fbs``: the fused activation of
FULLY_CONNECTED, ADD, CONCATENATION, ... and the cell activation of the fused
LSTM. Each converter maps the names to what it needs (an edgernn activation,
a numpy function) and refuses the rest by name.
"""

from __future__ import annotations

from edgernn.errors import UnsupportedOpError

#: ActivationFunctionType code -> name
FUSED_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH",
                    5: "SIGN_BIT"}

#: the fused activations edgernn has: name -> edgernn activation name
EDGERNN_ACTIVATION = {"NONE": "linear", "RELU": "relu", "TANH": "tanh"}


def fused_activation_name(op, default: int = 0, supported=EDGERNN_ACTIVATION) -> str:
    """The name of ``op``'s ``FusedActivationFunction`` (``default`` when absent);
    UnsupportedOpError naming the operator unless it is in ``supported``."""
    code = op.opt("FusedActivationFunction", default)
    name = FUSED_ACTIVATION.get(code, f"code {code}")
    if name not in supported:
        raise UnsupportedOpError(f"{op}: fused activation {name} ({code}) is not supported; "
                                 f"supported: "
                                 + ", ".join(f"{n} ({c})" for c, n in FUSED_ACTIVATION.items()
                                             if n in supported))
    return name


__all__ = ["FUSED_ACTIVATION", "EDGERNN_ACTIVATION", "fused_activation_name"]
