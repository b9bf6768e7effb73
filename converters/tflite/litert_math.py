"""A converted TFLite model made to compute as LiteRT's builtin kernels do, bit for bit.

A model whose products have int8 weights with inputs quantised at every call
(LiteRT's dynamic range, "hybrid" kernels) carries its state through those
quantisations: a value one float32 ulp away from LiteRT's can sit on the other
side of a rounding step of the next call's quantised input, and from then on
the state is another. Measured on DTLN's int8 stages free-running over 2000
blocks of speech: 3.9e-2 apart on the mask and 4.4e-3 on stage 2's samples with
edgernn's own arithmetic, equal with this pass. So :func:`follow_litert` changes,
op by op, the arithmetic that differed from LiteRT's builtin kernels (checked
against LiteRT 2.3's x86-64 wheel tensor by tensor with
``experimental_preserve_all_tensors``; its aarch64 build compiles Eigen with fused
multiply-adds, which is not emulated: measured under QEMU cortex-a72, its TANH is up to
7 ulp and its LOGISTIC up to 4 ulp apart, and its hybrid product fuses the bias into one
rounding; ``tests/litert_oracle.py`` has the figures):

- ``LOGISTIC``/``TANH``: LiteRT runs Eigen's float32 approximations (within 5 ulp;
  edgernn: libm or its own rational), so they become the activations
  ``sigmoid_litert``/``tanh_litert``, which compute Eigen's, operation for operation.
- ``MEAN``: LiteRT sums in float32, in order (edgernn: in float64), so the
  ``Reduce`` becomes ``mean_litert``, which does the same.
- A hybrid ``FULLY_CONNECTED``/``CONV_2D`` with a bias: LiteRT rounds
  ``acc * (s_x * s_w)`` to float32 and then adds the bias; edgernn's kernel may fuse
  that into one multiply-add (one rounding). The Dense keeps its int8 product without
  the bias, and an ``Add`` of the bias (then its activation) follows it.

- A hybrid product's input: LiteRT rounds ``x * (127 / max|x|)``, edgernn the
  quotient ``x / (max|x| / 127)``; they differ at rare near-ties (DTLN stage 2, block
  1418 of 2000: -4.4999995 against -4.5), so the op's ``QuantParams`` get
  ``multiply_by_inverse`` (symmetric inputs; asymmetric ones are left as they are).

What was checked and agrees already: the per-call scale ``max|x| / 127``, the
rounding (float32, half away from zero), the int32 products, ``ADD``,
``SUB``, ``MUL``, ``SQUARED_DIFFERENCE``, ``RSQRT``. Not changed: a fused activation
of a ``FULLY_CONNECTED``, LSTM/GRU cells recognised from a graph and fused LSTMs
(edgernn's kernels), and LiteRT's default XNNPack delegate, which is another
arithmetic.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import edgernn

NOTE = ("as LiteRT's builtin hybrid kernel (arithmetic='litert'): x * (127 / max|x|) "
        "rounded half away from zero, the product rounded before the bias is added")
#: edgernn activation -> LiteRT's builtin kernel's
LITERT_ACTIVATIONS = {"sigmoid": "sigmoid_litert", "tanh": "tanh_litert"}


def has_hybrid_products(model) -> bool:
    """True when some op of ``model`` has int8 weights and quantises its inputs per call."""
    return any(getattr(t.op, "quant", None) is not None and t.op.quant.mode == "int8-weights"
               for t in model.graph.nodes)


def follow_litert(model):
    """``model`` (converted from a TFLite file) with the changes listed in the module
    docstring; node names are kept (a split Dense's bias is node ``<name>.bias``, which
    the Dense's consumers now read), the quantisation report's indices follow."""
    g = model.graph
    new = {id(t): edgernn.Input(t.size, name=t.name) for t in g.inputs}
    followed = set()
    for t in g.nodes:
        args = [new[id(i)] for i in t.inputs]
        op = t.op
        if isinstance(op, edgernn.Activation) and op.name in LITERT_ACTIVATIONS:
            op = edgernn.Activation(LITERT_ACTIVATIONS[op.name])
        elif isinstance(op, edgernn.Reduce) and op.func == "mean":
            op = dataclasses.replace(op, func="mean_litert")
        if _hybrid(op) and op.quant.round_half_away and not op.quant.dynamic_zero_point:
            op = dataclasses.replace(op, quant=dataclasses.replace(op.quant,
                                                                   multiply_by_inverse=True))
            followed.add(t.name)
        if _hybrid(op) and op.bias is not None and np.any(np.asarray(op.bias) != 0):
            act = op.activation
            y = dataclasses.replace(op, bias=None, activation="linear")(*args, name=t.name)
            y = edgernn.Add(np.asarray(op.bias, np.float32))(y, name=f"{t.name}.bias")
            if act.name != "linear":
                y = act(y, name=f"{t.name}.activation")
            new[id(t)] = y
        else:
            new[id(t)] = op(*args, name=t.name)
    quant = model.quantization
    if quant is not None:
        quant = {**quant, "layers": [dict(e) for e in quant["layers"]]}
    out = edgernn.Model(inputs=[new[id(t)] for t in g.inputs],
                        outputs=[new[id(t)] for t in g.outputs],
                        provenance={**model.provenance, "arithmetic": "litert"},
                        return_sequences=model.return_sequences,
                        initial_state=model.initial_state,
                        updates={new[id(st)]: new[id(v)] for st, v in g.updates},
                        quantization=quant,
                        audio=getattr(model, "audio", None))
    if quant is not None:
        index = {t.name: i for i, t in enumerate(out.graph.nodes)}
        for e in out.quantization["layers"]:
            e["index"] = index[e["name"]]
            if e["name"] in followed:
                e["note"] = NOTE
    return out


def _hybrid(op) -> bool:
    return (isinstance(op, edgernn.Dense) and op.quant is not None
            and op.quant.mode == "int8-weights")


__all__ = ["follow_litert", "has_hybrid_products", "LITERT_ACTIVATIONS", "NOTE"]
