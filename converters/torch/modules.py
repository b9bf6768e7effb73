"""Converters for single ``torch.nn`` modules, registered in :data:`MODULES`.

PyTorch's layout is edgernn's (``weight_ih_l0: float32[G*H, I]``, gates
LSTM i, f, g, o and GRU r, z, n, GRU reset after the recurrent matmul), so
weights copy straight in. A multi-layer ``nn.LSTM``/``GRU``/``RNN`` becomes one
layer per ``num_layers``, a bidirectional one :class:`edgernn.Bidirectional`
(concat; whole-sequence only). ``batch_first`` does not matter to a stream
(it takes ``[T, features]``); inter-layer ``dropout`` is a no-op at inference
(a warning says so); ``proj_size > 0`` raises UnsupportedOpError.
"""

from __future__ import annotations

import warnings

import numpy as np

import edgernn
from edgernn.errors import UnsupportedOpError


def _np(t) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().astype(np.float32)


def _fail(name, mod, what) -> UnsupportedOpError:
    return UnsupportedOpError(f"module {name!r} ({type(mod).__name__}): {what}; supported "
                              f"modules: {', '.join(sorted(MODULES))}")


def _rnn_kwargs(name, mod):
    cls = type(mod).__name__.replace("Cell", "")
    if cls == "RNN":
        if mod.nonlinearity not in ("tanh", "relu"):
            raise _fail(name, mod, f"nonlinearity={mod.nonlinearity!r}")
        return edgernn.RNN, {"nonlinearity": mod.nonlinearity}
    if cls == "GRU":
        return edgernn.GRU, {"linear_before_reset": True}
    return edgernn.LSTM, {}


def convert_recurrent(name, mod) -> list:
    """nn.RNN / nn.LSTM / nn.GRU -> one layer (or Bidirectional) per num_layers."""
    if getattr(mod, "proj_size", 0):
        raise _fail(name, mod, f"proj_size={mod.proj_size} (LSTM projections) is not "
                               f"supported; supported: proj_size=0")
    if mod.dropout and mod.num_layers > 1:
        warnings.warn(f"module {name!r}: dropout={mod.dropout} between layers is ignored "
                      f"(inference)", stacklevel=3)
    layer_cls, kw = _rnn_kwargs(name, mod)
    out = []
    for k in range(mod.num_layers):
        dirs = []
        for sfx in ("", "_reverse")[:2 if mod.bidirectional else 1]:
            p = f"_l{k}{sfx}"
            dirs.append(layer_cls(_np(getattr(mod, "weight_ih" + p)),
                                  _np(getattr(mod, "weight_hh" + p)),
                                  _np(getattr(mod, "bias_ih" + p, None)),
                                  _np(getattr(mod, "bias_hh" + p, None)), **kw))
        out.append(dirs[0] if len(dirs) == 1 else edgernn.Bidirectional(dirs[0], dirs[1]))
    return out


def convert_cell(name, mod) -> list:
    """nn.RNNCell / nn.LSTMCell / nn.GRUCell -> one layer (a stream step is a call)."""
    layer_cls, kw = _rnn_kwargs(name, mod)
    return [layer_cls(_np(mod.weight_ih), _np(mod.weight_hh), _np(mod.bias_ih),
                      _np(mod.bias_hh), **kw)]


def convert_linear(name, mod) -> list:
    """nn.Linear -> Dense (same [out, in] weight)."""
    return [edgernn.Dense(_np(mod.weight), _np(mod.bias))]


def convert_embedding(name, mod) -> list:
    """nn.Embedding -> Embedding (``padding_idx`` only affects training)."""
    if mod.max_norm is not None:
        raise _fail(name, mod, f"max_norm={mod.max_norm} renormalises rows at lookup")
    return [edgernn.Embedding(_np(mod.weight))]


def convert_identity(name, mod) -> list:
    """nn.Identity, nn.Dropout*: nothing at inference."""
    return []


def _act(act_name, **params):
    def convert(name, mod):
        kw = {k: (f(mod) if callable(f) else f) for k, f in params.items()}
        return [edgernn.Activation(act_name, **kw)]
    convert.__doc__ = f"activation module -> edgernn {act_name!r}"
    return convert


def convert_softmax(name, mod) -> list:
    """nn.Softmax / nn.LogSoftmax over the last dimension only."""
    if mod.dim != -1:
        raise _fail(name, mod, f"dim={mod.dim}; only dim=-1 (the features) is supported")
    return [edgernn.Activation("log_softmax" if type(mod).__name__ == "LogSoftmax"
                               else "softmax")]


def convert_softplus(name, mod) -> list:
    """nn.Softplus with beta=1 (the threshold is where log1p(exp(x)) == x in float32)."""
    if mod.beta != 1 or mod.threshold < 15:
        raise _fail(name, mod, f"beta={mod.beta}, threshold={mod.threshold}; supported: "
                               f"beta=1, threshold >= 15")
    return [edgernn.Activation("softplus")]


MODULES = {
    "LSTM": convert_recurrent, "GRU": convert_recurrent, "RNN": convert_recurrent,
    "LSTMCell": convert_cell, "GRUCell": convert_cell, "RNNCell": convert_cell,
    "Linear": convert_linear, "Embedding": convert_embedding,
    "Identity": convert_identity, "Dropout": convert_identity,
    "Dropout1d": convert_identity, "AlphaDropout": convert_identity,
    "ReLU": _act("relu"), "Tanh": _act("tanh"), "Sigmoid": _act("sigmoid"),
    "LeakyReLU": _act("leaky_relu", alpha=lambda m: m.negative_slope),
    "ELU": _act("elu", alpha=lambda m: m.alpha),
    "Hardsigmoid": _act("hard_sigmoid", alpha=1.0 / 6.0, beta=0.5),
    "Softsign": _act("softsign"), "Softplus": convert_softplus,
    "Softmax": convert_softmax, "LogSoftmax": convert_softmax,
}
