"""``quantize()``: calibrate, choose ranges by measured error, honour ``max_error``, report."""

from __future__ import annotations

import inspect
import sys
import warnings

import numpy as np

import edgernn
from edgernn.errors import EdgeRNNError, ModelFormatError, UnsupportedOpError

from . import ranges as R
from .calibration import carve_held_out, load_sequences, settle_steps
from .qlayer import MATRICES, MODES, build, kind, quant, runtime_has_int8
from .simulate import run_layer, trace

PRECISIONS = ("float32",) + MODES
METHODS = ("auto", "minmax", "percentile", "mse")
_BOUNDED = {"tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "sigmoid": (0.0, 1.0),
            "hard_sigmoid": (0.0, 1.0)}


# --- modes ---------------------------------------------------------------------------

def resolve_modes(model, mode) -> list[str]:
    """Per layer "float32", "int8-weights" or "int8" from a mode spec.

    ``mode`` is one precision for every layer; a dict from layer (index, or its
    node name "0", "1", ...) to precision, with an optional ``"default"`` entry
    for the layers not named (else they stay float32); or a list with one
    precision (or None: float32) per layer.
    """
    n = len(model.layers)

    def check(v, where):
        v = "float32" if v is None else v
        if v not in PRECISIONS:
            raise ModelFormatError(f"mode{where}: expected one of {list(PRECISIONS)}, "
                                   f"got {v!r}")
        return v

    if isinstance(mode, str) or mode is None:
        return [check(mode, "")] * n
    if isinstance(mode, dict):
        per = [check(mode.get("default"), "['default']")] * n
        for key, v in mode.items():
            if key == "default":
                continue
            idx = key if isinstance(key, int) and not isinstance(key, bool) else (
                int(key) if isinstance(key, str) and key.isdigit() else None)
            if idx is None or not 0 <= idx < n:
                raise ModelFormatError(f"mode: layer {key!r} does not exist; expected a "
                                       f"layer index or node name in 0..{n - 1}, or "
                                       f"'default'")
            per[idx] = check(v, f"[{key!r}]")
        return per
    if isinstance(mode, (list, tuple)):
        if len(mode) != n:
            raise ModelFormatError(f"mode: expected one precision per layer ({n}), got "
                                   f"{len(mode)}")
        return [check(v, f"[{i}]") for i, v in enumerate(mode)]
    raise ModelFormatError(f"mode: expected a str, dict or list, got {type(mode).__name__}")


# --- measurements ----------------------------------------------------------------------

def metrics(ref: list, got: list) -> dict:
    """max_abs, rms and snr_db (None when the error is exactly zero) over all steps."""
    if not ref:
        return None
    r = np.concatenate([np.asarray(a, np.float64).reshape(len(a), -1) for a in ref])
    g = np.concatenate([np.asarray(a, np.float64).reshape(len(a), -1) for a in got])
    e = g - r
    se, sr = float((e * e).sum()), float((r * r).sum())
    snr = None if se == 0 else (float(10 * np.log10(sr / se)) if sr > 0 else float("-inf"))
    return {"max_abs": float(np.abs(e).max()), "rms": float(np.sqrt(se / e.size)),
            "snr_db": None if snr is None or not np.isfinite(snr) else round(snr, 3),
            "steps": int(r.shape[0])}


def _key(m):
    return (m["max_abs"], m["rms"])


def state_bound(layer):
    """The range h cannot leave (None when unbounded), from the cell's activations."""
    k = kind(layer)
    if k == "RNN":
        return _BOUNDED.get(layer.nonlinearity.name)
    acts = layer.activations
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


