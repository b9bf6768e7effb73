"""``quantize()``: calibrate, choose ranges by measured error, honour ``max_error``, report.

Every figure is measured in the edgernn engine (:mod:`.trace`) on the real
quantised ops: the float model's tensors are recorded over the data, each
op is calibrated alone on its recorded float input, the quantised graph is
rebuilt with the same node names, inputs and outputs, and run again.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

import edgernn
from edgernn.errors import EdgeRNNError, ModelFormatError, UnsupportedOpError

from . import ranges as R
from . import trace
from .calibration import CalibrationError, carve_held_out, load_sequences, settle_steps
from .modes import MIN_MACS, resolve_modes, small_nodes
from .qlayer import build, has_state_product, kind, quant

METHODS = ("auto", "minmax", "percentile", "mse")
DYNAMIC = ("asymmetric", "symmetric")
_BOUNDED = {"tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "sigmoid": (0.0, 1.0),
            "hard_sigmoid": (0.0, 1.0)}


# --- measurements ----------------------------------------------------------------------

def metrics(ref: list, got: list) -> dict | None:
    """max_abs, rms and snr_db (None when the error is exactly zero) over all steps."""
    if not ref:
        return None
    r = np.concatenate([np.asarray(a, np.float64).reshape(len(a), -1) for a in ref])
    g = np.concatenate([np.asarray(a, np.float64).reshape(len(a), -1) for a in got])
    e = g - r
    se, sr = float((e * e).sum()), float((r * r).sum())
    snr = None if se == 0 else (float(10 * np.log10(sr / se)) if sr > 0 else float("-inf"))
    return {"max_abs": float(np.abs(e).max()), "rms": float(np.sqrt(se / e.size)),
            "snr_db": None if snr is None or not np.isfinite(snr) else round(snr, 2),
            "steps": int(r.shape[0])}


def _key(m):
    return (m["max_abs"], m["rms"])


def compact(v, digits: int = 4):
    """``v`` (a JSON-able report) with every float rounded to ``digits`` significant
    digits: figures of an error report, kept small in the model file."""
    if isinstance(v, float):
        return float(f"{v:.{digits}g}") if np.isfinite(v) else v
    if isinstance(v, dict):
        return {k: compact(x, digits) for k, x in v.items()}
    if isinstance(v, list):
        return [compact(x, digits) for x in v]
    return v


def state_bound(op):
    """The range h cannot leave (None when unbounded), from the cell's activations."""
    k = kind(op)
    if k == "RNN":
        return _BOUNDED.get(op.nonlinearity.name)
    acts = op.activations
    if acts[0].name not in ("sigmoid", "hard_sigmoid"):
        return None
    b = _BOUNDED.get(acts[-1].name if k == "LSTM" else acts[1].name)
    return None if b is None else (min(b[0], 0.0), max(b[1], 0.0))


