"""int8 weights for the graph GainNet while ``converters.quantize`` walks chains only.

Each Dense and GRU gets int8 weights with the quantiser's own per-output-row
symmetric scales (`converters.quantize.quantize_weight`) in the runtime's
dynamic mode ``"int8-weights"`` (QUANT_SPEC.md: inputs quantised per call with
``max|v| / 127``), rebuilt with edgernn's graph API in the same topology as
`model.GainNet`. The report (float vs int8 on calibration and held-out
feature streams, end to end and per output) is stored in ``model.quantization``.
"""

from __future__ import annotations

import numpy as np
from model import GainNet, folded

import edgernn as e
from converters.quantize import quantize_weight

MODE = "int8-weights"


def _p(t):
    return t.detach().numpy().astype(np.float32)


def _dense(m, act, q):
    if not q:
        return e.Dense(_p(m.weight), _p(m.bias), activation=act)
    w, s = quantize_weight(_p(m.weight))
    return e.Dense(w, _p(m.bias), activation=act, quant=e.QuantParams(MODE, scales={"weight": s}))


def _gru(g, q):
    wi, wh = _p(g.weight_ih_l0), _p(g.weight_hh_l0)
    if not q:
        return e.GRU(wi, wh, _p(g.bias_ih_l0), _p(g.bias_hh_l0))
    (wi, si), (wh, sh) = quantize_weight(wi), quantize_weight(wh)
    return e.GRU(wi, wh, _p(g.bias_ih_l0), _p(g.bias_hh_l0),
                 quant=e.QuantParams(MODE, scales={"weight_ih": si, "weight_hh": sh}))


def build(net: GainNet, quantized: bool, **kw):
    """The folded GainNet as an edgernn graph model, float or with int8 weights."""
    net = folded(net)
    x = e.Input(net.dense.in_features, name="features")
    d = _dense(net.dense, "tanh", quantized)(x, name="dense")
    v = _gru(net.vad_gru, quantized)(d, name="vad_gru")
    u = _gru(net.noise_gru, quantized)(e.concat([d, v, x]), name="noise_gru")
    w = _gru(net.gain_gru, quantized)(e.concat([v, u, x]), name="gain_gru")
    gains = _dense(net.gain_out, "sigmoid", quantized)(w, name="gains")
    vad = _dense(net.vad_out, "sigmoid", quantized)(v, name="vad")
    return e.Model(inputs=x, outputs=[gains, vad], **kw)


def _metrics(ref, got):
    err = got - ref
    rms = float(np.sqrt(np.mean(err ** 2)))
    return {"max_abs": float(np.abs(err).max()), "rms": rms,
            "snr_db": float(10 * np.log10(np.mean(ref ** 2) / max(rms ** 2, 1e-30)))}


def quantize_graph(net: GainNet, calib, held, float_model=None):
    """int8-weights GainNet with its error report; calib/held: float32[N, T, F] streams."""
    ref = float_model or build(net, quantized=False)
    q = build(net, quantized=True)
    report = {"mode": MODE, "method": "per-row symmetric int8 weights "
              "(converters.quantize.quantize_weight), inputs per call (QUANT_SPEC dynamic)",
              "layers": [{"node": t.name, "op": type(t.op).__name__,
                          "precision": MODE if getattr(t.op, "quant", None) else "float32"}
                         for t in q.graph.nodes], "end_to_end": {}}
    for split, data in (("calibration", calib), ("held_out", held)):
        a = np.concatenate([ref.stream().run(s) for s in data])
        b = np.concatenate([q.stream().run(s) for s in data])
        report["end_to_end"][split] = {name: _metrics(ref.split(a)[name], q.split(b)[name])
                                       for name, _ in ref.outputs}
        report["end_to_end"][split]["steps"] = int(a.shape[0])
    q.quantization = report
    return q