def _calibrate(layer, mode, x_in, y_ref, method, bar, dynamic="symmetric"):
    """(quantised layer, ranges record) for one layer; static ranges by measured error."""
    if mode == "int8-weights":
        return build(layer, mode, dynamic_zero_point=dynamic == "asymmetric"), {}
    recurrent = kind(layer) != "Dense"
    methods = None if method == "auto" else (method,)
    xc = R.candidates(np.concatenate([np.ravel(a) for a in x_in]), None, methods)
    hc = R.candidates(np.concatenate([np.ravel(a) for a in y_ref]), state_bound(layer),
                      methods) if recurrent else {None: None}
    bar.plan(len(xc) + (len(hc) if len(hc) > 1 else 0))

    def score(xr, hr):
        ql = build(layer, mode, R.affine(*xr), None if hr is None else R.affine(*hr))
        bar.tick()
        return metrics(y_ref, run_layer(ql, x_in)), ql

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

def quantize(model, calibration, mode="int8", held_out=None, max_error=None, ranges="auto",
             progress=True, require_settled=True, dynamic="symmetric"):
    """Quantise ``model`` to int8; see :mod:`converters.quantize`."""
    if not isinstance(model, edgernn.Model):
        raise ModelFormatError(f"quantize: expected an edgernn.Model, got "
                               f"{type(model).__name__}")
    if dynamic not in ("symmetric", "asymmetric"):
        raise ModelFormatError(f"dynamic: expected 'symmetric' or 'asymmetric', got "
                               f"{dynamic!r}")
    if ranges not in METHODS:
        raise ModelFormatError(f"ranges: expected one of {list(METHODS)}, got {ranges!r}")
    if max_error is not None and not (np.isfinite(max_error) and max_error > 0):
        raise ModelFormatError(f"max_error: expected a positive number, got {max_error!r}")
    if model.initial_state is not None:
        raise UnsupportedOpError("quantize: models with a non-zero initial_state are not "
                                 "supported yet")
    per = resolve_modes(model, mode)
    calib = load_sequences(calibration, model, "calibration")
    if held_out is None:
        calib, held, held_src = carve_held_out(calib)
    elif held_out is False:
        held, held_src = [], "none (held_out=False)"
    else:
        held, held_src = load_sequences(held_out, model, "held_out"), "given"
    settle = settle_steps(model, calib) if require_settled else None
    notes: list[str] = []
    bar = _Bar(progress)
    try:
        bar.plan(len(model.layers), "float reference")
        ref = [calib]
        for layer in model.layers:
            ref.append(run_layer(layer, ref[-1]))
            bar.tick()
        layers, info = list(model.layers), []
        for i, (layer, want) in enumerate(zip(model.layers, per, strict=True)):
            entry = {"index": i, "type": kind(layer), "precision": "float32", "reason": None}
            info.append(entry)
            if want == "float32":
                entry["reason"] = "requested"
                continue
            if kind(layer) not in MATRICES:
                entry["reason"] = "no matrix product"
                if isinstance(layer, (edgernn.Bidirectional, edgernn.Reverse)):
                    entry["reason"] = (f"{kind(layer)} (whole-sequence wrapper) is not "
                                       f"quantised yet")
                    notes.append(f"layer {i} stays float32: {entry['reason']}")
                continue
            bar.plan(0, f"layer {i} ({kind(layer)}) {want}")
            try:
                layers[i], entry["ranges"] = _calibrate(layer, want, ref[i], ref[i + 1],
                                                        ranges, bar, dynamic)
                entry["precision"] = want
            except (EdgeRNNError, ValueError, TypeError, FloatingPointError) as exc:
                entry["reason"] = f"could not be quantised: {exc}"
                notes.append(f"layer {i} ({kind(layer)}) stays float32: {exc}")
        kept = _honour_max_error(model, layers, calib, ref, max_error, info, bar)
        report = _report(model, layers, info, calib, held, held_src, settle, ranges, mode,
                         max_error, kept, notes, bar, dynamic)
    finally:
        bar.close()
    for n in notes:
        warnings.warn(n, stacklevel=2)
    return _result(model, layers, report)