class _Bar:
    def __init__(self, on):
        self.bar = None
        if on:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=0, unit="pass", desc="quantising", file=sys.stderr,
                            leave=False, dynamic_ncols=True)

    def plan(self, n, what=None):
        if self.bar is not None:
            self.bar.total += n
            if what:
                self.bar.set_description(what)
            self.bar.refresh()

    def tick(self):
        if self.bar is not None:
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _calibrate(op, mode, x_in, y_ref, method, bar, dynamic):
    """(quantised op, ranges record) for one op; static ranges by measured error."""
    if mode == "int8-weights":
        return build(op, mode, dynamic_zero_point=dynamic == "asymmetric"), {}
    recurrent = has_state_product(op)
    methods = None if method == "auto" else (method,)
    xc = R.candidates(np.concatenate([np.ravel(a) for a in x_in]), None, methods)
    hc = R.candidates(np.concatenate([np.ravel(a) for a in y_ref]), state_bound(op),
                      methods) if recurrent else {None: None}
    bar.plan(len(xc) + (len(hc) - 1 if len(hc) > 1 else 0))

    def score(xr, hr):
        ql = build(op, mode, R.affine(*xr), None if hr is None else R.affine(*hr))
        bar.tick()
        return metrics(y_ref, trace.run_op(ql, x_in)), ql

    h0 = next(iter(hc))
    tried_x = {n: score(r, hc[h0]) for n, r in xc.items()}
    bx = min(tried_x, key=lambda n: _key(tried_x[n][0]))
    tried_h = {h0: tried_x[bx]}
    if recurrent and len(hc) > 1:
        tried_h.update({n: score(xc[bx], r) for n, r in hc.items() if n != h0})
    bh = min(tried_h, key=lambda n: _key(tried_h[n][0]))
    ql = tried_h[bh][1]

    def rec(name, rng, tried, scale, zp):
        return {"method": name, "min": rng[0], "max": rng[1], "scale": scale,
                "zero_point": zp, "candidates": {n: {"max_abs": m["max_abs"], "rms": m["rms"]}
                                                 for n, (m, _) in tried.items()}}

    q = quant(ql)
    out = {"input": rec(bx, xc[bx], tried_x, q.input_scale, q.input_zero_point)}
    if recurrent:
        out["state"] = rec(bh, hc[bh], tried_h, q.state_scale, q.state_zero_point)
    return ql, out


# --- the quantiser ----------------------------------------------------------------------

def quantize(model, calibration=None, mode="int8", held_out=None, max_error=None,
             ranges="auto", progress=True, require_settled=False, dynamic="asymmetric",
             min_macs=MIN_MACS):
    """Quantise ``model`` to int8; see :mod:`converters.quantize`.

    ``min_macs``: a node that ``mode`` does not name (a single mode, or a dict's
    ``"default"``) and whose op does fewer multiply-accumulates per step stays float32,
    with the reason in the report (int8 would be slower there; ``0`` quantises every
    node). The choice depends on the shapes only, so the model computes the same on
    every CPU.

    ``calibration=None`` (``int8-weights`` only, as LiteRT's and ONNX Runtime's dynamic
    range quantisation): the weights alone are quantised and the report says the
    error was not measured. With data, a state that never settles from different
    starting states (normal for big GRUs) is a warning; ``require_settled=True``
    makes it an error.
    """
    if not isinstance(model, edgernn.Model):
        raise ModelFormatError(f"quantize: expected an edgernn.Model, got "
                               f"{type(model).__name__}")
    if dynamic not in DYNAMIC:
        raise ModelFormatError(f"dynamic: expected one of {list(DYNAMIC)}, got {dynamic!r}")
    if ranges not in METHODS:
        raise ModelFormatError(f"ranges: expected one of {list(METHODS)}, got {ranges!r}")
    if max_error is not None and not (np.isfinite(max_error) and max_error > 0):
        raise ModelFormatError(f"max_error: expected a positive number, got {max_error!r}")
    if model.initial_state is not None:
        raise UnsupportedOpError("quantize: models with a non-zero initial_state are not "
                                 "supported yet")
    if any(quant(op) is not None for op in model.layers):
        raise ModelFormatError("quantize: the model is already quantised (int8 ops); "
                               "quantise its float original")
    nodes = model.graph.nodes
    per = resolve_modes(model, mode)
    small = small_nodes(model, mode, per, min_macs)
    if calibration is None:
        return _without_data(model, per, mode, held_out, max_error, dynamic, small)
    calib = load_sequences(calibration, model, "calibration")
    if held_out is None:
        calib, held, held_src = carve_held_out(calib)
    elif held_out is False:
        held, held_src = [], "none (held_out=False)"
    else:
        held, held_src = load_sequences(held_out, model, "held_out"), "given"
    notes: list[str] = []
    try:
        settle = settle_steps(model, calib)
    except CalibrationError as exc:
        if require_settled:
            raise
        settle = None
        notes.append(f"{exc} (the error report measures from zero state, as the ranges)")
    bar = _Bar(progress)
    try:
        bar.plan(1, "float reference")
        ref = trace.values(model, calib)
        bar.tick()
        ops, info = {}, []
        for i, (t, want) in enumerate(zip(nodes, per, strict=True)):
            entry = {"index": i, "name": t.name, "type": kind(t.op), "precision": "float32",
                     "reason": None}
            info.append(entry)
            if not t.op.quantizable:
                if t.op.inner() and want != "float32":
                    entry["reason"] = (f"{kind(t.op)} (whole-sequence wrapper) is not "
                                       f"quantised yet")
                    notes.append(f"layer {t.name} stays float32: {entry['reason']}")
                else:
                    entry["reason"] = "no matrix product"
                continue
            if want == "float32":
                entry["reason"] = small.get(i, "requested")
                continue
            bar.plan(0, f"{t.name} ({kind(t.op)}) {want}")
            try:
                ops[t.name], entry["ranges"] = _calibrate(
                    t.op, want, ref[t.inputs[0].name], ref[t.name], ranges, bar, dynamic)
                entry["precision"] = want
            except (EdgeRNNError, ValueError, TypeError, FloatingPointError) as exc:
                entry["reason"] = f"could not be quantised: {exc}"
                notes.append(f"layer {t.name} ({kind(t.op)}) stays float32: {exc}")
        kept = _honour_max_error(model, ops, calib, ref, max_error, info, bar)
        report = _report(model, ops, info, ref, calib, held, held_src, settle, ranges, mode,
                         max_error, kept, notes, bar, dynamic)
    finally:
        bar.close()
    for n in notes:
        warnings.warn(n, stacklevel=2)
    prov = dict(model.provenance)
    prov["quantized_by"] = f"converters.quantize (edgernn {edgernn.__version__})"
    return trace.rebuild(model, ops, compact(report), prov)


