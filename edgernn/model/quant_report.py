"""Text form of a model's quantisation report (``model.quantization``).

Pure formatting of the JSON-able dict ``converters.quantize`` attaches to a
quantised model and the ``.ernn`` manifest stores under ``"quantization"``;
used by ``edgernn inspect`` on the device, so it imports nothing.
"""

from __future__ import annotations


def _num(v, fmt=".3g") -> str:
    return "-" if v is None else format(v, fmt)


def _err(m) -> str:
    if not m:
        return "-"
    snr = "exact" if m.get("snr_db") is None else f"{m['snr_db']:.1f} dB"
    return f"max {_num(m.get('max_abs'))}  rms {_num(m.get('rms'))}  SNR {snr}"


def _range(r) -> str:
    if not r:
        return ""
    return (f"{r.get('method')} [{_num(r.get('min'))}, {_num(r.get('max'))}] "
            f"scale {_num(r.get('scale'))} zp {r.get('zero_point')}")


def _settle(n) -> str:
    return "" if n is None else f"; the state settles in {n} steps"


def format_report(report: dict | None) -> str:
    """Lines describing ``report`` (``"quantization: none (float32)"`` for None).

    Parameters
    ----------
    report : dict or None
        As stored in the manifest: ``mode``, ``layers`` (index, name, type,
        precision, reason, note, ranges, error, cumulative), ``end_to_end``,
        ``calibration``, ``held_out``, ``max_error``, ``kept_float``, ``warnings``; an
        already-quantised source's report has no ``calibration`` and no errors.
    """
    if not report:
        return "quantization: none (float32)"
    cal = report.get("calibration")
    held = report.get("held_out") or {}
    if cal is None:  # an already-quantised source: its own parameters, nothing measured
        lines = [f"quantization: {report.get('mode')} (parameters from the source model, "
                 f"{report.get('source') or '?'}; compare against the source's runtime)"]
    else:
        lines = [f"quantization: {report.get('mode')} (ranges: {report.get('ranges')}; "
                 f"measured with {report.get('measured_with', '?')})",
                 f"  calibration: {cal.get('sequences')} sequences, {cal.get('steps')} steps"
                 f"{_settle(cal.get('settle_steps'))}",
                 f"  held out: {held.get('sequences', 0)} sequences, {held.get('steps', 0)} "
                 f"steps ({held.get('source', '-')})"]
    layers = report.get("layers", [])
    names = [str(e.get("name", e.get("index"))) for e in layers]
    w = max([4] + [len(n) for n in names])
    head = (f"  {'node':<{w}}  {'op':<8} {'precision':<13} {'error alone (held out)':<44} "
            f"at its output")
    lines += [head, "  " + "-" * (len(head) - 2)]
    for name, e in zip(names, layers, strict=True):
        err = e.get("error") or {}
        cum = e.get("cumulative") or {}
        alone = err.get("held_out") or err.get("calibration")
        at = cum.get("held_out") or cum.get("calibration")
        lines.append(f"  {name:<{w}}  {e.get('type', '?'):<8} "
                     f"{e.get('precision', '?'):<13} {_err(alone):<44} {_err(at)}")
        for tensor, r in (e.get("ranges") or {}).items():
            lines.append(f"      {tensor}: {_range(r)}")
        if e.get("note"):
            lines.append(f"      note: {e['note']}")
        if e.get("reason") and e.get("precision") == "float32" and \
                e["reason"] != "no matrix product":
            lines.append(f"      float32: {e['reason']}")
    e2e = report.get("end_to_end") or {}
    for split in ("calibration", "held_out") if e2e else ():
        lines.append(f"  end to end, {split.replace('_', '-')}: {_err(e2e.get(split))}")
    if report.get("max_error") is not None:
        kept = report.get("kept_float") or []
        lines.append(f"  max_error {report['max_error']:g}: "
                     f"{'met' if report.get('max_error_met') else 'NOT met'}; kept float: "
                     f"{', '.join(map(str, kept)) if kept else 'none'}")
    for w in report.get("warnings") or []:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


__all__ = ["format_report"]
