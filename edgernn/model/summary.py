"""``Model.describe()``: a table of a model's nodes, sizes, parameters and MACs."""

from __future__ import annotations


def _kind(op, entry) -> str:
    """The op's label, with its int8 mode, or ``[float: small]`` where the quantiser
    kept it float because int8 would be slower (its report ``entry``)."""
    kind = op.label()
    quant = getattr(op, "quant", None)
    if quant is not None:
        kind += f" [{quant.mode}]"
    elif entry and str(entry.get("reason") or "").startswith("small"):
        kind += " [float: small]"
    return kind


def summary_rows(model) -> list[dict]:
    """Per node: index, name, type, inputs, shape, parameters, MACs per step, bytes and
    the parameter count the op's structure predicts (None: no check)."""
    rows = []
    report = {e.get("name"): e for e in (model.quantization or {}).get("layers") or ()
              if isinstance(e, dict)}
    for i, t in enumerate(model.graph.nodes):
        op = t.op
        ins = "+".join(str(s.size) for s in t.inputs)
        rows.append(dict(index=i, name=t.name, type=_kind(op, report.get(t.name)),
                         inputs=[s.name for s in t.inputs],
                         shape=f"{ins}->{t.size}", params=op.param_count(), macs=op.macs(),
                         bytes=op.nbytes(), expected_params=op.expected_params()))
    return rows


def describe(model) -> str:
    rows = summary_rows(model)
    graph = any(r["inputs"] != ([rows[i - 1]["name"]] if i else [model.inputs[0][0]])
                for i, r in enumerate(rows)) or len(model.outputs) > 1
    head = (f"{'#':>2}  {'node':<12} {'op':<30} {'shape':>13} {'params':>10} {'MACs/step':>10} "
            f"{'bytes':>10}  gate check")
    lines = [head, "-" * len(head)]
    for r in rows:
        chk = "" if r["expected_params"] is None else (
            f"{r['expected_params']} ok" if r["expected_params"] == r["params"]
            else f"expected {r['expected_params']} MISMATCH")
        lines.append(f"{r['index']:>2}  {r['name'][:12]:<12} {r['type'][:30]:<30} "
                     f"{r['shape']:>13} {r['params']:>10} {r['macs']:>10} {r['bytes']:>10}  {chk}")
        if graph:
            lines.append(f"{'':>16}<- {', '.join(r['inputs'])}")
    lines.append("-" * len(head))
    lines.append(f"{'':>2}  {'total':<45} {model.input_size:>5}->{model.output_size:<5} "
                 f"{sum(r['params'] for r in rows):>10} {sum(r['macs'] for r in rows):>10} "
                 f"{sum(r['bytes'] for r in rows):>10}")
    kind = f"token ids < {model.num_tokens}" if model.num_tokens else "float32 vectors"
    io = ""
    if len(model.inputs) > 1 or len(model.outputs) > 1:
        io = ("\ninputs: " + ", ".join(f"{n}[{s}]" for n, s in model.inputs)
              + "; outputs: " + ", ".join(f"{n}[{s}]" for n, s in model.outputs))
    lines.append(f"input: {kind}; step(): "
                 f"{'yes' if model.streamable else 'no (whole sequences: run() only)'}"
                 f"{'' if model.return_sequences else '; run() returns the last step only'}"
                 f"{'; non-zero initial state' if model.initial_state is not None else ''}{io}")
    if model.graph.updates:
        lines.append("state carried from step to step: " + ", ".join(
            f"{st.name}[{st.size}] <- {v.name}" for st, v in model.graph.updates))
    audio = getattr(model, "audio", None)
    if audio:
        lines.append(f"audio: {audio['kind']} ({audio.get('preset') or 'no preset'}), "
                     f"{audio['sample_rate']} Hz, hop {audio['hop']}, {audio['input']} in, "
                     f"{audio['output']} out, latency {audio.get('latency', 0)}")
    return "\n".join(lines)