def _without_data(model, per, mode, held_out, max_error, dynamic, small):
    """Data-free ``int8-weights`` (dynamic range): every product's weights quantised per
    row, nothing measured (the report says so)."""
    static = [t.name for t, m in zip(model.graph.nodes, per, strict=True) if m == "int8"]
    if static:
        raise ModelFormatError(f"quantize: static int8 (nodes {static[:5]}) needs calibration "
                               f"data for its input and state ranges; int8-weights needs none")
    if max_error is not None or held_out not in (None, False):
        raise ModelFormatError("quantize: max_error and held_out measure the error, which "
                               "needs calibration data")
    ops, info = {}, []
    for i, (t, want) in enumerate(zip(model.graph.nodes, per, strict=True)):
        entry = {"index": i, "name": t.name, "type": kind(t.op), "precision": "float32",
                 "reason": None, "ranges": None, "error": None, "cumulative": None}
        info.append(entry)
        if not t.op.quantizable:
            entry["reason"] = "no matrix product"
        elif want == "float32":
            entry["reason"] = small.get(i, "requested")
        else:
            try:
                ops[t.name] = build(t.op, want, dynamic_zero_point=dynamic == "asymmetric")
                entry["precision"] = want
            except (EdgeRNNError, ValueError, TypeError) as exc:
                entry["reason"] = f"could not be quantised: {exc}"
                warnings.warn(f"layer {t.name} ({kind(t.op)}) stays float32: {exc}",
                              stacklevel=3)
    note = ("no calibration data: the error against float32 was not measured (give "
            "calibration data to report it)")
    quantizable = {e["precision"] for e in info if model.graph.nodes[e["index"]].op.quantizable}
    report = {
        "format": 2, "mode": quantizable.pop() if len(quantizable) == 1 else "mixed",
        "requested": mode if isinstance(mode, (str, type(None))) else
        ({str(k): v for k, v in mode.items()} if isinstance(mode, dict) else list(mode)),
        "ranges": None, "dynamic_inputs": dynamic, "measured_with": None,
        "calibration": {"sequences": 0, "steps": 0, "settle_steps": None},
        "held_out": {"source": "none (no calibration data)", "sequences": 0, "steps": 0},
        "layers": info, "end_to_end": {"calibration": None, "held_out": None},
        "max_error": None, "kept_float": [], "max_error_met": None, "warnings": [note],
    }
    prov = dict(model.provenance)
    prov["quantized_by"] = f"converters.quantize (edgernn {edgernn.__version__})"
    return trace.rebuild(model, ops, compact(report), prov)