def _honour_max_error(model, layers, calib, ref, max_error, info, bar) -> list:
    """Put layers back to float, the one whose return helps most first, until the
    end-to-end max abs error on the calibration data is at most ``max_error``."""
    if max_error is None:
        return []
    kept = []

    def e2e(ls):
        bar.plan(len(ls))
        out = trace(ls, calib)[-1]
        for _ in ls:
            bar.tick()
        return metrics(ref[-1], out)["max_abs"]

    err = e2e(layers)
    while err > max_error:
        cands = [i for i, lay in enumerate(layers) if quant(lay) is not None]
        if not cands:
            break
        tries = {}
        for i in cands:
            trial = list(layers)
            trial[i] = model.layers[i]
            tries[i] = e2e(trial)
        i = min(tries, key=tries.get)
        layers[i] = model.layers[i]
        info[i].update(precision="float32", ranges=None,
                       reason=f"kept float by max_error={max_error:g}")
        kept.append(i)
        err = tries[i]
    return kept


def _report(model, layers, info, calib, held, held_src, settle, ranges, mode, max_error,
            kept, notes, bar, dynamic="symmetric") -> dict:
    splits = {"calibration": calib, "held_out": held}
    bar.plan(2 * 2 * len(layers), "error report")
    refs = {k: trace(model.layers, v) if v else None for k, v in splits.items()}
    qtr = {k: trace(layers, v) if v else None for k, v in splits.items()}
    for i, entry in enumerate(info):
        entry.setdefault("ranges", None)
        alone, cum = {}, {}
        for k in splits:
            if refs[k] is None:
                alone[k] = cum[k] = None
                continue
            alone[k] = (metrics(refs[k][i + 1], run_layer(layers[i], refs[k][i]))
                        if quant(layers[i]) is not None else None)
            cum[k] = metrics(refs[k][i + 1], qtr[k][i + 1])
            bar.tick()
        entry["error"], entry["cumulative"] = alone, cum
    precisions = {e["precision"] for e in info if kind(model.layers[e["index"]]) in MATRICES}
    e2e = {k: None if refs[k] is None else metrics(refs[k][-1], qtr[k][-1]) for k in splits}
    met = None
    if max_error is not None:
        met = e2e["calibration"]["max_abs"] <= max_error
        if e2e["held_out"] and e2e["held_out"]["max_abs"] > max_error:
            notes.append(f"end-to-end max abs error on the held-out data "
                         f"{e2e['held_out']['max_abs']:.3g} exceeds max_error={max_error:g} "
                         f"(met on the calibration data)")
    return {
        "format": 1,
        "mode": precisions.pop() if len(precisions) == 1 else "mixed",
        "requested": mode if isinstance(mode, (str, type(None))) else
        ({str(k): v for k, v in mode.items()} if isinstance(mode, dict) else list(mode)),
        "ranges": ranges,
        "dynamic_inputs": dynamic,
        "measured_with": ("edgernn engine" if runtime_has_int8() else
                          "numpy simulation of QUANT_SPEC (the engine has no int8 yet)"),
        "calibration": {"sequences": len(calib), "steps": int(sum(map(len, calib))),
                        "settle_steps": settle},
        "held_out": {"source": held_src, "sequences": len(held),
                     "steps": int(sum(map(len, held)))},
        "layers": info,
        "end_to_end": e2e,
        "max_error": max_error, "kept_float": kept, "max_error_met": met,
        "warnings": list(notes),
    }


def _result(model, layers, report):
    prov = dict(model.provenance)
    prov["quantized_by"] = f"converters.quantize (edgernn {edgernn.__version__})"
    if runtime_has_int8():
        kw = dict(provenance=prov, return_sequences=model.return_sequences)
        if "quantization" in inspect.signature(edgernn.Model).parameters:
            return edgernn.Model(layers, quantization=report, **kw)
        out = edgernn.Model(layers, **kw)
        out.quantization = report
        return out
    from .model import QuantizedModel

    return QuantizedModel(layers, model, report, prov)