def _honour_max_error(model, ops, calib, ref, max_error, info, bar) -> list:
    """Put nodes back to float, the one whose return helps most first, until the
    end-to-end max abs error on the calibration data is at most ``max_error``."""
    if max_error is None:
        return []
    kept = []
    want = trace.outputs(model, ref)

    def e2e(trial):
        bar.plan(1)
        got = trace.run(trace.rebuild(model, trial), calib)
        bar.tick()
        return metrics(want, got)["max_abs"]

    err = e2e(ops)
    while err > max_error and ops:
        tries = {name: e2e({k: v for k, v in ops.items() if k != name}) for name in ops}
        name = min(tries, key=tries.get)
        del ops[name]
        entry = next(e for e in info if e["name"] == name)
        entry.update(precision="float32", ranges=None,
                     reason=f"kept float by max_error={max_error:g}")
        kept.append(name)
        err = tries[name]
    return kept


def _report(model, ops, info, ref_calib, calib, held, held_src, settle, ranges, mode,
            max_error, kept, notes, bar, dynamic) -> dict:
    splits = {"calibration": calib, "held_out": held}
    qmodel = trace.rebuild(model, ops)
    nodes = model.graph.nodes
    bar.plan(2 + 2 * len(ops), "error report")
    refs, qvals = {}, {}
    for k, data in splits.items():
        refs[k] = (ref_calib if k == "calibration" else trace.values(model, data)) \
            if data else None
        qvals[k] = trace.values(qmodel, data) if data else None
        bar.tick()
    for t, entry in zip(nodes, info, strict=True):
        entry.setdefault("ranges", None)
        alone, cum = {}, {}
        for k in splits:
            if refs[k] is None:
                alone[k] = cum[k] = None
                continue
            alone[k] = None
            if t.name in ops:
                alone[k] = metrics(refs[k][t.name],
                                   trace.run_op(ops[t.name], refs[k][t.inputs[0].name]))
                bar.tick()
            cum[k] = metrics(refs[k][t.name], qvals[k][t.name])
        entry["error"], entry["cumulative"] = alone if t.name in ops else None, cum
    quantizable = {t.name for t in nodes if t.op.quantizable}
    precisions = {e["precision"] for e in info if e["name"] in quantizable}
    e2e = {k: None if refs[k] is None else
           metrics(trace.outputs(model, refs[k]), trace.outputs(model, qvals[k]))
           for k in splits}
    met = None
    if max_error is not None:
        met = e2e["calibration"]["max_abs"] <= max_error
        if e2e["held_out"] and e2e["held_out"]["max_abs"] > max_error:
            notes.append(f"end-to-end max abs error on the held-out data "
                         f"{e2e['held_out']['max_abs']:.3g} exceeds max_error={max_error:g} "
                         f"(met on the calibration data)")
    return {
        "format": 2,
        "mode": precisions.pop() if len(precisions) == 1 else "mixed",
        "requested": mode if isinstance(mode, (str, type(None))) else
        ({str(k): v for k, v in mode.items()} if isinstance(mode, dict) else list(mode)),
        "ranges": ranges,
        "dynamic_inputs": dynamic,
        "measured_with": "edgernn engine",
        "calibration": {"sequences": len(calib), "steps": int(sum(map(len, calib))),
                        "settle_steps": settle},
        "held_out": {"source": held_src, "sequences": len(held),
                     "steps": int(sum(map(len, held)))},
        "layers": info,
        "end_to_end": e2e,
        "max_error": max_error, "kept_float": kept, "max_error_met": met,
        "warnings": list(notes),
    }
